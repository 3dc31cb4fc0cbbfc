"""Pure mapping for FreshBooks (the accounting API, /accounting/account/{account_id}/...): the canonical invoice
-> `invoice`/`client` bodies, and FreshBooks' answers -> `Created` / `PaymentStatus`. No I/O here.

Money: every amount is `{"amount": "<decimal string>", "code": "<currency>"}` (FreshBooks' own shape; see
amcintosh/freshbooks-python-sdk, examples/create_invoice_extended.py). How the total is made ours:
- a line goes as qty x unit_cost when that product rounds to our line amount whichever way FreshBooks rounds,
  else as 1 x its amount with "(qty x price)" in the description;
- taxable lines carry our rate as `taxName1`/`taxAmount1` (FreshBooks' tax fields hold a name and a
  percentage), so FreshBooks records the tax as tax;
- FreshBooks' own discount is a percentage of the subtotal (`discount_value`), which cannot carry an exact
  amount: our discount goes as negative lines instead, one for the taxed lines' share (taxed like them) and
  one for the untaxed lines' share, split pro rata to the cent;
- FreshBooks' rounding of tax is not documented: if its total differs from ours by a rounding unit, the
  adapter adds one untaxed "Rounding" line of that unit (`rounding_line`); anything else is refused.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ... import money
from ...errors import Rejected
from .. import fit
from ..base import Created, PaymentStatus

KINDS = ("labor", "material", "fee")
QTY = Decimal("0.01")
NAME_MAX = 200
APP_URL = "https://my.freshbooks.com/#/invoice/{account}-{id}"


def amount(value: Any) -> Decimal:
    """A FreshBooks money value ({amount, code} or a string) as Decimal."""
    if isinstance(value, dict):
        value = value.get("amount")
    if value is None or value == "":
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money_of(value: Decimal, currency: str) -> dict:
    return {"amount": format(money.round_money(value, currency), "f"), "code": currency}


def percent(rate: Decimal) -> str:
    return fit.plain(rate * 100)


# ---------------------------------------------------------------- requests

def _line(name: str, description: str, qty: Decimal, unit: Decimal, currency: str, tax: str | None,
          rate: Decimal) -> dict:
    line: dict[str, Any] = {"type": 0, "name": name[:NAME_MAX], "description": description, "qty": fit.plain(qty),
                            "unit_cost": money_of(unit, currency)}
    if tax:
        line.update(taxName1=tax, taxAmount1=percent(rate))
    return line


def lines(doc: dict) -> list[dict]:
    cur, q = doc["currency"], money.quantum(doc["currency"])
    rate = doc["tax"]["rate"]
    tax = (doc["tax"].get("jurisdiction") or "Tax")[:20] if rate else None
    out = []
    for line in doc["lines"]:
        qty, unit, text = fit.as_sent(line, cur, QTY)
        out.append(_line(line["description"], text, qty, unit, cur, tax if line["taxable"] else None, rate))
    if doc["discount_total"]:
        taxed = sum((li["amount"] for li in doc["lines"] if li["taxable"]), Decimal(0))
        untaxed = doc["subtotal"] - taxed
        on_taxed, on_untaxed = fit.split(doc["discount_total"], [taxed, untaxed], q)
        label = "; ".join(d["description"] for d in doc["discounts"])[:NAME_MAX] or "Discount"
        for share, taxed_share in ((on_taxed, True), (on_untaxed, False)):
            if share:
                out.append(_line(label, "Discount", Decimal(1), -share, cur, tax if taxed_share else None, rate))
    return out


def rounding_line(diff: Decimal, currency: str) -> dict:
    return _line("Rounding", "Rounding", Decimal(1), diff, currency, None, Decimal(0))


def invoice_body(doc: dict, customer_id: str, extra_lines: list[dict] | None = None) -> dict:
    """The body of POST .../invoices/invoices (our number is FreshBooks' invoice_number)."""
    if not doc["lines"]:
        raise Rejected(f"invoice {doc['number']} has no lines")
    inv: dict[str, Any] = {
        "customerid": int(customer_id) if str(customer_id).isdigit() else customer_id,
        "invoice_number": doc["number"],
        "create_date": doc["issued_on"].isoformat(),
        "due_offset_days": (doc["due_on"] - doc["issued_on"]).days,
        "currency_code": doc["currency"],
        "lines": lines(doc) + list(extra_lines or []),
    }
    if doc["job"].get("po_number"):
        inv["po_number"] = doc["job"]["po_number"][:64]
    if doc["job"].get("summary"):
        inv["notes"] = doc["job"]["summary"][:4000]
    return {"invoice": inv}


def client_body(customer: dict, currency: str) -> dict:
    name = customer["name"].strip()
    first, _, last = name.partition(" ")
    client: dict[str, Any] = {"organization": name[:100], "fname": first[:50], "lname": last[:50],
                              "currency_code": currency}
    if customer.get("email"):
        client["email"] = customer["email"]
    if customer.get("phone"):
        client["mob_phone"] = customer["phone"]
    address = customer.get("billing_address")
    if address:
        client.update(p_street=address.get("line1", ""), p_city=address.get("city", ""),
                      p_province=address.get("region", ""), p_code=address.get("postal_code", ""),
                      p_country=address.get("country", ""))
    return {"client": client}


def send_body(doc: dict, to: str) -> dict:
    return {"invoice": {"action_email": True, "email_recipients": [to], "email_include_pdf": True,
                        "invoice_customized_email": {"subject": f"Invoice {doc['number']} from {doc['seller']['name']}",
                                                     "body": f"Invoice {doc['number']} is attached."}}}


MARK_SENT = {"invoice": {"action_mark_as_sent": True}}


# ---------------------------------------------------------------- answers

def result(answer: dict) -> dict:
    return (answer.get("response") or {}).get("result") or {}


def pick_invoice(invoices: list[dict], doc: dict) -> dict | None:
    for inv in invoices:
        if inv.get("invoice_number") == doc["number"] and inv.get("vis_state", 0) == 0:
            return inv
    return None


def pick_client(clients: list[dict], customer: dict) -> dict | None:
    email = (customer.get("email") or "").casefold()
    for c in clients:
        if email and (c.get("email") or "").casefold() == email and c.get("vis_state", 0) == 0:
            return c
    return None


def difference(inv: dict, doc: dict) -> Decimal:
    return doc["total"] - amount(inv.get("amount"))


def check_total(inv: dict, doc: dict) -> None:
    theirs = amount(inv.get("amount"))
    code = (inv.get("amount") or {}).get("code") if isinstance(inv.get("amount"), dict) else None
    if theirs != doc["total"] or (code and code != doc["currency"]):
        raise Rejected(f"freshbooks computed total {theirs} {code or ''} for invoice {doc['number']} (id "
                       f"{inv.get('id')}) but ours is {doc['total']} {doc['currency']}")


def is_draft(inv: dict) -> bool:
    return inv.get("v3_status") == "draft" or inv.get("status") == 1


def created(inv: dict, account_id: str) -> Created:
    return Created(external_id=str(inv["id"]), number=inv.get("invoice_number"),
                   url=APP_URL.format(account=account_id, id=inv["id"]),
                   detail={"total": str(amount(inv.get("amount"))), "status": inv.get("v3_status"),
                           "payment_status": inv.get("payment_status")})


def payment_status(inv: dict) -> PaymentStatus:
    paid, due = amount(inv.get("paid")), amount(inv.get("outstanding"))
    return PaymentStatus(amount_paid=paid, amount_due=due, paid=inv.get("payment_status") == "paid" and due == 0)


def error_text(body: Any, fallback: str = "") -> str:
    """FreshBooks' error envelope `{"response": {"errors": [{"errno", "field", "message"}]}}`, or an
    auth error `{"error", "error_description"}`, as one line."""
    if isinstance(body, dict):
        errors = (body.get("response") or {}).get("errors") or body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(f"[{e.get('errno')}] {e.get('message')}" + (f" ({e['field']})" if e.get("field") else "")
                             for e in errors if isinstance(e, dict))
        if body.get("error"):
            return " ".join(str(x) for x in (body["error"], body.get("error_description")) if x)
        if body.get("message"):
            return str(body["message"])
    return fallback[:300]
