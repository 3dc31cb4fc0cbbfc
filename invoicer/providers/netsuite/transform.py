"""Pure mapping for NetSuite's REST record service (record/v1): canonical invoice <-> NetSuite bodies.

No I/O here. Field names follow Oracle's REST web services pages (invoice record, "Format of Sublists",
"Using External IDs"); there is no public machine-readable spec (the metadata catalog is per account).

How our total becomes NetSuite's `total`, to the minor unit:
  * every job line is an `item` sublist line with quantity, rate and amount = our rounded line amount
    (a line whose rounded amount is not quantity x rate goes as 1 x its amount, the working in the text);
  * all discounts go as ONE line of the tenant's discount item with a negative amount;
  * our tax goes as ONE line of the tenant's tax item (an "Other Charge" item booked to sales tax payable),
    and every line carries the tenant's tax code, which must be a zero-rate code, so NetSuite adds no tax
    of its own; so total = sum(line amounts) - discount + tax = doc["total"]. `created` checks what
    NetSuite reports and raises Rejected naming both figures when it differs.
NetSuite currencies have 0 or 2 decimals: an amount in a three-decimal currency (KWD) that is not a whole
number of hundredths is refused before any call.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ... import money
from ...errors import MappingMissing, Rejected
from ..base import Created, PaymentStatus
from ..common import check_decimals, mapped
from ..jsonmoney import dec, loads
from ..jsonmoney import dumps as _dumps

__all__ = ["dec", "dumps", "loads"]

KINDS = ("labor", "material", "fee")
MEMO_MAX = 999
DESCRIPTION_MAX = 4000
TRAN_ID_MAX = 45
MAX_DECIMALS = 2  # NetSuite currency precision is 0 or 2
_EID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def dumps(body: Any) -> bytes:
    """The request body: JSON with every Decimal as an exact number (never through a float), UTF-8."""
    return _dumps(body).encode()


@dataclass(frozen=True)
class Mapping:
    """The tenant's NetSuite ids (platforms.<name> options)."""
    platform: str
    items: dict[str, str] = field(default_factory=dict)  # labor, material, fee, discount, tax
    tax_codes: dict[str, str] = field(default_factory=dict)  # taxable, non_taxable (zero-rate codes)
    currencies: dict[str, str] = field(default_factory=dict)  # ISO code -> currency internal id
    currency: str | None = None  # the ISO code of the customer's / subsidiary's default currency
    subsidiary: str | None = None
    use_our_number: bool = False
    email: bool = False  # NetSuite emails the invoice (toBeEmailed) when it is saved

    @classmethod
    def from_options(cls, options: dict, platform: str) -> "Mapping":
        def strings(name: str) -> dict[str, str]:
            value = options.get(name) or {}
            return {str(k): str(v) for k, v in value.items() if v not in (None, "")} if isinstance(value, dict) else {}
        return cls(platform or "<name>", strings("items"), strings("tax_codes"), strings("currencies"),
                   options.get("currency"), str(options["subsidiary"]) if options.get("subsidiary") else None,
                   bool(options.get("use_our_number")), bool(options.get("send")))

    def item(self, kind: str) -> str:
        return mapped(self.items, kind, f"NetSuite needs an item for {kind} lines: set "
                                        f"platforms.{self.platform}.items.{kind} to the internal id of a NetSuite item")


def external_id(key: str) -> str:
    """Our reference on NetSuite (externalId: letters, digits, _ and - only): from the delivery's key, which is
    the same on every retry of the same invoice on the same platform."""
    value = f"invoicer-{key}"
    if not _EID.match(value):
        value = "invoicer-" + hashlib.sha256(key.encode()).hexdigest()[:48]
    return value


def customer_external_id(tenant: str, customer_id: str) -> str:
    return "invoicer-c-" + hashlib.sha256(f"{tenant}|{customer_id}".encode()).hexdigest()[:40]


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check(doc: dict) -> None:
    """Rejected for an invoice NetSuite could not hold to the minor unit."""
    check_decimals(doc, "NetSuite", MAX_DECIMALS)


def _currency(doc: dict, m: Mapping) -> dict | None:
    code = doc["currency"]
    if code in m.currencies:
        return {"id": m.currencies[code]}
    if m.currency and m.currency.upper() == code:
        return None  # the customer's default currency
    raise MappingMissing(f"NetSuite needs the internal id of currency {code}: set platforms.{m.platform}.currencies."
                         f"{code} (or platforms.{m.platform}.currency: {code} if it is the account's own)")


def lines(doc: dict, m: Mapping) -> list[dict]:
    codes = m.tax_codes
    cent = money.quantum(doc["currency"])
    out = []
    for line in doc["lines"]:
        if line["kind"] not in KINDS:
            raise Rejected(f"unknown line kind {line['kind']!r}")
        qty, rate, text = line["quantity"], line["unit_price"], line["description"]
        if (qty * rate).quantize(cent, ROUND_HALF_UP) != line["amount"]:
            qty, rate, text = Decimal(1), line["amount"], f"{text} ({line['quantity']} x {line['unit_price']})"
        row: dict[str, Any] = {"item": {"id": m.item(line["kind"])}, "quantity": qty, "rate": rate,
                               "amount": line["amount"], "description": _clip(text, DESCRIPTION_MAX)}
        code = codes.get("taxable" if line["taxable"] else "non_taxable")
        if code:
            row["taxCode"] = {"id": code}
        out.append(row)
    extra = []
    if doc["discount_total"]:
        text = "; ".join(d["description"] for d in doc["discounts"]) or "Discount"
        extra.append({"item": {"id": m.item("discount")}, "rate": -doc["discount_total"],
                      "amount": -doc["discount_total"], "description": _clip(text, DESCRIPTION_MAX)})
    if doc["tax"]["amount"]:
        jurisdiction = doc["tax"].get("jurisdiction") or ""
        extra.append({"item": {"id": m.item("tax")}, "rate": doc["tax"]["amount"], "amount": doc["tax"]["amount"],
                      "description": _clip(f"Sales tax {jurisdiction}".strip(), DESCRIPTION_MAX)})
    if codes.get("non_taxable"):
        for row in extra:
            row["taxCode"] = {"id": codes["non_taxable"]}
    return out + extra


def memo(doc: dict) -> str:
    job = doc["job"]
    parts = [f'invoicer {doc["number"]}', f'job {job["number"]}']
    if job.get("po_number"):
        parts.append(f'PO {job["po_number"]}')
    return _clip(" · ".join(parts), MEMO_MAX)


def invoice_body(doc: dict, m: Mapping, customer_id: str) -> dict:
    """The upsert body (PUT /invoice/eid:{externalId}?replace=item). MappingMissing/Rejected before any call."""
    check(doc)
    items = lines(doc, m)
    body: dict[str, Any] = {
        "entity": {"id": str(customer_id)},
        "tranDate": doc["issued_on"],
        "dueDate": doc["due_on"],
        "memo": memo(doc),
        "item": {"items": items},
    }
    currency = _currency(doc, m)
    if currency:
        body["currency"] = currency
    if m.use_our_number:
        if len(doc["number"]) > TRAN_ID_MAX:
            raise Rejected(f'invoice number {doc["number"]!r} is longer than NetSuite\'s {TRAN_ID_MAX}-character tranId')
        body["tranId"] = doc["number"]
    if doc["job"].get("po_number"):
        body["otherRefNum"] = _clip(doc["job"]["po_number"], 45)
    if m.email:
        body["toBeEmailed"] = bool(doc["customer"].get("email"))
        if doc["customer"].get("email"):
            body["email"] = doc["customer"]["email"]
    else:
        body["toBeEmailed"] = False
    added = sum((row["amount"] for row in items), Decimal(0))
    if added != doc["total"]:  # the money rules and this mapping disagree: a bug, never sent
        raise Rejected(f'NetSuite body for {doc["number"]} adds up to {added}, the invoice total is {doc["total"]}')
    return body


def customer_body(doc: dict, m: Mapping) -> dict:
    c = doc["customer"]
    body: dict[str, Any] = {"companyName": _clip(c["name"], 83), "isPerson": False,
                            "comments": f'invoicer customer {c["id"]}'}
    if c.get("email"):
        body["email"] = c["email"]
    if c.get("phone"):
        body["phone"] = c["phone"]
    if m.subsidiary:
        body["subsidiary"] = {"id": m.subsidiary}
    currency = _currency(doc, m)
    if currency:
        body["currency"] = currency
    return body


# ---------------------------------------------------------------- NetSuite -> canonical

def created(record: dict, doc: dict, app_host: str | None = None) -> Created:
    """The Created for a NetSuite invoice record; Rejected when its total differs from ours."""
    total = dec(record.get("total"))
    if total != doc["total"]:
        raise Rejected(f'NetSuite invoice {record.get("id")} ({record.get("tranId")}) totals {total} '
                       f'{doc["currency"]}, ours is {doc["total"]}: the tax codes on its lines must be zero-rate '
                       f'(invoicer sends the tax as its own line); void that invoice')
    url = f"{app_host}/app/accounting/transactions/custinvc.nl?id={record['id']}" if app_host else None
    return Created(external_id=str(record["id"]), number=record.get("tranId"), url=url,
                   detail={"total": str(total), "external_id": record.get("externalId"),
                           "to_be_emailed": record.get("toBeEmailed")})


def payment_status(record: dict) -> PaymentStatus:
    total = dec(record.get("total"))
    remaining = dec(record.get("amountRemaining", total))
    return PaymentStatus(amount_paid=total - remaining, amount_due=remaining, paid=remaining <= 0)


def error_details(body: Any) -> list[dict]:
    if isinstance(body, dict) and isinstance(body.get("o:errorDetails"), list):
        return [d for d in body["o:errorDetails"] if isinstance(d, dict)]
    return []


def error_codes(body: Any) -> set[str]:
    return {str(d.get("o:errorCode")) for d in error_details(body) if d.get("o:errorCode")}


def error_text(body: Any) -> str | None:
    """`[CODE] detail (at path)` for each entry of NetSuite's error body, or None if it is not one."""
    details = error_details(body)
    if not details:
        return None
    parts = []
    for d in details:
        where = d.get("o:errorPath") or d.get("o:errorHeader") or d.get("o:errorQueryParam") or d.get("o:urlPath")
        parts.append(f'[{d.get("o:errorCode", "")}] {d.get("detail", "")}' + (f" (at {where})" if where else ""))
    return "; ".join(parts)
