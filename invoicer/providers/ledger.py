"""What accounting platforms without an idempotency key share (Business Central, Odoo).

`LookupFirst` fixes the order of the steps: every create first looks the invoice up by our reference,
makes it only when it is not there, and then finishes it (completes and posts a draft an earlier try
left, checks the total); a retry's `find_invoice` is the same lookup and finish. A subclass gives
`_by_reference`, `_make` and `_finish`.

The line helpers turn our lines into what such a platform multiplies and adds without rounding
differently from us, and label the tax and discount lines the same way everywhere.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Callable

from .. import money
from ..errors import MappingMissing
from .base import Created, Provider


class LookupFirst(Provider):
    def _by_reference(self, invoice: dict) -> dict | None:
        raise NotImplementedError

    def _make(self, invoice: dict) -> dict:
        raise NotImplementedError

    def _finish(self, found: dict, invoice: dict) -> Created:
        raise NotImplementedError

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        found = self._by_reference(invoice)
        return None if found is None else self._finish(found, invoice)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        self.check_invoice(invoice)  # a missing mapping or an unsendable invoice fails before any call
        return self._finish(self._by_reference(invoice) or self._make(invoice), invoice)


def places(value: Decimal) -> int:
    return max(0, -value.normalize().as_tuple().exponent)


def sent_as(line: dict, currency: str, qty_places: int, price_places: int) -> tuple[Decimal, Decimal, str]:
    """(quantity, unit price, text) for one of our lines: as it is when the platform keeps enough decimals
    and quantity x price rounds to our amount; else 1 x its amount, the working in the text."""
    qty, price, text = line["quantity"], line["unit_price"], line["description"]
    if places(qty) <= qty_places and places(price) <= price_places \
            and money.round_money(qty * price, currency) == line["amount"]:
        return qty, price, text
    return Decimal(1), line["amount"], f"{text} ({qty} x {price})"


def tax_label(doc: dict) -> str:
    rate = (doc["tax"]["rate"] * 100).normalize()
    return " ".join(p for p in ("Tax", doc["tax"].get("jurisdiction") or "", f"{rate:f} %") if p)


def discount_label(doc: dict) -> str:
    return "; ".join(d["description"] for d in doc["discounts"]) or "Discount"


def missing(checks: list[Callable[[], object]]) -> list[str]:
    """The messages of every check that raises MappingMissing (a startup check lists them all at once)."""
    out = []
    for check in checks:
        try:
            check()
        except MappingMissing as exc:
            out.append(str(exc))
    return out
