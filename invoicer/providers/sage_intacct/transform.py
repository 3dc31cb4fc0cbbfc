"""Pure mapping for Sage Intacct's XML gateway (Web Services, DTD 3.0): canonical invoice <-> XML.

No I/O here. Requests are built with ElementTree (never by string concatenation); answers are parsed
with defusedxml (they come from the network). Element names and order follow Sage Intacct's developer
pages ("XML requests", "Error handling", "Invoices") and its official .NET SDK (intacct/intacct-sdk-net:
ControlBlock, InvoiceCreate, InvoiceLineCreate).

The AR invoice is made with `create_invoice` (the documented way: the Invoices page lists no generic
`<create><ARINVOICE>`), with one `lineitem` per line, each booked to the tenant's GL account for its kind:
  * job lines: `amount` = our rounded line amount, the working (2.5 x 80.00) in `memo`;
  * all discounts: one line of minus the discount total to `gl_accounts.discount`;
  * tax: one line of our tax to `gl_accounts.tax` (the sales tax payable account);
so the invoice's total = sum(lines) = our total, to the cent. `created` checks Sage Intacct's figure.
"""
from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Iterable

from defusedxml.ElementTree import fromstring

from ...errors import Rejected
from ..base import Created, PaymentStatus
from ..common import check_decimals, mapped

KINDS = ("labor", "material", "fee")
DTD_VERSION = "3.0"
MAX_DECIMALS = 2  # amounts Sage Intacct keeps (not confirmed for zero- and three-decimal currencies)
CUSTOMER_ID_MAX = 20
CONTROL_ID_MAX = 256
MEMO_MAX = 1000
DESCRIPTION_MAX = 1000
INVOICE_FIELDS = ("RECORDNO", "RECORDID", "DOCNUMBER", "CUSTOMERID", "STATE", "CURRENCY", "TOTALENTERED",
                  "TOTALPAID", "TOTALDUE", "TRX_TOTALENTERED", "TRX_TOTALPAID", "TRX_TOTALDUE", "WHENCREATED",
                  "WHENDUE")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,20}$")


@dataclass(frozen=True)
class Mapping:
    platform: str
    gl_accounts: dict[str, str] = field(default_factory=dict)  # labor, material, fee, discount, tax
    use_our_number: bool = False
    location: str | None = None
    department: str | None = None
    term: str | None = None
    base_currency: str | None = None

    @classmethod
    def from_options(cls, options: dict, platform: str) -> "Mapping":
        accounts = options.get("gl_accounts") or {}
        return cls(platform or "<name>",
                   {str(k): str(v) for k, v in accounts.items() if v not in (None, "")}
                   if isinstance(accounts, dict) else {},
                   bool(options.get("use_our_number")), _opt(options, "location_id"), _opt(options, "department_id"),
                   _opt(options, "term"), _opt(options, "base_currency"))

    def account(self, kind: str) -> str:
        return mapped(self.gl_accounts, kind, f"Sage Intacct needs a GL account for {kind} lines: set "
                                              f"platforms.{self.platform}.gl_accounts.{kind}")


def _opt(options: dict, name: str) -> str | None:
    value = options.get(name)
    return str(value) if value not in (None, "") else None


# ---------------------------------------------------------------- ids

def control_id(key: str, purpose: str = "invoice") -> str:
    """The request's control id: the same for every retry of the same step, so with uniqueid=true the
    gateway refuses to run it twice."""
    return f"invoicer-{purpose}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def customer_id(customer: dict) -> str:
    """Our customer's CUSTOMERID: its own id when it fits (<= 20 of letters, digits, _ and -), else a hash."""
    ours = str(customer["id"])
    if _SAFE_ID.match(ours):
        return ours
    return "C" + hashlib.sha256(ours.encode()).hexdigest()[:CUSTOMER_ID_MAX - 1].upper()


def reference(doc: dict) -> str:
    """Our reference on the invoice (DOCNUMBER, "reference number"): our invoice number."""
    return doc["number"]


# ---------------------------------------------------------------- XML building

def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = format(text, "f") if isinstance(text, Decimal) else str(text)
    return el


def _date(parent: ET.Element, tag: str, value: date) -> None:
    el = _sub(parent, tag)
    _sub(el, "year", f"{value.year:04d}")
    _sub(el, "month", f"{value.month:02d}")
    _sub(el, "day", f"{value.day:02d}")


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def request(*, sender_id: str, sender_password: str, control: str, functions: list[ET.Element],
            session_id: str | None = None, login: dict[str, str] | None = None, unique: bool = True) -> bytes:
    """A whole gateway request: <control> and one <operation> authenticated by session or by login."""
    root = ET.Element("request")
    ctl = _sub(root, "control")
    _sub(ctl, "senderid", sender_id)
    _sub(ctl, "password", sender_password)
    _sub(ctl, "controlid", control[:CONTROL_ID_MAX])
    _sub(ctl, "uniqueid", "true" if unique else "false")
    _sub(ctl, "dtdversion", DTD_VERSION)
    _sub(ctl, "includewhitespace", "false")
    op = _sub(root, "operation")
    auth = _sub(op, "authentication")
    if session_id:
        _sub(auth, "sessionid", session_id)
    else:
        el = _sub(auth, "login")
        for name in ("userid", "companyid", "password"):
            _sub(el, name, (login or {})[name])
    content = _sub(op, "content")
    for fn in functions:
        content.append(fn)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def function(control: str, body: ET.Element) -> ET.Element:
    fn = ET.Element("function", {"controlid": control})
    fn.append(body)
    return fn


def get_api_session() -> ET.Element:
    return ET.Element("getAPISession")


def quote(value: str) -> str:
    """A string literal for readByQuery's query language."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_by_query(obj: str, query: str, fields: Iterable[str] = ("*",), pagesize: int = 10) -> ET.Element:
    el = ET.Element("readByQuery")
    _sub(el, "object", obj)
    _sub(el, "fields", ",".join(fields))
    _sub(el, "query", query)
    _sub(el, "pagesize", pagesize)
    return el


def read(obj: str, key: str, fields: Iterable[str] = ("*",)) -> ET.Element:
    el = ET.Element("read")
    _sub(el, "object", obj)
    _sub(el, "keys", key)
    _sub(el, "fields", ",".join(fields))
    return el


def check(doc: dict) -> None:
    """Rejected for an invoice Sage Intacct could not hold to the minor unit."""
    check_decimals(doc, "Sage Intacct", MAX_DECIMALS)


def _line(parent: ET.Element, account: str, amount: Decimal, memo: str, m: Mapping) -> None:
    li = _sub(parent, "lineitem")
    _sub(li, "glaccountno", account)
    _sub(li, "amount", amount)
    _sub(li, "memo", _clip(memo, MEMO_MAX))
    if m.location:
        _sub(li, "locationid", m.location)
    if m.department:
        _sub(li, "departmentid", m.department)


def line_amounts(doc: dict) -> list[tuple[str, Decimal, str]]:
    """(kind, amount, memo) of every line the invoice will have, in order; their sum is our total."""
    out = []
    for line in doc["lines"]:
        if line["kind"] not in KINDS:
            raise Rejected(f"unknown line kind {line['kind']!r}")
        memo = f'{line["description"]} ({line["quantity"]} x {line["unit_price"]})'
        out.append((line["kind"], line["amount"], memo))
    if doc["discount_total"]:
        out.append(("discount", -doc["discount_total"],
                    "; ".join(d["description"] for d in doc["discounts"]) or "Discount"))
    if doc["tax"]["amount"]:
        out.append(("tax", doc["tax"]["amount"], f'Sales tax {doc["tax"].get("jurisdiction") or ""}'.strip()))
    return out


def create_invoice(doc: dict, m: Mapping, customer: str) -> ET.Element:
    """The legacy `create_invoice` function body. MappingMissing/Rejected before any call."""
    check(doc)
    lines = line_amounts(doc)
    accounts = [m.account(kind) for kind, _, _ in lines]
    if sum((a for _, a, _ in lines), Decimal(0)) != doc["total"]:  # a bug, never sent
        raise Rejected(f'Sage Intacct lines for {doc["number"]} do not add up to {doc["total"]}')
    el = ET.Element("create_invoice")
    _sub(el, "customerid", customer)
    _date(el, "datecreated", doc["issued_on"])
    _date(el, "datedue", doc["due_on"])
    if m.term:
        _sub(el, "termname", m.term)
    if m.use_our_number:
        _sub(el, "invoiceno", doc["number"])
    _sub(el, "ponumber", reference(doc))
    job = doc["job"]
    text = f'Job {job["number"]}' + (f' · PO {job["po_number"]}' if job.get("po_number") else "") \
        + (f' · {job["summary"]}' if job.get("summary") else "")
    _sub(el, "description", _clip(text, DESCRIPTION_MAX))
    if m.base_currency:
        _sub(el, "basecurr", m.base_currency)
        _sub(el, "currency", doc["currency"])
        if doc["currency"] != m.base_currency:
            _date(el, "exchratedate", doc["issued_on"])
            _sub(el, "exchratetype", "Intacct Daily Rate")
    items = _sub(el, "invoiceitems")
    for (kind, amount, memo), account in zip(lines, accounts):
        _line(items, account, amount, memo, m)
    return el


def create_customer(doc: dict, cid: str) -> ET.Element:
    c = doc["customer"]
    el = ET.Element("create")
    cust = _sub(el, "CUSTOMER")
    _sub(cust, "CUSTOMERID", cid)
    _sub(cust, "NAME", _clip(c["name"], 100))
    contact = _sub(cust, "DISPLAYCONTACT")
    _sub(contact, "PRINTAS", _clip(c["name"], 200))
    if c.get("email"):
        _sub(contact, "EMAIL1", c["email"])
    if c.get("phone"):
        _sub(contact, "PHONE1", c["phone"])
    return el


# ---------------------------------------------------------------- parsing answers

@dataclass
class Answer:
    """A gateway response: where it failed (control, authentication) and each function's result."""
    control_ok: bool
    auth_ok: bool | None
    errors: list[dict]  # errors of the control/authentication level
    results: list["Result"]
    session: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    ok: bool
    function: str
    control: str
    key: str | None
    data: list[dict]
    errors: list[dict]

    def text(self) -> str:
        return error_text(self.errors)


def _errors(parent: ET.Element | None) -> list[dict]:
    if parent is None:
        return []
    out = []
    for err in parent.iter("error"):
        out.append({k: (err.findtext(k) or "").strip() for k in ("errorno", "description", "description2",
                                                               "correction")})
    return out


def error_text(errors: list[dict]) -> str:
    return "; ".join(" ".join(p for p in (f"[{e['errorno']}]" if e.get("errorno") else "", e.get("description"),
                                          e.get("description2"), e.get("correction")) if p) for e in errors)


def _record(el: ET.Element) -> dict:
    return {child.tag.upper(): (child.text or "").strip() for child in el if len(child) == 0}


def parse(data: bytes) -> Answer:
    try:
        root = fromstring(data)
    except Exception as exc:  # not XML at all (an HTML error page): the caller decides
        raise ValueError(f"not an XML gateway answer: {data[:120]!r}") from exc
    control_ok = (root.findtext("control/status") or "").strip() == "success"
    top_errors = _errors(root.find("errormessage"))
    op = root.find("operation")
    auth_ok = None
    results = []
    if op is not None:
        auth_ok = (op.findtext("authentication/status") or "").strip() == "success"
        top_errors += _errors(op.find("errormessage"))
        for res in op.findall("result"):
            data_el = res.find("data")
            rows = [_record(r) for r in data_el] if data_el is not None else []
            results.append(Result((res.findtext("status") or "").strip() == "success",
                                   (res.findtext("function") or "").strip(), (res.findtext("controlid") or "").strip(),
                                   (res.findtext("key") or "").strip() or None, rows, _errors(res.find("errormessage"))))
    session: dict[str, str] = {}
    api = root.find(".//api")
    if api is not None:
        session = {child.tag: (child.text or "").strip() for child in api}
    return Answer(control_ok, auth_ok, top_errors, results, session)


def dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _total(record: dict, name: str) -> Decimal:
    value = record.get(f"TRX_{name}")
    return dec(value if value not in (None, "") else record.get(name))


def created(record: dict, doc: dict) -> Created:
    """The Created for an ARINVOICE record; Rejected when its total differs from ours."""
    total = _total(record, "TOTALENTERED")
    if total != doc["total"]:
        raise Rejected(f'Sage Intacct invoice {record.get("RECORDNO")} ({record.get("RECORDID")}) totals {total} '
                       f'{doc["currency"]}, ours is {doc["total"]}: reverse that invoice and check the GL mapping')
    return Created(external_id=str(record["RECORDNO"]), number=record.get("RECORDID") or None, url=None,
                   detail={"total": str(total), "reference": record.get("DOCNUMBER"), "state": record.get("STATE")})


def is_ours(record: dict, doc: dict, customer: str | None = None) -> bool:
    return record.get("DOCNUMBER") == reference(doc) and (customer is None or record.get("CUSTOMERID") == customer)


def payment_status(record: dict) -> PaymentStatus:
    total = _total(record, "TOTALENTERED")
    due = _total(record, "TOTALDUE")
    return PaymentStatus(amount_paid=total - due, amount_due=due, paid=due <= 0)
