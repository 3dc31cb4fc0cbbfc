"""Pure mapping for Square (Customers, Orders and Invoices APIs): canonical invoice -> JSON bodies,
Square objects -> our types. No I/O here.

A Square invoice is a payment request for an order, so we send the order first and then the invoice
for it (https://developer.squareup.com/docs/invoices-api/create-publish-invoices). Money is
`{"amount": <integer in the currency's smallest unit>, "currency": "USD"}`; `quantity` is a string.

How the order total is made exact (Square's `total_money` must equal doc["total"] in minor units):
- every line is one ad hoc line item. A whole quantity whose unit price is a whole number of minor
  units, and whose product is the line's rounded amount, goes as `quantity` x `base_price_money`
  (exact, so Square's rounding never comes into play); any other line (2.5 h of labour) goes as
  quantity "1" at its already-rounded amount, with the quantity and price in its name;
- the discounts are ORDER-scoped FIXED_AMOUNT discounts (one per discount, capped together at
  doc["discount_total"] as our money rules cap them). Square spreads an order-level amount over the
  line items, which changes how it is split per line but never the sum;
- the tax is one more line item, "Tax (FL 8%)", carrying doc["tax"]["amount"], with the discounts
  blocked from it (`pricing_blocklists.blocked_discounts`). Square's own percentage taxes were not
  used: Square rounds them per line (banker's rounding, https://developer.squareup.com/docs/
  orders-api/price-adjustments), while our contract rounds tax once on the discount-weighted base,
  so a percentage tax would drift by a cent on some invoices.
So Square's total is sum(lines) - discounts + tax, the same integers we add up here.

Currencies: Square takes payments only in its sellers' currencies (USD, CAD, GBP, EUR, AUD, JPY:
https://developer.squareup.com/docs/build-basics/working-with-monetary-amounts) and an order only in
its location's currency; anything else (KWD, ...) is refused before any request (`check`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from invoicer import money
from invoicer.errors import Rejected
from invoicer.providers.base import Created, PaymentStatus

# The Square-Version we pin (tenant option `square_version` overrides it): the version of the API
# specification the contract tests check our bodies against (../shared/vendor-specs/square/).
DEFAULT_VERSION = "2025-08-20"
CURRENCIES = frozenset({"USD", "CAD", "GBP", "EUR", "AUD", "JPY"})
DELIVERY = {"email": "EMAIL", "sms": "SMS", "share_manually": "SHARE_MANUALLY"}
PAYMENT_METHODS = ("card", "square_gift_card", "bank_account", "buy_now_pay_later", "cash_app_pay")
NAME_MAX = 512  # OrderLineItem.name
DISCOUNT_NAME_MAX = 255
REFERENCE_MAX = 40  # Order.reference_id
TITLE_MAX = 255
KEY_MAX = 128  # CreateInvoice / PublishInvoice idempotency_key (CreateOrder allows 192)
TAX_UID = "tax"
CONTACT_FIELDS = {"email": "email_address", "phone": "phone_number"}  # ours -> Square's
ADDRESS_FIELDS = {"line1": "address_line_1", "city": "locality", "region": "administrative_district_level_1",
                  "postal_code": "postal_code", "country": "country"}


# ---------------------------------------------------------------- money

def to_square(value: Decimal, currency: str, what: str = "amount") -> int:
    """An amount in the currency's smallest unit; Rejected when it has more decimals than that."""
    scaled = Decimal(value).scaleb(money.minor_unit(currency))
    if scaled != scaled.to_integral_value():
        raise Rejected(f"square: {what} {value} {currency} has more decimals than {currency} allows")
    return int(scaled)


def from_square(minor: int, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-money.minor_unit(currency)).quantize(money.quantum(currency))


def money_of(value: Decimal, currency: str, what: str = "amount") -> dict:
    return {"amount": to_square(value, currency, what), "currency": currency}


def check(doc: dict, options: dict | None = None) -> None:
    """Rejected for an invoice Square could never take (before anything is sent)."""
    options = options or {}
    cur = doc["currency"]
    if cur not in CURRENCIES:
        raise Rejected(f"square: Square does not take payments in {cur} (only {', '.join(sorted(CURRENCIES))})")
    location = (options.get("currency") or "").upper()
    if location and cur != location:
        raise Rejected(f"square: the invoice is in {cur} but the Square location takes {location}")
    if Decimal(doc["total"]) <= 0:
        raise Rejected(f"square: invoice {doc['number']} totals {doc['total']} {cur}: nothing to request payment for")


# ---------------------------------------------------------------- small helpers

def idempotency(key: str, step: str) -> str:
    """Our key for one step (`<key>:order`, `<key>:invoice`, `<key>:publish:0`), hashed when too long."""
    value = f"{key}:{step}"
    if len(value) <= KEY_MAX:
        return value
    return f"{hashlib.sha256(key.encode()).hexdigest()[:64]}:{step}"


def _split_name(name: str) -> tuple[str, str]:
    first, _, rest = name.strip().partition(" ")
    return first, rest.strip()


# ---------------------------------------------------------------- customers

def customer_body(doc: dict) -> dict:
    """CreateCustomer without the idempotency_key (see customer_key)."""
    c = doc["customer"]
    given, family = _split_name(c["name"])
    body: dict[str, Any] = {"given_name": given[:300], "reference_id": str(c["id"])[:100],
                            "note": f"invoicer customer {c['id']} ({doc['tenant']})"}
    if family:
        body["family_name"] = family[:300]
    body.update({theirs: c[ours] for ours, theirs in CONTACT_FIELDS.items() if c.get(ours)})
    addr = c.get("billing_address") or {}
    address = {theirs: addr[ours] for ours, theirs in ADDRESS_FIELDS.items() if addr.get(ours)}
    if address:
        body["address"] = address
    return body


def customer_key(doc: dict, body: dict) -> str:
    """One key per (tenant, customer, what we send): a replay makes one Square customer; changed
    details make a new key, never IDEMPOTENCY_KEY_REUSED."""
    identity = json.dumps([doc["tenant"], doc["customer"]["id"], body], sort_keys=True, ensure_ascii=False)
    return "invoicer:customer:" + hashlib.sha256(identity.encode()).hexdigest()[:48]


def search_body(field: str, value: str) -> dict:
    """SearchCustomers by an exact email address or reference id."""
    return {"query": {"filter": {field: {"exact": value}}, "sort": {"field": "CREATED_AT", "order": "ASC"}},
            "limit": 100}


# ---------------------------------------------------------------- orders and invoices

def _line_item(line: dict, currency: str) -> dict:
    amount = to_square(line["amount"], currency, f'line "{line["description"]}"')
    qty = Decimal(line["quantity"])
    unit = Decimal(line["unit_price"]).scaleb(money.minor_unit(currency))
    name = line["description"]
    whole = qty >= 1 and qty == qty.to_integral_value() and unit == unit.to_integral_value()
    if whole and int(qty) * int(unit) == amount:
        quantity, price = str(int(qty)), int(unit)
    else:
        if qty != 1:
            name = f"{name} ({money.line_detail(line)})"
        quantity, price = "1", amount
    item: dict[str, Any] = {"name": name[:NAME_MAX], "quantity": quantity, "item_type": "ITEM",
                            "base_price_money": {"amount": price, "currency": currency}}
    meta = {"invoicer_kind": line.get("kind") or "line"}
    if line.get("sku"):
        meta["invoicer_sku"] = str(line["sku"])[:255]
    item["metadata"] = meta
    return item


@dataclass(frozen=True)
class Plan:
    currency: str
    customer: dict  # CreateCustomer body (without idempotency_key)
    order: dict  # Order (the adapter adds location_id and customer_id)
    total: int  # what Square's order total_money must be


def order_body(doc: dict, key: str) -> dict:
    cur = doc["currency"]
    items = [_line_item(line, cur) for line in doc["lines"]]
    discounts = [{"uid": f"discount-{i}", "name": label[:DISCOUNT_NAME_MAX], "type": "FIXED_AMOUNT", "scope": "ORDER",
                  "amount_money": money_of(amount, cur, f'discount "{label}"')}
                 for i, (label, amount) in enumerate(money.applied_discounts(doc))]
    tax = doc["tax"]
    if Decimal(tax["amount"]) != 0:
        tax_item = {"uid": TAX_UID, "name": money.tax_label(tax), "quantity": "1", "item_type": "ITEM",
                    "base_price_money": money_of(tax["amount"], cur, "tax"), "metadata": {"invoicer_kind": "tax"}}
        if discounts:
            tax_item["pricing_blocklists"] = {"blocked_discounts": [{"discount_uid": d["uid"]} for d in discounts]}
        items.append(tax_item)
    order: dict[str, Any] = {"reference_id": doc["number"][:REFERENCE_MAX], "line_items": items,
                             "metadata": {"invoicer_key": key, "invoicer_number": doc["number"][:255],
                                          "invoicer_job": str(doc["job"]["id"])[:255]}}
    if discounts:
        order["discounts"] = discounts
    return order


def order_total(order: dict) -> int:
    """What Square makes of the order we send (exact by construction, see the module docstring)."""
    gross = sum(int(i["quantity"]) * int(i["base_price_money"]["amount"]) for i in order["line_items"])
    return gross - sum(int(d["amount_money"]["amount"]) for d in order.get("discounts") or [])


def plan(doc: dict, key: str, options: dict | None = None) -> Plan:
    check(doc, options)
    order = order_body(doc, key)
    total = to_square(doc["total"], doc["currency"], "total")
    if order_total(order) != total:  # a bug here, never the vendor
        raise Rejected(f"square: the order adds up to {order_total(order)} but the total is {total}")
    return Plan(currency=doc["currency"], customer=customer_body(doc), order=order, total=total)


def delivery_method(doc: dict, options: dict) -> str:
    """The tenant's `delivery` (email | sms | share_manually, default share_manually): how Square
    itself sends the invoice. Without the contact Square needs for it, we share it ourselves."""
    method = DELIVERY[str(options.get("delivery") or "share_manually").lower()]
    contact = {"EMAIL": "email", "SMS": "phone"}.get(method)
    if contact and not doc["customer"].get(contact):
        return "SHARE_MANUALLY"
    return method


def accepted_methods(options: dict) -> dict:
    chosen = options.get("payment_methods") or ["card"]
    return {m: m in chosen for m in PAYMENT_METHODS}


def invoice_body(doc: dict, options: dict, location_id: str, order_id: str, customer_id: str) -> dict:
    """The Invoice of CreateInvoice (without the idempotency_key)."""
    lines = [f"Job {doc['job']['number']}"]
    if doc["job"].get("po_number"):
        lines.append(f"PO {doc['job']['po_number']}")
    if doc["payment_terms_days"] == 0:
        lines.append("Payment is due on receipt.")
    summary = (doc["job"].get("summary") or "").strip()
    description = "\n".join(([summary, ""] if summary else []) + lines)
    completed = doc["job"].get("completed_at")
    body: dict[str, Any] = {
        "location_id": location_id, "order_id": order_id,
        "primary_recipient": {"customer_id": customer_id},
        "payment_requests": [{"request_type": "BALANCE", "due_date": str(doc["due_on"])}],
        "delivery_method": delivery_method(doc, options),
        "accepted_payment_methods": accepted_methods(options),
        "invoice_number": doc["number"],
        "title": f"Invoice {doc['number']}"[:TITLE_MAX],
        "description": description,
    }
    if completed is not None:
        body["sale_or_service_date"] = (completed.date() if hasattr(completed, "date") else completed).isoformat()
    return body


# ---------------------------------------------------------------- responses

def check_total(order: dict, expected: int) -> None:
    got = (order.get("total_money") or {}).get("amount")
    if got != expected:
        cur = (order.get("total_money") or {}).get("currency") or "?"
        raise Rejected(f"square: order {order.get('id')} totals {got} {cur} on Square but {expected} here; "
                       f"no invoice was made for it")


def created(inv: dict) -> Created:
    """Square's invoice; its `public_url` (set once published) is the pay link on our PDF and messages."""
    return Created(external_id=inv["id"], number=inv.get("invoice_number"), url=inv.get("public_url"),
                   detail={"status": inv.get("status"), "version": inv.get("version"),
                           "order_id": inv.get("order_id"), "location_id": inv.get("location_id"),
                           "delivery_method": inv.get("delivery_method")})


def paid_amount(inv: dict) -> tuple[int, int, str]:
    """(paid, requested, currency) in minor units over the invoice's payment requests."""
    paid = requested = 0
    currency = ""
    for req in inv.get("payment_requests") or []:
        for field, add in (("total_completed_amount_money", "paid"), ("computed_amount_money", "requested")):
            m = req.get(field) or {}
            currency = currency or m.get("currency") or ""
            if add == "paid":
                paid += int(m.get("amount") or 0)
            else:
                requested += int(m.get("amount") or 0)
    return paid, requested, currency


def payment_status(inv: dict) -> PaymentStatus:
    paid, requested, cur = paid_amount(inv)
    if not cur:
        raise Rejected(f"square: invoice {inv.get('id')} has no payment request amounts")
    return PaymentStatus(amount_paid=from_square(paid, cur), amount_due=from_square(max(requested - paid, 0), cur),
                         paid=inv.get("status") == "PAID")


def error_codes(body: Any) -> list[tuple[str, str]]:
    """(category, code) of each error in Square's body {"errors": [{category, code, detail, field}]}."""
    errs = body.get("errors") if isinstance(body, dict) else None
    return [(str(e.get("category") or ""), str(e.get("code") or "")) for e in errs or [] if isinstance(e, dict)]


def error_text(body: Any) -> str:
    errs = body.get("errors") if isinstance(body, dict) else None
    if not errs:
        return str(body)[:300]
    parts = []
    for e in errs[:3]:
        if not isinstance(e, dict):
            continue
        text = f"{e.get('category')}/{e.get('code')}: {e.get('detail') or ''}".strip()
        if e.get("field"):
            text += f" (field {e['field']})"
        parts.append(text)
    return "; ".join(parts)[:500]
