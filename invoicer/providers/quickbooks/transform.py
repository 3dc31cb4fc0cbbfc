"""Pure mapping for QuickBooks Online (Accounting API v3, JSON): canonical invoice <-> QuickBooks bodies.

No I/O here. Element names follow Intuit's XSDs (../shared/vendor-specs/quickbooks/Finance.xsd); the JSON
API uses the same names. Money stays Decimal end to end: `dumps` writes Decimals as exact JSON numbers and
`loads` reads numbers back as Decimals.

How our total becomes QuickBooks' TotalAmt, to the cent:
  * every item line is a SalesItemLineDetail line with Qty, UnitPrice and Amount = our rounded line amount
    (QuickBooks checks Amount against UnitPrice x Qty rounded half-up to the cent; error 6070);
  * all discounts go into ONE DiscountLineDetail line (QuickBooks allows one per transaction) as an amount,
    PercentBased false, so QuickBooks does not recompute a percentage its own way;
  * tax is sent as an override, TxnTaxDetail.TotalTax = our tax amount, with ApplyTaxAfterDiscount;
  so TotalAmt = sum(line amounts) - discount + TotalTax = doc["total"]. `created` checks what came back
  and raises Rejected naming both figures when QuickBooks says otherwise.
"""
from __future__ import annotations

import json
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ...errors import MappingMissing, Rejected
from ..base import Created, PaymentStatus

MINOR_VERSION = 75  # pinned: Intuit retired minor versions 1-74 in 2025; 75 is the base now
CENT = Decimal("0.01")
DOC_NUMBER_MAX = 21  # Finance.xsd, Transaction.DocNumber: "ValidRange: QBO: max=21"
LINE_KINDS = ("labor", "material", "fee")
DEFAULT_TAX_CODES = {"taxable": "TAX", "non_taxable": "NON"}  # US companies' built-in line codes
PRIVATE_NOTE_MAX = 4000
CUSTOMER_MEMO_MAX = 1000
DESCRIPTION_MAX = 4000
DISPLAY_NAME_MAX = 500


# ---------------------------------------------------------------- JSON with exact decimals

_MARK = "\u0000dec:"


def _mark(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        return _MARK + format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value.replace("\x00", "")  # NUL has no place in QuickBooks text (and marks our numbers here)
    if isinstance(value, dict):
        return {k: _mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark(v) for v in value]
    return value


def dumps(body: dict) -> bytes:
    """JSON with every Decimal written as an exact JSON number (never through a float)."""
    text = json.dumps(_mark(body), ensure_ascii=False, separators=(",", ":"))
    return re.sub(r'"\\u0000dec:(-?[0-9.]+)"', r"\1", text).encode()


def loads(data: bytes | str) -> Any:
    """JSON with every number that has a fraction read as a Decimal."""
    return json.loads(data, parse_float=Decimal)


def dec(value: Any) -> Decimal:
    """A QuickBooks amount as Decimal (ints and strings too; never via float)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # only if a caller parsed without `loads`
        return Decimal(repr(value))
    return Decimal(str(value))


# ---------------------------------------------------------------- options

def _option_path(platform: str, *parts: str) -> str:
    return ".".join(["platforms", platform or "<name>", *parts])


def item_ref(options: dict, platform: str, kind: str) -> str:
    items = options.get("items") or {}
    value = items.get(kind) if isinstance(items, dict) else None
    if value in (None, ""):
        raise MappingMissing(f"QuickBooks needs an item for {kind} lines: set {_option_path(platform, 'items', kind)} "
                             f"to the Id of a QuickBooks product/service")
    return str(value)


def tax_codes(options: dict) -> dict[str, str]:
    """Line tax codes: option `tax_code` is a string (the taxable code) or {taxable, non_taxable}."""
    opt = options.get("tax_code")
    codes = dict(DEFAULT_TAX_CODES)
    if isinstance(opt, dict):
        codes.update({k: str(v) for k, v in opt.items() if k in codes and v not in (None, "")})
    elif opt not in (None, ""):
        codes["taxable"] = str(opt)
    return codes


def reference(doc: dict) -> str:
    """Our reference for the invoice, kept in PrivateNote so a lookup can tell our invoice from another."""
    return f'invoicer:{doc["tenant"]}/{doc["job"]["id"]}'


def quote(value: str) -> str:
    """A string literal for QuickBooks' query language (single quotes, backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def invoice_query(number: str) -> str:
    return f"select * from Invoice where DocNumber = {quote(number)}"


def customer_query(field: str, value: str) -> str:
    return f"select * from Customer where {field} = {quote(value)}"


# ---------------------------------------------------------------- canonical -> QuickBooks

def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _address(addr: dict | None) -> dict | None:
    if not addr or not any(addr.get(k) for k in ("line1", "city", "postal_code")):
        return None
    out = {"Line1": addr.get("line1") or "", "City": addr.get("city") or "",
           "CountrySubDivisionCode": addr.get("region") or "", "PostalCode": addr.get("postal_code") or "",
           "Country": addr.get("country") or ""}
    return {k: v for k, v in out.items() if v}


def display_name(customer: dict) -> str:
    """QuickBooks' DisplayName: unique per company, at most 500 characters, no colon (it separates sub-customers)."""
    name = re.sub(r"\s+", " ", re.sub(r"[:\t\r\n]", " ", customer["name"])).strip()
    return name[:DISPLAY_NAME_MAX]


def distinct_name(name: str, customer_id: str) -> str:
    """Our customer's DisplayName when another holds `name`: the name with our customer id, in 500 characters."""
    suffix = f" ({customer_id})"
    return name[:DISPLAY_NAME_MAX - len(suffix)] + suffix


def customer_body(doc: dict, name: str | None = None) -> dict:
    c = doc["customer"]
    body: dict[str, Any] = {"DisplayName": name or display_name(c)}
    if c.get("email"):
        body["PrimaryEmailAddr"] = {"Address": c["email"]}
    if c.get("phone"):
        body["PrimaryPhone"] = {"FreeFormNumber": c["phone"]}
    bill = _address(c.get("billing_address"))
    if bill:
        body["BillAddr"] = bill
    body["CurrencyRef"] = {"value": doc["currency"]}
    body["Notes"] = f'invoicer customer {c["id"]}'
    return body


def invoice_body(doc: dict, options: dict, customer_id: str, platform: str = "") -> dict:
    """The create-invoice request body. MappingMissing for a missing item mapping; Rejected if unsendable."""
    number = doc["number"]
    if len(number) > DOC_NUMBER_MAX:
        raise Rejected(f"invoice number {number!r} is longer than QuickBooks' {DOC_NUMBER_MAX}-character DocNumber; "
                       f"shorten the tenant's numbering prefix or width")
    codes = tax_codes(options)
    lines: list[dict] = []
    for line in doc["lines"]:
        kind = line["kind"]
        if kind not in LINE_KINDS:
            raise Rejected(f"unknown line kind {kind!r}")
        qty, price, description = line["quantity"], line["unit_price"], line["description"]
        if (qty * price).quantize(CENT, ROUND_HALF_UP) != line["amount"]:
            # QuickBooks wants Amount = UnitPrice x Qty to the cent; a line our currency rounds
            # otherwise (1.5 h x 11875 JPY = 17813) goes as 1 x its amount, the working in the text
            qty, price, description = Decimal(1), line["amount"], f"{description} ({line['quantity']} x {price})"
        lines.append({
            "DetailType": "SalesItemLineDetail",
            "Amount": line["amount"],
            "Description": _clip(description, DESCRIPTION_MAX),
            "SalesItemLineDetail": {
                "ItemRef": {"value": item_ref(options, platform, kind)},
                "UnitPrice": price,
                "Qty": qty,
                "TaxCodeRef": {"value": codes["taxable" if line["taxable"] else "non_taxable"]},
            },
        })
    if doc["discount_total"]:
        detail: dict[str, Any] = {"PercentBased": False}
        if options.get("discount_account"):
            detail["DiscountAccountRef"] = {"value": str(options["discount_account"])}
        lines.append({
            "DetailType": "DiscountLineDetail",
            "Amount": doc["discount_total"],
            "Description": _clip("; ".join(d["description"] for d in doc["discounts"]) or "Discount", DESCRIPTION_MAX),
            "DiscountLineDetail": detail,
        })
    tax: dict[str, Any] = {"TotalTax": doc["tax"]["amount"]}
    if options.get("txn_tax_code"):  # non-AST US companies: the rate/group the override is booked against
        tax = {"TxnTaxCodeRef": {"value": str(options["txn_tax_code"])}, **tax}
    job = doc["job"]
    memo = job.get("summary") or ""
    if job.get("po_number"):
        memo = f'PO {job["po_number"]}. {memo}'.strip()
    body: dict[str, Any] = {
        "DocNumber": number,
        "TxnDate": doc["issued_on"],
        "CurrencyRef": {"value": doc["currency"]},
        "PrivateNote": _clip(f'{reference(doc)} job {job["number"]}', PRIVATE_NOTE_MAX),
        "Line": lines,
        "TxnTaxDetail": tax,
        "CustomerRef": {"value": str(customer_id)},
        "DueDate": doc["due_on"],
        "ApplyTaxAfterDiscount": True,
    }
    if memo:
        body["CustomerMemo"] = {"value": _clip(memo, CUSTOMER_MEMO_MAX)}
    ship = _address(doc.get("service_address"))
    if ship:
        body["ShipAddr"] = ship
    if doc["customer"].get("email"):
        body["BillEmail"] = {"Address": doc["customer"]["email"]}
    expected = sum((l["Amount"] for l in lines if l["DetailType"] == "SalesItemLineDetail"), Decimal(0)) \
        - doc["discount_total"] + doc["tax"]["amount"]
    if expected != doc["total"]:  # the money rules and this mapping disagree: a bug, never sent
        raise Rejected(f"QuickBooks body for {number} adds up to {expected}, the invoice total is {doc['total']}")
    return body


# ---------------------------------------------------------------- QuickBooks -> canonical

def app_url(invoice_id: str, options: dict) -> str:
    host = "https://app.sandbox.qbo.intuit.com" if options.get("sandbox") else "https://app.qbo.intuit.com"
    return f"{host}/app/invoice?txnId={invoice_id}"


def created(invoice: dict, doc: dict, options: dict | None = None) -> Created:
    """The Created for a QuickBooks invoice; Rejected when its total differs from ours."""
    total = dec(invoice.get("TotalAmt", "0"))
    if total != doc["total"]:
        raise Rejected(f'QuickBooks invoice {invoice.get("Id")} ({invoice.get("DocNumber")}) totals {total} '
                       f'{doc["currency"]}, ours is {doc["total"]}: check the company\'s tax settings '
                       f'(TxnTaxDetail.TotalTax override) and void that invoice')
    return Created(external_id=str(invoice["Id"]), number=invoice.get("DocNumber"),
                   url=app_url(str(invoice["Id"]), options or {}),
                   detail={"total": str(total), "balance": str(dec(invoice.get("Balance", total))),
                           "sync_token": invoice.get("SyncToken"), "email_status": invoice.get("EmailStatus")})


def is_ours(invoice: dict, doc: dict) -> bool:
    return reference(doc) in (invoice.get("PrivateNote") or "")


def payment_status(invoice: dict) -> PaymentStatus:
    total = dec(invoice.get("TotalAmt", "0"))
    balance = dec(invoice.get("Balance", total))
    return PaymentStatus(amount_paid=total - balance, amount_due=balance, paid=balance <= 0)


def linked_invoices(payment: dict) -> list[str]:
    """The ids of the invoices a Payment is applied to: its lines' LinkedTxn of TxnType Invoice, once each."""
    out: list[str] = []
    for line in payment.get("Line") or []:
        for txn in (line or {}).get("LinkedTxn") or []:
            if (txn or {}).get("TxnType") == "Invoice" and txn.get("TxnId") and str(txn["TxnId"]) not in out:
                out.append(str(txn["TxnId"]))
    return out


def query_rows(response: dict, entity: str) -> list[dict]:
    return list((response.get("QueryResponse") or {}).get(entity) or [])


def fault_text(body: Any) -> str | None:
    """`code Message: Detail` for each error of a JSON Fault body, or None if it is not one."""
    if not isinstance(body, dict):
        return None
    fault = body.get("Fault") or body.get("fault")
    if not isinstance(fault, dict):
        return None
    errors = fault.get("Error") or fault.get("error") or []
    parts = []
    for e in errors:
        code = e.get("code") or ""
        msg = e.get("Message") or e.get("message") or ""
        detail = e.get("Detail") or e.get("detail") or ""
        parts.append(" ".join(p for p in (f"[{code}]" if code else "", msg, f"- {detail}" if detail else "") if p))
    kind = fault.get("type") or ""
    return f'{kind}: {"; ".join(parts)}' if kind else "; ".join(parts)


def fault_codes(body: Any) -> set[str]:
    if not isinstance(body, dict):
        return set()
    fault = body.get("Fault") or body.get("fault") or {}
    return {str(e.get("code")) for e in (fault.get("Error") or fault.get("error") or []) if e.get("code")}
