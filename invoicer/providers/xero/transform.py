"""Pure mapping for Xero's Accounting API: the canonical invoice -> `Invoices`/`Contacts` bodies, and
Xero's answers -> `Created` / `PaymentStatus`. No I/O here.

How the money is made to agree with ours to the cent (Xero's own rules, "Rounding in Xero",
developer.xero.com/documentation/guides/how-to-guides/rounding-in-xero, and the `LineItem` schema of
../shared/vendor-specs/xero/xero_accounting.yaml):
- Xero keeps every amount to 2 decimals and works line by line: LineAmount = Quantity x UnitAmount
  (UnitAmount 2 decimals unless `unitdp=4`) less DiscountAmount, tax per line from the TaxType's rate
  rounded per line, Total = sum of LineAmounts + sum of TaxAmounts (LineAmountTypes Exclusive).
- Our discounts are invoice-level, spread pro rata (contract rule 3), and our tax is rounded once on
  the whole invoice. So every line carries its share of `discount_total` as `DiscountAmount` and its
  share of our tax as `TaxAmount` (the spec: "This value can be overriden if the calculated TaxAmount
  is not correct"); shares are whole cents, largest remainder first, so they add up exactly.
- A line whose Quantity x UnitAmount would not round to our amount the same way under half-up and
  half-even (Xero's rounding mode is not documented) is sent as Quantity 1 x its amount, with
  "(qty x price)" in the description -- the representation Xero's rounding guide recommends.
- Currencies with more than 2 decimals (KWD, BHD, ...) can only be sent when every amount fits in 2;
  otherwise the invoice is refused here, before anything is sent. Currencies with fewer (JPY) are
  split in their own whole units.
The adapter still compares Xero's `Total` with ours and refuses to call a different total a success.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any, Iterable

from ... import money
from ...errors import MappingMissing, Rejected
from ..base import Created, PaymentStatus

KINDS = ("labor", "material", "fee")
XERO_PLACES = 2
CENT = Decimal("0.01")
QTY_PLACES = Decimal("0.0001")  # Xero keeps quantities to 4 decimals
KEY_MAX = 128  # Idempotency-Key: "128 character max." (spec, components.parameters.idempotencyKey)
CONTACT_NUMBER_MAX = 50
# Deep link into the Xero web app (the organisation is the one the user last opened); not an API URL.
APP_URL = "https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={}"


@dataclass(frozen=True)
class Mapping:
    """The tenant's Xero settings the transform needs: account codes per line kind, tax types, numbering."""
    platform: str  # the tenant's name for this platform entry, used in messages (platforms.<name>...)
    accounts: dict = field(default_factory=dict)
    tax_types: dict = field(default_factory=dict)
    use_our_number: bool = False

    @classmethod
    def from_options(cls, options: dict, platform: str) -> "Mapping":
        return cls(platform=platform or "xero", accounts=dict(options.get("accounts") or {}),
                   tax_types=dict(options.get("tax_types") or {}),
                   use_our_number=bool(options.get("use_our_number", False)))

    def account(self, kind: str) -> str:
        code = self.accounts.get(kind)
        if not code:
            raise MappingMissing(f"platforms.{self.platform}.accounts.{kind}: the Xero account code for "
                                 f"{kind} lines is not set")
        return str(code)

    def tax_type(self, taxable: bool) -> str:
        name = "taxable" if taxable else "exempt"
        code = self.tax_types.get(name)
        if not code:
            raise MappingMissing(f"platforms.{self.platform}.tax_types.{name}: the Xero TaxType for "
                                 f"{name} lines is not set")
        return str(code)


# ---------------------------------------------------------------- JSON without floats

def dumps(obj: Any) -> str:
    """JSON with every Decimal written exactly as a JSON number (Xero wants numbers; we never use floats)."""
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in obj) + "]"
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"not a finite amount: {obj}")
        return format(obj, "f")
    if isinstance(obj, float):
        raise TypeError("floats are never sent as money; use Decimal")
    return json.dumps(obj, ensure_ascii=False)


def loads(data: bytes | str) -> Any:
    """Xero's JSON with every fractional number as a Decimal."""
    return json.loads(data, parse_float=Decimal)


def amount(value: Any) -> Decimal:
    """A money field of a Xero answer as Decimal (numbers arrive as Decimal or int; never through float)."""
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


# ---------------------------------------------------------------- keys and filters

def idempotency_key(key: str, *suffix: str) -> str:
    """Our key (plus what distinguishes one request from another made for the same delivery), <= 128 chars."""
    value = ":".join([key, *suffix])
    if len(value) <= KEY_MAX:
        return value
    return "h:" + hashlib.sha256(value.encode()).hexdigest()


def batch_key(keys: Iterable[str]) -> str:
    keys = list(keys)
    if len(keys) == 1:
        return idempotency_key(keys[0])
    return "batch:" + hashlib.sha256("|".join(keys).encode()).hexdigest()


def where_eq(name: str, value: str) -> str:
    """One equality term of Xero's `where` filter. Backslash-escaping of a quote inside the value is an
    assumption (Xero documents no escape; our invoice numbers and emails contain none)."""
    return f'{name}=="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'


# ---------------------------------------------------------------- money splitting

def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-min(money.minor_unit(currency), XERO_PLACES))


def _fits(value: Decimal, doc: dict, what: str) -> Decimal:
    q = _quantum(doc["currency"])
    if value != value.quantize(q):
        raise Rejected(f"xero keeps money to {XERO_PLACES} decimals: {what} {value} {doc['currency']} of invoice "
                       f"{doc['number']} cannot be sent exactly")
    return value.quantize(q)


def allocate(total: Decimal, weights: list[Decimal], quantum: Decimal) -> list[Decimal]:
    """Split `total` over `weights` pro rata in whole `quantum`s, largest remainder first (ties: first line)."""
    units = int(total / quantum)
    if Decimal(units) * quantum != total:
        raise ValueError(f"{total} is not a whole number of {quantum}")
    w = [int(x / quantum) for x in weights]
    whole = sum(w)
    if units == 0 or not w:
        if units:
            raise ValueError(f"nothing to spread {total} over")
        return [Decimal(0) * quantum for _ in w]
    if whole <= 0:
        raise ValueError(f"nothing to spread {total} over")
    shares = [units * x // whole for x in w]
    rest = [units * x % whole for x in w]
    for i in sorted(range(len(w)), key=lambda i: (-rest[i], i))[:units - sum(shares)]:
        shares[i] += 1
    return [Decimal(s) * quantum for s in shares]


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return text


def quantity_and_unit(line: dict, line_amount: Decimal) -> tuple[Decimal, Decimal, str]:
    """Quantity, UnitAmount and Description such that Xero's line amount is `line_amount` whatever its
    rounding mode; else 1 x the amount with the quantity and price written into the description."""
    qty, unit, text = line["quantity"], line["unit_price"], line["description"]
    product = qty * unit
    exact = (unit == unit.quantize(CENT) and qty == qty.quantize(QTY_PLACES)
             and all(product.quantize(CENT, rounding=r) == line_amount for r in (ROUND_HALF_UP, ROUND_HALF_EVEN)))
    if exact:
        return qty, unit.quantize(CENT), text
    return Decimal(1), line_amount, f"{text} ({_plain(qty)} x {_plain(unit)})"


# ---------------------------------------------------------------- requests

def line_items(doc: dict, m: Mapping) -> list[dict]:
    lines = doc["lines"]
    if not lines:
        raise Rejected(f"invoice {doc['number']} has no lines; Xero cannot authorise an empty invoice")
    q = _quantum(doc["currency"])
    amounts = [_fits(line["amount"], doc, "line amount") for line in lines]
    discount = _fits(doc["discount_total"], doc, "discount")
    tax = _fits(doc["tax"]["amount"], doc, "tax")
    try:
        discounts = allocate(discount, amounts, q)
        taxed = [i for i, line in enumerate(lines) if line["taxable"]]
        shares = allocate(tax, [amounts[i] for i in taxed], q)
    except ValueError as exc:
        raise Rejected(f"invoice {doc['number']}: cannot spread discount {discount} / tax {tax} over its "
                       f"lines: {exc}") from None
    taxes = [Decimal(0) * q] * len(lines)
    for i, share in zip(taxed, shares):
        taxes[i] = share
    items = []
    for line, gross, off, line_tax in zip(lines, amounts, discounts, taxes):
        qty, unit, text = quantity_and_unit(line, gross)
        item = {"Description": text, "Quantity": qty, "UnitAmount": unit,
                "AccountCode": m.account(line["kind"]), "TaxType": m.tax_type(line["taxable"]),
                "TaxAmount": line_tax, "LineAmount": gross - off}
        if off:
            item["DiscountAmount"] = off
        items.append(item)
    return items


def invoice(doc: dict, contact_id: str, m: Mapping) -> dict:
    """One ACCREC invoice, authorised, amounts exclusive of tax."""
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "LineItems": line_items(doc, m),
        "Date": doc["issued_on"].isoformat(),
        "DueDate": doc["due_on"].isoformat(),
        "Reference": doc["number"],
        "CurrencyCode": doc["currency"],
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
    }
    if m.use_our_number:
        body["InvoiceNumber"] = doc["number"]
    ours = sum((i["LineAmount"] + i["TaxAmount"] for i in body["LineItems"]), Decimal(0))
    if ours != doc["total"]:  # a bug in the split above; never send it
        raise Rejected(f"invoice {doc['number']}: lines add up to {ours}, total is {doc['total']}")
    return body


def invoices_body(docs: list[dict], contact_ids: list[str], m: Mapping) -> dict:
    """The body of PUT /Invoices: Xero takes many invoices per call."""
    return {"Invoices": [invoice(doc, cid, m) for doc, cid in zip(docs, contact_ids, strict=True)]}


def contact_body(customer: dict, name: str | None = None) -> dict:
    """The body of PUT /Contacts for one of our customers."""
    return {"Contacts": [contact(customer, name)]}


def contacts_body(customers: list[dict]) -> dict:
    """The body of PUT /Contacts for many customers at once (Xero takes about 50 per call)."""
    return {"Contacts": [contact(c) for c in customers]}


def contact(customer: dict, name: str | None = None) -> dict:
    """One of our customers as a Xero contact. ContactNumber carries our id (<= 50 chars)."""
    contact: dict[str, Any] = {"Name": (name or customer["name"]).strip()}
    if len(customer["id"]) <= CONTACT_NUMBER_MAX:
        contact["ContactNumber"] = customer["id"]
    if customer.get("email"):
        contact["EmailAddress"] = customer["email"]
    if customer.get("phone"):
        contact["Phones"] = [{"PhoneType": "DEFAULT", "PhoneNumber": customer["phone"]}]
    address = customer.get("billing_address")
    if address:
        contact["Addresses"] = [{"AddressType": "POBOX", "AddressLine1": address.get("line1", ""),
                                 "City": address.get("city", ""), "Region": address.get("region", ""),
                                 "PostalCode": address.get("postal_code", ""),
                                 "Country": address.get("country", "")}]
    return contact


def contacts_where(customer: dict) -> str | None:
    terms = []
    if len(customer["id"]) <= CONTACT_NUMBER_MAX:
        terms.append(where_eq("ContactNumber", customer["id"]))
    if customer.get("email"):
        terms.append(where_eq("EmailAddress", customer["email"]))
    return " OR ".join(terms) or None


def invoices_where(doc: dict) -> str:
    return f'Type=="ACCREC" AND {where_eq("Reference", doc["number"])}'


# ---------------------------------------------------------------- answers

def pick_contact(contacts: list[dict], customer: dict) -> str | None:
    """Our customer among Xero's contacts: by ContactNumber (our id) first, then by email; active ones only."""
    active = [c for c in contacts if c.get("ContactStatus", "ACTIVE") == "ACTIVE"]
    for c in active:
        if c.get("ContactNumber") == customer["id"]:
            return c["ContactID"]
    email = (customer.get("email") or "").casefold()
    for c in active:
        if email and (c.get("EmailAddress") or "").casefold() == email:
            return c["ContactID"]
    return None


def pick_invoice(invoices: list[dict], doc: dict, by_number: bool = False) -> dict | None:
    """The invoice we made for `doc`, if any (deleted drafts do not count)."""
    field_name = "InvoiceNumber" if by_number else "Reference"
    for inv in invoices:
        if inv.get("Type") == "ACCREC" and inv.get(field_name) == doc["number"] and inv.get("Status") != "DELETED":
            return inv
    return None


def created(inv: dict) -> Created:
    return Created(external_id=inv["InvoiceID"], number=inv.get("InvoiceNumber"),
                   url=APP_URL.format(inv["InvoiceID"]),
                   detail={"total": str(amount(inv.get("Total"))), "status": inv.get("Status"),
                           "reference": inv.get("Reference"), "sent_to_contact": bool(inv.get("SentToContact"))})


def check_total(inv: dict, doc: dict) -> None:
    """Xero's Total must be ours to the cent; anything else is not the invoice we meant."""
    theirs = amount(inv.get("Total"))
    if theirs != doc["total"]:
        raise Rejected(f"xero computed total {theirs} {doc['currency']} for invoice {doc['number']} "
                       f"(InvoiceID {inv.get('InvoiceID')}) but ours is {doc['total']} {doc['currency']}",
                       status=None)


def created_each(answer: dict, docs: list[dict]) -> list[Created | Rejected]:
    """Xero's answer to PUT /Invoices?summarizeErrors=false, in the order sent: for each invoice the
    one Xero made (its total checked against ours) or why Xero refused it. An answer that does not
    match what was sent, as a whole, is refused as a whole."""
    invoices = answer.get("Invoices") or []
    if len(invoices) != len(docs):
        raise Rejected(f"xero answered {len(invoices)} invoices for {len(docs)} sent")
    out: list[Created | Rejected] = []
    for inv, doc in zip(invoices, docs):
        if inv.get("Reference") != doc["number"]:
            raise Rejected(f"xero answered invoice {inv.get('Reference')!r} where {doc['number']!r} was sent")
        try:
            if inv.get("HasErrors") or inv.get("StatusAttributeString") == "ERROR":
                raise Rejected(f"xero refused invoice {doc['number']}: {validation_messages([inv])}")
            check_total(inv, doc)
            out.append(created(inv))
        except Rejected as exc:
            out.append(exc)
    return out


def contacts_made(answer: dict, customers: list[dict]) -> list[str | Rejected]:
    """Xero's answer to PUT /Contacts?summarizeErrors=false: each customer's ContactID, or why not."""
    contacts = answer.get("Contacts") or []
    if len(contacts) != len(customers):
        raise Rejected(f"xero answered {len(contacts)} contacts for {len(customers)} sent")
    out: list[str | Rejected] = []
    for c, customer in zip(contacts, customers):
        if c.get("HasValidationErrors") or c.get("ValidationErrors") or not c.get("ContactID"):
            out.append(Rejected(f"xero made no contact for customer {customer['id']}: {validation_messages([c])}"))
        else:
            out.append(c["ContactID"])
    return out


def payment_status(inv: dict) -> PaymentStatus:
    paid, due = amount(inv.get("AmountPaid")), amount(inv.get("AmountDue"))
    return PaymentStatus(amount_paid=paid, amount_due=due, paid=inv.get("Status") == "PAID" and due == 0)


def validation_messages(elements: list[dict]) -> str:
    out = []
    for element in elements or []:
        for err in element.get("ValidationErrors") or []:
            if err.get("Message") and err["Message"] not in out:
                out.append(err["Message"])
    return "; ".join(out)


def error_text(body: Any, fallback: str = "") -> str:
    """The human message of any Xero error body: a ValidationException's messages, an API exception's
    Message, an identity error (`error`, `error_description`), or a problem (`Title`, `Detail`)."""
    if not isinstance(body, dict):
        return fallback[:300]
    messages = validation_messages(body.get("Elements") or [])
    if messages:
        return f"{body.get('Type') or 'ValidationException'}: {messages}"
    if body.get("Message"):
        return f"{body.get('Type') or 'Error'}: {body['Message']}"
    if body.get("error"):
        return " ".join(str(x) for x in (body["error"], body.get("error_description")) if x)
    if body.get("Detail") or body.get("Title"):
        return ": ".join(str(x) for x in (body.get("Title"), body.get("Detail")) if x)
    return fallback[:300]
