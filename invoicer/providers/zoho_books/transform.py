"""Pure mapping for Zoho Books (API v3): the canonical invoice -> `invoices`/`contacts` bodies, and Zoho's
answers -> `Created` / `PaymentStatus`. No I/O here.

How Zoho's total is made to equal ours to the minor unit (Zoho Books API v3, "Invoices": line_items[]
rate/quantity/tax_id, entity-level `discount` with `is_discount_before_tax`; the currency's
`price_precision` is 0 for JPY, 2 for most, 3 for KWD/BHD/OMR):
- a line goes as quantity x rate when that product rounds to our line amount whichever way Zoho rounds
  (and the quantity has at most 2 decimals), else as 1 x its amount with "(qty x price)" in the description;
- our discounts (already rounded, contract rule 2) go as ONE entity-level discount amount, applied
  before tax, so Zoho spreads it over the lines pro rata as contract rule 3 does;
- taxable lines carry the tax_id of a Zoho tax whose percentage is our rate (the adapter finds or makes
  it); with one rate on the invoice Zoho's tax is rate x discounted taxable base rounded once -- ours,
  except on a half-unit tie, which Zoho may round the other way (its rounding mode is not documented):
  then the adapter updates the invoice with an `adjustment` of that one unit ("Rounding").
The adapter compares Zoho's `total` with ours after every create and lookup and never calls a different
total a success.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ... import money
from ...errors import MappingMissing, Rejected
from .. import fit
from ..base import Created, PaymentStatus
from ..jsonmoney import dumps, loads  # exact Decimal JSON numbers  # noqa: F401

KINDS = ("labor", "material", "fee")
QTY = Decimal("0.01")  # quantities are sent with at most 2 decimals
NAME_MAX = 100
REFERENCE_MAX = 100  # Zoho: reference_number "Max-length [100]" (not confirmed for every edition)
DATA_CENTERS = {  # Zoho "Multi-DC": API host and accounts (token) host per data centre
    "com": ("https://www.zohoapis.com", "https://accounts.zoho.com"),
    "eu": ("https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    "in": ("https://www.zohoapis.in", "https://accounts.zoho.in"),
    "com.au": ("https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    "jp": ("https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    "ca": ("https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    "com.cn": ("https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
    "sa": ("https://www.zohoapis.sa", "https://accounts.zoho.sa"),
}
APP_URL = "https://books.zoho.{dc}/app/{org}#/invoices/{id}"


def amount(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def percent_key(rate: Decimal) -> str:
    """Our tax rate (a fraction) as Zoho's tax_percentage, e.g. 0.0825 -> "8.25"."""
    text = format((rate * 100).normalize(), "f")
    return text


# ---------------------------------------------------------------- requests

def invoice_body(doc: dict, customer_id: str, tax_id: str | None, options: dict,
                 adjustment: Decimal | None = None) -> dict:
    """The body of POST /invoices (and of the PUT that adds a rounding `adjustment`). `tax_id`: the Zoho
    tax at our rate (None when nothing is taxed)."""
    if not doc["lines"]:
        raise Rejected(f"invoice {doc['number']} has no lines")
    taxed = doc["tax"]["amount"] != 0 or (doc["tax"]["rate"] != 0 and any(li["taxable"] for li in doc["lines"]))
    if taxed and not tax_id:
        raise MappingMissing(f"invoice {doc['number']}: no Zoho tax for {percent_key(doc['tax']['rate'])} %")
    items = options.get("items") or {}
    lines = []
    for line in doc["lines"]:
        qty, rate, text = fit.as_sent(line, doc["currency"], QTY)
        item: dict[str, Any] = {"name": line["description"][:NAME_MAX], "description": text, "rate": rate,
                                "quantity": qty}
        if items.get(line["kind"]):
            item["item_id"] = str(items[line["kind"]])
        if line["taxable"] and taxed:
            item["tax_id"] = tax_id
        lines.append(item)
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "reference_number": doc["number"][:REFERENCE_MAX],
        "date": doc["issued_on"].isoformat(),
        "due_date": doc["due_on"].isoformat(),
        "line_items": lines,
        "is_inclusive_tax": False,
    }
    notes = " ".join(x for x in (doc["job"].get("summary") or "",
                                 f"PO {doc['job']['po_number']}" if doc["job"].get("po_number") else "") if x)
    if notes:
        body["notes"] = notes[:2000]
    if adjustment:
        body.update(adjustment=adjustment, adjustment_description="Rounding")
    if options.get("use_our_number"):
        body["invoice_number"] = doc["number"]
    if doc["discount_total"]:
        body.update(discount=doc["discount_total"], discount_type="entity_level", is_discount_before_tax=True)
    return body


def contact_body(customer: dict, currency_id: str | None, name: str | None = None) -> dict:
    """The body of POST /contacts for one of our customers (a customer-type contact)."""
    body: dict[str, Any] = {"contact_name": (name or customer["name"]).strip()[:200], "contact_type": "customer"}
    if currency_id:
        body["currency_id"] = currency_id
    person: dict[str, Any] = {"is_primary_contact": True}
    if customer.get("email"):
        person["email"] = customer["email"]
    if customer.get("phone"):
        person["phone"] = customer["phone"]
    if len(person) > 1:
        body["contact_persons"] = [person]
    address = customer.get("billing_address")
    if address:
        body["billing_address"] = {"address": address.get("line1", ""), "city": address.get("city", ""),
                                   "state": address.get("region", ""), "zip": address.get("postal_code", ""),
                                   "country": address.get("country", "")}
    return body


def tax_body(rate: Decimal, jurisdiction: str = "") -> dict:
    pct = percent_key(rate)
    return {"tax_name": f"Sales tax {pct}%" + (f" {jurisdiction}" if jurisdiction else ""),
            "tax_percentage": Decimal(pct), "tax_type": "tax"}


def email_body(doc: dict, to: str) -> dict:
    return {"to_mail_ids": [to], "subject": f"Invoice {doc['number']} from {doc['seller']['name']}",
            "body": f"Dear {doc['customer']['name']},<br><br>Please find attached invoice {doc['number']}."}


# ---------------------------------------------------------------- answers

def pick_invoice(invoices: list[dict], doc: dict) -> dict | None:
    """The invoice we made for `doc` among a list (void ones do not count)."""
    for inv in invoices:
        if inv.get("reference_number") == doc["number"][:REFERENCE_MAX] and inv.get("status") != "void":
            return inv
    return None


def pick_tax(taxes: list[dict], rate: Decimal) -> str | None:
    want = rate * 100
    for tax in taxes:
        if amount(tax.get("tax_percentage")) == want and tax.get("tax_type", "tax") == "tax":
            return str(tax["tax_id"])
    return None


def pick_contact(contacts: list[dict], customer: dict) -> dict | None:
    email = (customer.get("email") or "").casefold()
    active = [c for c in contacts if c.get("status", "active") == "active"
              and c.get("contact_type", "customer") == "customer"]
    for c in active:
        if email and (c.get("email") or "").casefold() == email:
            return c
    return None


def rounding_fix(inv: dict, doc: dict) -> Decimal | None:
    """The `adjustment` that makes Zoho's total ours when the two differ by rounding alone (a half-unit
    tie in the tax that Zoho rounds the other way: at most one minor unit), else None."""
    diff = doc["total"] - amount(inv.get("total"))
    if diff and abs(diff) <= money.quantum(doc["currency"]):
        return amount(inv.get("adjustment")) + diff
    return None


def check_total(inv: dict, doc: dict) -> None:
    theirs = amount(inv.get("total"))
    if theirs != doc["total"]:
        raise Rejected(f"zoho_books computed total {theirs} {doc['currency']} for invoice {doc['number']} "
                       f"(invoice_id {inv.get('invoice_id')}) but ours is {doc['total']} {doc['currency']}")
    if inv.get("currency_code") and inv["currency_code"] != doc["currency"]:
        raise Rejected(f"zoho_books made invoice {doc['number']} in {inv['currency_code']}, not {doc['currency']}")


def created(inv: dict, options: dict) -> Created:
    dc = options.get("data_center") or "com"
    org = options.get("organization_id", "")
    return Created(external_id=str(inv["invoice_id"]), number=inv.get("invoice_number"),
                   url=inv.get("invoice_url") or APP_URL.format(dc=dc, org=org, id=inv["invoice_id"]),
                   detail={"total": str(amount(inv.get("total"))), "status": inv.get("status"),
                           "reference": inv.get("reference_number"), "emailed": bool(inv.get("is_emailed"))})


def payment_status(inv: dict) -> PaymentStatus:
    total, balance = amount(inv.get("total")), amount(inv.get("balance"))
    return PaymentStatus(amount_paid=total - balance, amount_due=balance,
                         paid=inv.get("status") == "paid" and balance == 0)


def error_text(body: Any, fallback: str = "") -> str:
    """Zoho's `{code, message}` error body as one line ("[1001] Invoice number already exists")."""
    if isinstance(body, dict) and body.get("message") is not None:
        return f"[{body.get('code')}] {body['message']}"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return fallback[:300]
