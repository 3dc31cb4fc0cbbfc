"""Pure mapping for PayPal Invoicing v2: canonical invoice -> JSON bodies, PayPal objects -> our types.

No I/O here. Money is `{"currency_code": "USD", "value": "251.10"}` with the value a decimal string
(whole numbers for JPY, HUF, TWD); `quantity` is a string.

How the total is made exact (PayPal's `amount.value` must equal doc["total"]):
- every line is one item. A whole quantity whose unit price fits the currency gives `quantity` x
  `unit_amount` exactly; any other line (2.5 h of labour at 95.99) goes as quantity "1" at its
  already-rounded amount, with the quantity and price in its description;
- the discounts are one invoice-level discount amount (`amount.breakdown.discount.invoice_discount`),
  our doc["discount_total"], named in the note;
- the tax is the invoice's custom amount (`amount.breakdown.custom`, label "Tax (FL 8%)"), not a
  per-item tax percent: PayPal computes item taxes per item and rounds each, while our contract
  rounds the tax once on the discount-weighted base, so a percent would drift by a cent on some
  invoices.
So PayPal's total is item_total - discount + custom, the same figures we add up here.

Currencies: only those PayPal takes (https://developer.paypal.com/reference/currency-codes/); HUF and
TWD without decimals (an amount with a fraction is refused), JPY in whole yen. KWD and the rest are
refused before anything is sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from invoicer import money
from invoicer.errors import Rejected
from invoicer.providers.base import Created, PaymentStatus

CURRENCIES = frozenset("AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP RUB SGD SEK "
                       "CHF THB USD".split())
WHOLE_UNITS = frozenset({"JPY", "HUF", "TWD"})  # PayPal: no decimals
NUMBER_MAX = 25  # search_data.invoice_number (the duplicate guard must be searchable); detail allows 127
NAME_MAX = 200
DESCRIPTION_MAX = 1000
NOTE_MAX = 4000
LABEL_MAX = 50
LIMIT = Decimal(1000000)  # item unit_amount and custom amount: "from -1000000 to 1000000"
ADDRESS_FIELDS = {"line1": "address_line_1", "city": "admin_area_2", "region": "admin_area_1",
                  "postal_code": "postal_code", "country": "country_code"}  # ours -> PayPal's


def decimals(currency: str) -> int:
    return 0 if currency in WHOLE_UNITS else money.minor_unit(currency)


def amount(value: Decimal, currency: str, what: str = "amount") -> dict:
    """PayPal money; Rejected when the amount has more decimals than PayPal takes in that currency."""
    q = Decimal(1).scaleb(-decimals(currency))
    v = Decimal(value)
    if v != v.quantize(q):
        raise Rejected(f"paypal: {what} {value} {currency} has decimals PayPal does not take in {currency}")
    return {"currency_code": currency, "value": format(v.quantize(q), "f")}


def value_of(m: dict | None) -> Decimal:
    return Decimal((m or {}).get("value") or "0")


def check(doc: dict) -> None:
    """Rejected for an invoice PayPal could never take (before anything is sent)."""
    cur = doc["currency"]
    if cur not in CURRENCIES:
        raise Rejected(f"paypal: PayPal does not take payments in {cur}")
    if len(doc["number"]) > NUMBER_MAX:
        raise Rejected(f"paypal: invoice number {doc['number']} is longer than {NUMBER_MAX} characters, so it "
                       f"could not be searched for (our duplicate guard)")
    if Decimal(doc["total"]) <= 0:
        raise Rejected(f"paypal: invoice {doc['number']} totals {doc['total']} {cur}: nothing to request payment for")


def _item(line: dict, currency: str) -> dict:
    qty, unit, total = Decimal(line["quantity"]), Decimal(line["unit_price"]), Decimal(line["amount"])
    q = Decimal(1).scaleb(-decimals(currency))
    item: dict[str, Any] = {"name": line["description"][:NAME_MAX]}
    if qty >= 1 and qty == qty.to_integral_value() and unit == unit.quantize(q) and qty * unit == total \
            and unit <= LIMIT:
        item.update(quantity=str(int(qty)), unit_amount=amount(unit, currency, f'line "{line["description"]}"'))
        detail = ""
    else:
        item.update(quantity="1", unit_amount=amount(total, currency, f'line "{line["description"]}"'))
        detail = money.line_detail(line)
    description = " \u2014 ".join(x for x in (line.get("sku") or "", detail) if x)
    if len(line["description"]) > NAME_MAX:
        description = " ".join(x for x in (line["description"], description) if x)
    if description:
        item["description"] = description[:DESCRIPTION_MAX]
    item["unit_of_measure"] = "HOURS" if line.get("kind") == "labor" and not detail else "QUANTITY"
    return item


def recipient(doc: dict) -> dict:
    c = doc["customer"]
    given, _, family = c["name"].strip().partition(" ")
    billing: dict[str, Any] = {"name": {"given_name": given[:140], **({"surname": family[:140]} if family else {})}}
    if c.get("email"):
        billing["email_address"] = c["email"]
    addr = c.get("billing_address") or {}
    address = {theirs: addr[ours] for ours, theirs in ADDRESS_FIELDS.items() if addr.get(ours)}
    if address.get("country_code"):
        billing["address"] = address
    digits = (c.get("phone") or "").lstrip("+")
    if len(digits) == 11 and digits.startswith("1"):  # PayPal wants the calling code apart: certain only for +1
        billing["phones"] = [{"country_code": "1", "national_number": digits[1:], "phone_type": "MOBILE"}]
    return {"billing_info": billing}


@dataclass(frozen=True)
class Plan:
    currency: str
    invoice: dict  # POST /v2/invoicing/invoices
    total: Decimal


def invoice_body(doc: dict, options: dict | None = None) -> dict:
    options = options or {}
    cur = doc["currency"]
    items = [_item(line, cur) for line in doc["lines"]]
    breakdown: dict[str, Any] = {}
    notes = [f"Job {doc['job']['number']}"]
    discounts = money.applied_discounts(doc)
    if discounts:
        breakdown["discount"] = {"invoice_discount": {"amount": amount(doc["discount_total"], cur, "discount")}}
        notes.append("Discounts: " + "; ".join(f"{label} -{format(a, 'f')}" for label, a in discounts))
    tax = doc["tax"]
    if Decimal(tax["amount"]) != 0:
        breakdown["custom"] = {"label": money.tax_label(tax)[:LABEL_MAX], "amount": amount(tax["amount"], cur, "tax")}
    summary = (doc["job"].get("summary") or "").strip()
    detail: dict[str, Any] = {
        "invoice_number": doc["number"], "currency_code": cur,
        "invoice_date": str(doc["issued_on"]),
        "payment_term": ({"term_type": "DUE_ON_RECEIPT"} if doc["payment_terms_days"] == 0
                         else {"due_date": str(doc["due_on"])}),
        "note": "\n".join(([summary, ""] if summary else []) + notes)[:NOTE_MAX],
        "memo": f"invoicer {doc['tenant']} job {doc['job']['id']}"[:500],
    }
    if doc["job"].get("po_number"):
        detail["reference"] = str(doc["job"]["po_number"])[:120]
    body: dict[str, Any] = {"detail": detail, "primary_recipients": [recipient(doc)], "items": items,
                            "configuration": {"allow_tip": False, "tax_calculated_after_discount": True,
                                              "partial_payment": {"allow_partial_payment": False}}}
    if breakdown:
        body["amount"] = {"breakdown": breakdown}
    if options.get("invoicer_email"):
        body["invoicer"] = {"email_address": options["invoicer_email"]}
    return body


def expected_total(body: dict) -> Decimal:
    """PayPal's arithmetic on what we send: sum(quantity x unit_amount) - invoice discount + custom."""
    items = sum(Decimal(i["quantity"]) * value_of(i["unit_amount"]) for i in body["items"])
    breakdown = (body.get("amount") or {}).get("breakdown") or {}
    discount = value_of(((breakdown.get("discount") or {}).get("invoice_discount") or {}).get("amount"))
    return items - discount + value_of((breakdown.get("custom") or {}).get("amount"))


def plan(doc: dict, options: dict | None = None) -> Plan:
    check(doc)
    body = invoice_body(doc, options)
    total = Decimal(doc["total"])
    if expected_total(body) != total:  # a bug here, never the vendor
        raise Rejected(f"paypal: the items add up to {expected_total(body)} but the total is {total}")
    for m in [i["unit_amount"] for i in body["items"]] + [((body.get("amount") or {}).get("breakdown") or {})
                                                          .get("custom", {}).get("amount")]:
        if m and abs(value_of(m)) > LIMIT:
            raise Rejected(f"paypal: an amount of {m['value']} {doc['currency']} is over PayPal's 1,000,000 limit")
    return Plan(currency=doc["currency"], invoice=body, total=total)


def notification(options: dict) -> dict:
    """The send body: PayPal emails the customer only when the tenant says so (`email_recipient`);
    otherwise the invoice becomes payable through its link, which our own messages carry."""
    return {"send_to_recipient": bool(options.get("email_recipient")), "send_to_invoicer": False}


# ---------------------------------------------------------------- responses

def pay_link(inv: dict) -> str | None:
    """The payer's view of the invoice: detail.metadata.recipient_view_url, else the payer-view link."""
    url = ((inv.get("detail") or {}).get("metadata") or {}).get("recipient_view_url")
    if url:
        return url
    return next((link.get("href") for link in inv.get("links") or [] if link.get("rel") == "payer-view"), None)


def check_total(inv: dict, expected: Decimal) -> None:
    got = value_of(inv.get("amount"))
    if got != expected:
        raise Rejected(f"paypal: invoice {inv.get('id')} totals {got} {(inv.get('amount') or {}).get('currency_code')}"
                       f" on PayPal but {expected} here; it is {inv.get('status')}")


def created(inv: dict) -> Created:
    return Created(external_id=inv["id"], number=(inv.get("detail") or {}).get("invoice_number"), url=pay_link(inv),
                   detail={"status": inv.get("status"), "total": (inv.get("amount") or {}).get("value"),
                           "currency": (inv.get("amount") or {}).get("currency_code")})


def paid(inv: dict) -> Decimal:
    return value_of((inv.get("payments") or {}).get("paid_amount"))


def payment_status(inv: dict) -> PaymentStatus:
    return PaymentStatus(amount_paid=paid(inv), amount_due=value_of(inv.get("due_amount")),
                         paid=inv.get("status") in ("PAID", "MARKED_AS_PAID"))


def issues(body: Any) -> list[str]:
    """PayPal's error name and each detail's issue, e.g. ["UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_NUMBER"]."""
    if not isinstance(body, dict):
        return []
    out = [str(body["name"])] if body.get("name") else []
    if body.get("error"):  # the OAuth endpoint's {"error": "invalid_client", ...}
        out.append(str(body["error"]))
    return out + [str(d.get("issue")) for d in body.get("details") or [] if isinstance(d, dict) and d.get("issue")]


def error_text(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)[:300]
    if body.get("error"):
        return f"{body['error']}: {body.get('error_description') or ''}"[:300]
    text = f"{body.get('name')}: {body.get('message') or ''}"
    for d in (body.get("details") or [])[:3]:
        if isinstance(d, dict):
            text += f"; {d.get('issue')} {d.get('field') or ''} {d.get('description') or ''}".rstrip()
    if body.get("debug_id"):
        text += f" [debug_id {body['debug_id']}]"
    return text[:500]
