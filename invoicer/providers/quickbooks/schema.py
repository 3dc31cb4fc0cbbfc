"""QuickBooks request bodies checked against Intuit's own XSDs, when they are here.

The spec is ../shared/vendor-specs/quickbooks/ (IntuitRestServiceDef.xsd, which includes Finance.xsd: Intuit's
QuickBooks V3 Java SDK; its JSON API uses the same element names). A JSON body is turned into the XML element
the XSD describes -- children in the order of the schema's sequences, a {"value": ..., "name": ...} reference
as simple content with attributes, Decimals and dates in their XSD lexical form -- and the whole element is
validated with xmlschema: element names, nesting, simple types (xs:decimal, xs:date, xs:boolean, enumerations
such as LineDetailTypeEnum) and cardinality. A JSON key the schema does not know fails the conversion itself.

Optional on purpose: the product runs without the shared folder and without `xmlschema` (a test extra), and
then `validator()` is None and nothing is checked. `INVOICER_QUICKBOOKS_SPEC` points at another copy of the
folder. Building the schema takes about half a second, so it is built once per process per folder.
"""
from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

NS = "http://schema.intuit.com/finance/v3"
ENTRY = "IntuitRestServiceDef.xsd"  # includes Finance.xsd (Invoice, Customer...) and Report.xsd
DEFAULT_SPEC = Path(__file__).resolve().parents[4] / "shared" / "vendor-specs" / "quickbooks"

Validator = Callable[[str, dict], list[str]]

_lock = threading.Lock()  # building, and validating: xmlschema does not promise thread safety
_schemas: dict[str, Any] = {}


class NotInSchema(ValueError):
    """A JSON key or value that has no place in the XML the schema describes."""


def spec_dir() -> Path:
    return Path(os.environ.get("INVOICER_QUICKBOOKS_SPEC") or DEFAULT_SPEC)


def load(spec: Path | str | None = None):
    """Intuit's schema from the folder `spec` (default `spec_dir()`), built once per process; None when the
    folder (its IntuitRestServiceDef.xsd) or the xmlschema package is not here."""
    entry = Path(spec) if spec is not None else spec_dir()
    if entry.is_dir():
        entry = entry / ENTRY
    if not entry.is_file():
        return None
    try:
        import xmlschema
    except ImportError:
        return None
    key = str(entry.resolve())
    with _lock:
        if key not in _schemas:
            _schemas[key] = xmlschema.XMLSchema(key)
        return _schemas[key]


def _lexical(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # only from a caller that parsed without transform.loads
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (int, str)):
        return str(value)
    raise NotInSchema(f"{path}: cannot write {type(value).__name__} {value!r:.80} as XML text")


def to_xml(xsd_type, name: str, value: Any, path: str = "") -> ET.Element:
    """The XML element `name` of `xsd_type` for a QuickBooks JSON value (children in schema order)."""
    path = f"{path}.{name}" if path else name
    type_name = xsd_type.local_name or "an anonymous type"
    el = ET.Element(f"{{{NS}}}{name}")
    if xsd_type.is_simple():
        el.text = _lexical(value, path)
        return el
    if xsd_type.has_simple_content():
        if isinstance(value, dict):
            for key, v in value.items():
                if key == "value":
                    el.text = _lexical(v, path)
                elif key in xsd_type.attributes:
                    el.set(key, _lexical(v, f"{path}.{key}"))
                else:
                    raise NotInSchema(f"{path}.{key}: no such attribute in {type_name}")
        else:
            el.text = _lexical(value, path)
        return el
    if not isinstance(value, dict):
        raise NotInSchema(f"{path}: {type_name} is a complex type, got {value!r:.80}")
    order: dict[str, Any] = {}
    for decl in xsd_type.content.iter_elements():
        order.setdefault(decl.local_name, decl)
    for key in value:
        if key not in order and key not in xsd_type.attributes:
            raise NotInSchema(f"{path}.{key}: no such element in {type_name}")
    for key, v in value.items():
        if key in xsd_type.attributes:
            el.set(key, _lexical(v, f"{path}.{key}"))
    for child, decl in order.items():
        if child in value:
            for item in value[child] if isinstance(value[child], list) else [value[child]]:
                el.append(to_xml(decl.type, child, item, path))
    return el


def errors(schema, entity: str, body: dict) -> list[str]:
    """The schema's complaints about `body` as the element `entity` ("Invoice", "Customer"); [] when valid.
    Raises NotInSchema when the body cannot even be written as that element (an unknown key, say)."""
    root = to_xml(schema.elements[entity].type, entity, body)
    with _lock:
        found = list(schema.iter_errors(root))
    return [f"{e.path}: {e.reason or e.message}".replace(f"{{{NS}}}", "") for e in found]


def validator(spec: Path | str | None = None) -> Validator | None:
    """`check(entity, body) -> problems` against the XSDs in the folder `spec` (default `spec_dir()`), every
    problem as text, NotInSchema included; None when the folder or the xmlschema package is not here."""
    schema = load(spec)
    if schema is None:
        return None

    def check(entity: str, body: dict) -> list[str]:
        try:
            return errors(schema, entity, body)
        except NotInSchema as e:
            return [str(e)]

    return check
