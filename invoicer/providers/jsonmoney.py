"""JSON for vendors that want money as JSON numbers: Decimal written exactly, read back exactly.

`dumps` never goes through a float (a Decimal is emitted by its own digits); `loads` turns every
number with a fraction or an exponent into a Decimal. Floats are refused: money is never a float here.
"""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any


def _encode(o: Any):
    if isinstance(o, Decimal):
        if not o.is_finite():
            raise ValueError(f"not a finite amount: {o}")
        yield format(o, "f")
    elif isinstance(o, float):
        raise TypeError("floats are never sent as money; use Decimal")
    elif isinstance(o, dict):
        yield "{"
        for i, (k, v) in enumerate(o.items()):
            yield ("," if i else "") + json.dumps(str(k), ensure_ascii=False) + ":"
            yield from _encode(v)
        yield "}"
    elif isinstance(o, (list, tuple)):
        yield "["
        for i, v in enumerate(o):
            if i:
                yield ","
            yield from _encode(v)
        yield "]"
    elif isinstance(o, date):
        yield json.dumps(o.isoformat())
    else:
        yield json.dumps(o, ensure_ascii=False)


def dumps(obj: Any) -> str:
    return "".join(_encode(obj))


def loads(data: bytes | str) -> Any:
    return json.loads(data, parse_float=Decimal)


def dec(value: Any) -> Decimal:
    """A vendor's number (Decimal, int or numeric string) as Decimal; None counts as zero."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, float):  # only from a caller that parsed without `loads`
        return Decimal(repr(value))
    return value if isinstance(value, Decimal) else Decimal(str(value))
