"""Pure mapping for Stripe Invoicing: canonical invoice -> form parameters, Stripe objects -> our types.

No I/O here. The adapter sends what `plan()` returns; the simulator and the contract tests decode the
same form encoding (`encode` / `decode`, Stripe's bracket notation: `metadata[invoicer_key]=...`,
`custom_fields[0][name]=...`).

How the total is made exact (Stripe's `total` must equal doc["total"] in minor units):
- every line is one invoice item. A whole quantity whose price is a whole number of minor units is
  sent as `quantity` x `unit_amount_decimal` (the product is exact, so Stripe's rounding of
  quantity x unit amount never comes into play); any other line (3.25 h of labour, 2.5 lb of
  refrigerant) is sent as its already-rounded `amount`, with the quantity and price in the
  description, so the customer still sees how it was made;
- each discount is one NEGATIVE invoice item (Stripe: "passing in a negative amount will reduce the
  amount_due"), capped together at doc["discount_total"] exactly as the money rules cap them;
- the tax is one invoice item named "Tax (FL 8%)" carrying doc["tax"]["amount"].
Stripe tax rates and coupons were not used: Stripe computes tax per line item and rounds it there,
while our contract rounds tax ONCE on the discount-weighted taxable base, so a tax rate would drift by
a cent on some invoices; coupons would need mapping objects per tenant. With plain items Stripe's
`total` is the plain sum of the item amounts, which is the same integer sum we compute here.
The invoice is created with `discounts=""` (no coupon inherited from the customer),
`automatic_tax[enabled]=false` and `pending_invoice_items_behavior=exclude`, so nothing Stripe-side
adds to it; the adapter still compares Stripe's `total` with ours before finalising.

Currency units (https://docs.stripe.com/currencies, read 2026-11): Stripe wants amounts in the
currency's smallest unit, but its idea of that unit differs from ISO 4217 in places:
- zero-decimal in Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF (MGA has
  2 decimals in ISO: an amount with fractional ariary cannot be sent and is rejected);
- three-decimal: BHD JOD KWD OMR TND. Payments in them must end in 0 (Stripe: "round amounts to the
  nearest ten"; 5.124 KWD -> 5120 or 5130). We never round someone else's total: an invoice whose
  total is not a multiple of 10 thousandths is rejected before anything is sent. Whether single
  invoice items must also end in 0 is not documented; we only require it of the total (the amount
  that becomes the PaymentIntent);
- ISK stays two-decimal in the API (100 = 1 krona) and must be divisible by 100; amounts in whole
  krona (ISO has 0 decimals) always are.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from invoicer import money
from invoicer.errors import Rejected
from invoicer.providers.base import Created, PaymentStatus

# The Stripe-Version we pin (tenant option `api_version` overrides it). It is the version the installed
# `stripe` package (16.1.0, the contract tests' oracle for parameter names) was generated for.
DEFAULT_API_VERSION = "2026-10-28.endive"

ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
DIVISIBLE_BY = {"ISK": 100}  # Stripe: two-decimal in the API, whole units only
TOTAL_DIVISIBLE_BY = {c: 10 for c in THREE_DECIMAL}

CUSTOM_FIELD_NAME_MAX = 40   # InvoiceCreateParamsCustomField: "up to 40 characters"
CUSTOM_FIELD_VALUE_MAX = 140  # "up to 140 characters"
METADATA_VALUE_MAX = 500     # https://docs.stripe.com/api/metadata


# ---------------------------------------------------------------- money

def exponent(currency: str) -> int:
    """Decimals of Stripe's amount unit for a currency (see the module docstring)."""
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    if code in DIVISIBLE_BY:
        return 2
    return money.minor_unit(code)


def to_stripe(value: Decimal, currency: str, what: str = "amount") -> int:
    """An amount in Stripe's integer unit; Rejected when Stripe cannot hold it exactly."""
    scaled = Decimal(value).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise Rejected(f"stripe: {what} {value} {currency.upper()} cannot be expressed in Stripe's unit for "
                       f"{currency.upper()} ({exponent(currency)} decimals)")
    minor = int(scaled)
    step = DIVISIBLE_BY.get(currency.upper())
    if step and minor % step:
        raise Rejected(f"stripe: {what} {value} {currency.upper()} must be a whole number of units on Stripe")
    return minor


def from_stripe(minor: int, currency: str) -> Decimal:
    """Stripe's integer amount as a Decimal with the currency's ISO decimals where that is exact."""
    value = Decimal(int(minor)).scaleb(-exponent(currency))
    q = money.quantum(currency.upper())
    return value.quantize(q) if value == value.quantize(q) else value


def _plain(value: Decimal) -> str:
    """A Decimal as a plain string (no exponent), trailing zeros after the point dropped."""
    text = format(Decimal(value).normalize(), "f")
    return text


def percent_label(rate: Decimal) -> str:
    return f"{_plain(Decimal(rate) * 100)}%"


def tax_label(tax: dict) -> str:
    juris = (tax.get("jurisdiction") or "").strip()
    return f"Tax ({juris} {percent_label(tax['rate'])})" if juris else f"Tax ({percent_label(tax['rate'])})"


# ---------------------------------------------------------------- form encoding (Stripe's bracket notation)

def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def encode(params: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested params -> form pairs: {"metadata": {"k": "v"}} -> [("metadata[k]", "v")]; lists by index."""
    pairs: list[tuple[str, str]] = []
    for k, v in params.items():
        name = f"{prefix}[{k}]" if prefix else str(k)
        if v is None:
            continue
        if isinstance(v, dict):
            pairs += encode(v, name)
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                if isinstance(item, dict):
                    pairs += encode(item, f"{name}[{i}]")
                else:
                    pairs.append((f"{name}[{i}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(v)))
    return pairs


def _split(name: str) -> list[str]:
    head, _, rest = name.partition("[")
    parts = [head]
    while rest:
        inner, _, rest = rest.partition("]")
        parts.append(inner)
        rest = rest[1:] if rest.startswith("[") else rest
    return parts


def _listify(node):
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        keys = list(node)
        if keys and all(k.isdigit() or k == "" for k in keys):
            if all(k.isdigit() for k in keys):
                return [node[k] for k in sorted(keys, key=int)]
            return node[""] if isinstance(node[""], list) else [node[""]]
    return node


def decode(pairs: list[tuple[str, str]]) -> dict:
    """Form pairs -> nested params (strings at the leaves): the inverse of `encode`, as Stripe parses them."""
    root: dict = {}
    for name, value in pairs:
        parts = _split(name)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"{name}: conflicts with an earlier scalar")
        last = parts[-1]
        if last == "":  # name[]=a&name[]=b
            bucket = node.setdefault("", [])
            bucket.append(value)
        else:
            node[last] = value
    return _listify(root)


# ---------------------------------------------------------------- request parameters

@dataclass(frozen=True)
class Plan:
    """Everything create_invoice sends, minus the ids Stripe gives out on the way."""
    currency: str  # lower-case, as Stripe wants it
    customer: dict  # POST /v1/customers
    invoice: dict  # POST /v1/invoices (the adapter adds `customer`)
    items: list[dict] = field(default_factory=list)  # POST /v1/invoiceitems (adapter adds customer, invoice)
    total: int = 0  # what Stripe's `total` must be, in Stripe's unit


def customer_params(doc: dict) -> dict:
    c = doc["customer"]
    params: dict[str, Any] = {"name": c["name"], "metadata": {"invoicer_customer": c["id"],
                                                              "invoicer_tenant": doc["tenant"]}}
    if c.get("email"):
        params["email"] = c["email"]
    if c.get("phone"):
        params["phone"] = c["phone"]
    addr = c.get("billing_address")
    if addr:
        params["address"] = {k: v for k, v in {
            "line1": addr.get("line1"), "city": addr.get("city"), "state": addr.get("region"),
            "postal_code": addr.get("postal_code"), "country": addr.get("country")}.items() if v}
    return params


def customer_idempotency_key(doc: dict, params: dict) -> str:
    """One key per (tenant, customer, what we send): two invoices for a new customer within Stripe's
    24 h replay window make one Stripe customer; changed details make a new key, never an
    idempotency_error."""
    digest = hashlib.sha256(repr(encode(params)).encode()).hexdigest()[:16]
    who = hashlib.sha256(f'{doc["tenant"]}|{doc["customer"]["id"]}'.encode()).hexdigest()[:24]
    return f"invoicer:customer:{who}:{digest}"


def invoice_params(doc: dict, key: str, options: dict | None = None) -> dict:
    options = options or {}
    terms = int(doc.get("payment_terms_days") or 0)
    summary = (doc["job"].get("summary") or "").strip()
    if terms == 0:
        # Stripe refuses days_until_due=0. A `due_date` of "now" would differ on every retry and turn
        # the replay of this request's idempotency key into an idempotency_error; a fixed due_date
        # from doc["due_on"] can be in the past by the time a late retry runs. So: due in 1 day,
        # and the memo says payment is due on receipt (our PDF says the same).
        summary = f"{summary}\n\nPayment is due on receipt." if summary else "Payment is due on receipt."
    fields = []
    if not options.get("custom_number"):
        fields.append({"name": "Invoice", "value": doc["number"]})
    fields.append({"name": "Job", "value": str(doc["job"]["number"])})
    if doc["job"].get("po_number"):
        fields.append({"name": "PO number", "value": doc["job"]["po_number"]})
    params: dict[str, Any] = {
        "collection_method": "send_invoice",
        "days_until_due": max(1, terms),
        "currency": doc["currency"].lower(),
        "auto_advance": False,  # we finalise and send ourselves, each with its own idempotency key
        "automatic_tax": {"enabled": False},
        "discounts": "",  # inherit no coupon from the customer: the total is ours
        "pending_invoice_items_behavior": "exclude",
        "custom_fields": [{"name": f["name"][:CUSTOM_FIELD_NAME_MAX], "value": f["value"][:CUSTOM_FIELD_VALUE_MAX]}
                          for f in fields[:4]],
        "metadata": {"invoicer_key": key, "invoicer_number": doc["number"], "invoicer_tenant": doc["tenant"],
                     "invoicer_job": str(doc["job"]["id"])[:METADATA_VALUE_MAX]},
    }
    if summary:
        params["description"] = summary
    if options.get("custom_number"):
        params["number"] = doc["number"]
    return params


def _line_item(line: dict, currency: str) -> dict:
    amount = to_stripe(line["amount"], currency, f'line "{line["description"]}"')
    qty = Decimal(line["quantity"])
    unit = Decimal(line["unit_price"]).scaleb(exponent(currency))
    description = line["description"]
    item: dict[str, Any] = {}
    if qty >= 1 and qty == qty.to_integral_value() and unit == unit.to_integral_value() \
            and int(qty) * int(unit) == amount:
        item["quantity"] = int(qty)
        item["unit_amount_decimal"] = Decimal(int(unit))
    else:
        if qty != 1:
            unit_text = format(Decimal(line["unit_price"]), "f")
            suffix = " h" if line.get("kind") == "labor" else ""
            description = f"{description} ({_plain(qty)}{suffix} \u00d7 {unit_text})"
        item["amount"] = amount
    item["description"] = description
    return item


def item_params(doc: dict, key: str) -> list[dict]:
    """One parameter set per invoice item, in order: lines, discounts (negative), tax."""
    currency = doc["currency"]
    cur = currency.lower()
    items: list[dict] = []

    def add(kind: str, params: dict, **meta: str) -> None:
        i = len(items)
        params = {"currency": cur, **params,
                  "metadata": {"invoicer_key": key, "invoicer_item": str(i), "invoicer_kind": kind, **meta}}
        items.append(params)

    for line in doc["lines"]:
        meta = {"invoicer_sku": line["sku"]} if line.get("sku") else {}
        add(line.get("kind") or "line", _line_item(line, currency), **meta)
    remaining = Decimal(doc["discount_total"])
    for d in doc["discounts"]:
        amt = min(Decimal(d["amount"]), remaining)
        remaining -= amt
        if amt <= 0:
            continue
        label = d["description"]
        if d.get("percent") is not None:
            label = f"{label} ({_plain(d['percent'])}%)"
        add("discount", {"amount": -to_stripe(amt, currency, f'discount "{d["description"]}"'),
                         "description": label, "discountable": False})
    tax = doc["tax"]
    if Decimal(tax["amount"]) != 0:
        add("tax", {"amount": to_stripe(tax["amount"], currency, "tax"), "description": tax_label(tax),
                    "discountable": False})
    return items


def item_amount(params: dict) -> int:
    """The amount Stripe makes of one item's parameters (exact by construction, see the docstring)."""
    if "amount" in params:
        return int(params["amount"])
    return int(params.get("quantity", 1)) * int(Decimal(params["unit_amount_decimal"]))


def plan(doc: dict, key: str, options: dict | None = None) -> Plan:
    """All parameters for one invoice; Rejected when Stripe cannot carry its amounts exactly."""
    currency = doc["currency"]
    total = to_stripe(doc["total"], currency, "total")
    step = TOTAL_DIVISIBLE_BY.get(currency.upper())
    if step and total % step:
        raise Rejected(f"stripe: total {doc['total']} {currency.upper()} ends in a non-zero thousandth; Stripe "
                       f"payments in {currency.upper()} must be a multiple of 0.010 and we never round a total")
    items = item_params(doc, key)
    if sum(item_amount(p) for p in items) != total:  # a bug here, never the vendor
        raise Rejected(f"stripe: the items add up to {sum(item_amount(p) for p in items)} but the total is {total}")
    return Plan(currency=currency.lower(), customer=customer_params(doc), invoice=invoice_params(doc, key, options),
                items=items, total=total)


# ---------------------------------------------------------------- search queries

def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def invoice_query(key: str) -> str:
    return f"metadata['invoicer_key']:{_quote(key)}"


def customer_query(customer_id: str) -> str:
    return f"metadata['invoicer_customer']:{_quote(customer_id)}"


# ---------------------------------------------------------------- responses

def check_total(invoice: dict, expected: int, currency: str) -> None:
    """Rejected, with both figures, when Stripe's total is not ours."""
    got = invoice.get("total")
    if got != expected:
        state = "it was left as a draft" if invoice.get("status") == "draft" else f"it is {invoice.get('status')}"
        raise Rejected(f"stripe: invoice {invoice.get('id')} totals {got} ({from_stripe(got or 0, currency)} "
                       f"{currency.upper()}) on Stripe but {expected} ({from_stripe(expected, currency)} "
                       f"{currency.upper()}) here; {state}")


def created(invoice: dict) -> Created:
    """Stripe's number (assigned at finalisation; ours when the tenant sets `custom_number`) and the
    hosted invoice page, which is the pay link on our PDF and in our messages."""
    return Created(
        external_id=invoice["id"],
        number=invoice.get("number"),
        url=invoice.get("hosted_invoice_url"),
        detail={"status": invoice.get("status"), "stripe_number": invoice.get("number"),
                "our_number": (invoice.get("metadata") or {}).get("invoicer_number"),
                "customer": invoice.get("customer"), "total": invoice.get("total"),
                "currency": invoice.get("currency"), "invoice_pdf": invoice.get("invoice_pdf")},
    )


def payment_status(invoice: dict) -> PaymentStatus:
    cur = invoice["currency"]
    return PaymentStatus(amount_paid=from_stripe(invoice.get("amount_paid") or 0, cur),
                         amount_due=from_stripe(invoice.get("amount_remaining") or 0, cur),
                         paid=invoice.get("status") == "paid")


def error_text(body: Any) -> str:
    """Stripe's error body {"error": {type, code, message, param}} as one line."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return str(body)[:300]
    kind = "/".join(x for x in (err.get("type"), err.get("code")) if x)
    text = f"{kind}: {err.get('message') or ''}".strip()
    if err.get("param"):
        text += f" (param {err['param']})"
    return text[:500]
