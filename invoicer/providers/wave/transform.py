"""Pure mapping for Wave's public GraphQL API: the GraphQL documents invoicer sends, the canonical invoice ->
their variables, and Wave's answers -> `Created` / `PaymentStatus` / typed errors. No I/O here.

Money goes as decimal strings (Wave's `Decimal` scalar) and comes back as `Money { value }` strings; never
floats. How the total is made ours to the minor unit:
- every item needs a product: the tenant maps labor/material/fee to Wave product ids (`products`); a
  missing one is MappingMissing naming the key, before anything is sent;
- an item goes as quantity x unitPrice when that product rounds to our line amount whichever way Wave
  rounds, else as 1 x its amount with "(qty x price)" in the description;
- taxable items carry the Wave sales tax whose rate is ours (`sales_taxes`, else found by rate);
- our discount goes as ONE fixed-amount invoice discount (`discounts: [{discountType: FIXED}]`);
- the invoice is made as a DRAFT and its total compared with ours: a one-unit difference (a half-unit tax
  tie rounded the other way) is settled by deleting the draft and making it again with a "Rounding" item
  (Wave has no invoice update in its public API): the difference itself when there is no discount, else
  one unit on the item and on the discount, net nil, which moves the tax base off the tie our way.
  Anything else is refused. Only then is it approved.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ... import money
from ...errors import AuthFailed, MappingMissing, RateLimited, Rejected, Unavailable
from .. import fit
from ..base import Created, PaymentStatus

KINDS = ("labor", "material", "fee")
QTY = Decimal("0.0001")

_MONEY = "value currency { code }"
_INVOICE = f"""id invoiceNumber status viewUrl pdfUrl lastSentAt
    customer {{ id }} total {{ {_MONEY} }} amountDue {{ {_MONEY} }} amountPaid {{ {_MONEY} }}"""
_RESULT = "didSucceed inputErrors { code message path }"

CUSTOMERS = """query Customers($businessId: ID!, $email: String) {
  business(id: $businessId) { customers(page: 1, pageSize: 20, email: $email) {
    edges { node { id name email currency { code } } } } } }"""
SALES_TAXES = """query SalesTaxes($businessId: ID!) {
  business(id: $businessId) { salesTaxes(page: 1, pageSize: 100) { edges { node { id name rate isArchived } } } } }"""
INVOICES = f"""query Invoices($businessId: ID!, $invoiceNumber: String) {{
  business(id: $businessId) {{ invoices(page: 1, pageSize: 20, invoiceNumber: $invoiceNumber) {{
    edges {{ node {{ {_INVOICE} }} }} }} }} }}"""
INVOICE = f"""query Invoice($businessId: ID!, $invoiceId: ID!) {{
  business(id: $businessId) {{ invoice(id: $invoiceId) {{ {_INVOICE} }} }} }}"""
CUSTOMER_CREATE = f"""mutation CustomerCreate($input: CustomerCreateInput!) {{
  customerCreate(input: $input) {{ {_RESULT} customer {{ id name email currency {{ code }} }} }} }}"""
INVOICE_CREATE = f"""mutation InvoiceCreate($input: InvoiceCreateInput!) {{
  invoiceCreate(input: $input) {{ {_RESULT} invoice {{ {_INVOICE} }} }} }}"""
INVOICE_DELETE = f"""mutation InvoiceDelete($input: InvoiceDeleteInput!) {{
  invoiceDelete(input: $input) {{ {_RESULT} }} }}"""
INVOICE_APPROVE = f"""mutation InvoiceApprove($input: InvoiceApproveInput!) {{
  invoiceApprove(input: $input) {{ {_RESULT} invoice {{ {_INVOICE} }} }} }}"""
INVOICE_SEND = f"""mutation InvoiceSend($input: InvoiceSendInput!) {{
  invoiceSend(input: $input) {{ {_RESULT} }} }}"""
INVOICE_MARK_SENT = f"""mutation InvoiceMarkSent($input: InvoiceMarkSentInput!) {{
  invoiceMarkSent(input: $input) {{ {_RESULT} invoice {{ {_INVOICE} }} }} }}"""
DOCUMENTS = (CUSTOMERS, SALES_TAXES, INVOICES, INVOICE, CUSTOMER_CREATE, INVOICE_CREATE, INVOICE_DELETE,
             INVOICE_APPROVE, INVOICE_SEND, INVOICE_MARK_SENT)


def dec(value: Decimal) -> str:
    """A Decimal as Wave's Decimal scalar: a plain decimal string."""
    return format(value, "f")


def amount(value: Any) -> Decimal:
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or value == "":
        return Decimal(0)
    return Decimal(str(value))


def percent(rate: Decimal) -> Decimal:
    return (rate * 100).normalize()


# ---------------------------------------------------------------- variables

def product(options: dict, kind: str, platform: str) -> str:
    pid = (options.get("products") or {}).get(kind)
    if not pid:
        raise MappingMissing(f"platforms.{platform}.products.{kind}: the Wave product id for {kind} lines is not set")
    return str(pid)


def items(doc: dict, options: dict, platform: str, tax_id: str | None) -> list[dict]:
    out = []
    for line in doc["lines"]:
        qty, unit, text = fit.as_sent(line, doc["currency"], QTY)
        item: dict[str, Any] = {"productId": product(options, line["kind"], platform), "description": text,
                                "quantity": dec(qty), "unitPrice": dec(unit)}
        if line["taxable"] and tax_id:
            item["taxes"] = [{"salesTaxId": tax_id}]
        out.append(item)
    return out


def invoice_input(doc: dict, business_id: str, customer_id: str, options: dict, platform: str,
                  tax_id: str | None, rounding: Decimal | None = None) -> dict:
    if not doc["lines"]:
        raise Rejected(f"invoice {doc['number']} has no lines")
    if tax_id is None and doc["tax"]["amount"]:
        raise MappingMissing(f"platforms.{platform}.sales_taxes: no Wave sales tax at {percent(doc['tax']['rate'])} %")
    data: dict[str, Any] = {
        "businessId": business_id, "customerId": customer_id, "status": "DRAFT", "currency": doc["currency"],
        "invoiceNumber": doc["number"], "invoiceDate": doc["issued_on"].isoformat(),
        "dueDate": doc["due_on"].isoformat(), "items": items(doc, options, platform, tax_id),
    }
    discount = doc["discount_total"]
    if rounding:
        item = rounding
        if discount:
            # Wave spreads the discount over every item, the rounding item too, so an item alone moves the
            # tax base: instead one unit goes on the item and on the discount (net nil before tax), which
            # moves the taxable base just off the half-unit tie, towards our rounding
            item = -money.quantum(doc["currency"]) if rounding > 0 else money.quantum(doc["currency"])
            discount += item
        data["items"].append({"productId": product(options, "fee", platform), "description": "Rounding",
                              "quantity": "1", "unitPrice": dec(item)})
    if discount:
        data["discounts"] = [{"discountType": "FIXED", "name": "; ".join(d["description"] for d in doc["discounts"])
                              [:100] or "Discount", "amount": dec(discount)}]
    if doc["job"].get("po_number"):
        data["poNumber"] = doc["job"]["po_number"]
    if doc["job"].get("summary"):
        data["memo"] = doc["job"]["summary"][:1000]
    return data


def customer_input(customer: dict, business_id: str, currency: str) -> dict:
    data: dict[str, Any] = {"businessId": business_id, "name": customer["name"][:255], "currency": currency}
    if customer.get("email"):
        data["email"] = customer["email"]
    if customer.get("phone"):
        data["phone"] = customer["phone"]
    address = customer.get("billing_address")
    if address:
        data["address"] = {"addressLine1": address.get("line1", ""), "city": address.get("city", ""),
                           "postalCode": address.get("postal_code", ""), "countryCode": address.get("country", "")}
    return data


def send_input(invoice_id: str, doc: dict, to: str) -> dict:
    return {"invoiceId": invoice_id, "to": [to], "subject": f"Invoice {doc['number']} from {doc['seller']['name']}",
            "message": f"Invoice {doc['number']} is attached.", "attachPDF": True}


# ---------------------------------------------------------------- answers

def check(answer: dict, field: str | None = None) -> dict:
    """The `data` of a GraphQL answer (of `field`, when given); GraphQL `errors` and `didSucceed: false`
    (both come with HTTP 200) as typed errors."""
    errors = answer.get("errors") or []
    if errors:
        codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)}
        text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
        detail = f"wave answered errors: {text} ({', '.join(sorted(c for c in codes if c))})"
        if codes & {"UNAUTHENTICATED"}:
            raise AuthFailed(detail, status=401)
        if codes & {"FORBIDDEN", "NOT_AUTHORIZED"}:
            raise AuthFailed(detail, status=403)
        if codes & {"THROTTLED", "RATE_LIMITED", "TOO_MANY_REQUESTS"}:
            raise RateLimited(detail, retry_after=60.0)
        if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}:
            raise Unavailable(detail)
        raise Rejected(detail)
    data = answer.get("data") or {}
    if field is None:
        return data
    result = data.get(field)
    if not isinstance(result, dict):
        raise Rejected(f"wave answered no {field}")
    if result.get("didSucceed") is False:
        raise Rejected(f"wave {field} did not succeed: " + "; ".join(
            f"{'.'.join(map(str, e.get('path') or []))}: {e.get('message')} [{e.get('code')}]"
            for e in result.get("inputErrors") or []))
    return result


def edges(connection: dict | None) -> list[dict]:
    return [e["node"] for e in (connection or {}).get("edges") or [] if e.get("node")]


def pick_invoice(invoices: list[dict], doc: dict) -> dict | None:
    for inv in invoices:
        if inv.get("invoiceNumber") == doc["number"]:
            return inv
    return None


def pick_tax(taxes: list[dict], rate: Decimal) -> str | None:
    for tax in taxes:
        if not tax.get("isArchived") and amount(tax.get("rate")) == rate:
            return str(tax["id"])
    return None


def difference(inv: dict, doc: dict) -> Decimal:
    return doc["total"] - amount(inv.get("total"))


def check_total(inv: dict, doc: dict) -> None:
    theirs = amount(inv.get("total"))
    code = ((inv.get("total") or {}).get("currency") or {}).get("code")
    if theirs != doc["total"] or (code and code != doc["currency"]):
        raise Rejected(f"wave computed total {theirs} {code or ''} for invoice {doc['number']} (id {inv.get('id')}) "
                       f"but ours is {doc['total']} {doc['currency']}")


def created(inv: dict) -> Created:
    return Created(external_id=str(inv["id"]), number=inv.get("invoiceNumber"), url=inv.get("viewUrl"),
                   detail={"total": str(amount(inv.get("total"))), "status": inv.get("status"),
                           "pdf_url": inv.get("pdfUrl")})


def payment_status(inv: dict) -> PaymentStatus:
    paid, due = amount(inv.get("amountPaid")), amount(inv.get("amountDue"))
    return PaymentStatus(amount_paid=paid, amount_due=due, paid=inv.get("status") == "PAID" and due == 0)
