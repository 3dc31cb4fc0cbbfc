"""Pure mapping for the MYOB Business / AccountRight API v2: the canonical invoice -> a Service-layout sale
invoice and a customer card, MYOB's answers -> `Created` / `PaymentStatus`. No I/O here.

Field names are those of MYOB's own SDK contracts (myob-oss/AccountRight_Live_API_.Net_SDK,
Contracts/Version2/Sale: Sale, Invoice, InvoiceLine, ServiceInvoiceLine, SaleEmail). Money is exact JSON
numbers (never floats). How the total is made ours:
- the Service layout takes one `Total` per line (no quantity x price to round), so each line carries our
  rounded amount, with "(qty x price)" in its description when the quantity is not 1;
- our discount goes as negative lines: the taxed lines' share (with the taxable tax code) and the untaxed
  lines' share, split pro rata to the cent;
- MYOB works the tax out from each line's tax code; a tax code whose rate is not ours is refused before
  anything is sent. If MYOB's `TotalAmount` still differs from ours by a few units (its rounding of tax per
  line is not documented), the adapter adds an untaxed "Rounding" line of the difference with a PUT.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from ... import money
from ...errors import MappingMissing, Rejected
from .. import fit
from ..base import Created, PaymentStatus

KINDS = ("labor", "material", "fee")
NUMBER_MAX = 13  # Sale.Number: "max 13 characters" in MYOB's API reference
DISPLAY_ID_MAX = 15
DESCRIPTION_MAX = 1000
PO_MAX = 20


def amount(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def uid_from_location(location: str | None) -> str:
    """The new entity's UID: the last path segment of MYOB's `Location` header."""
    uid = urlsplit(location or "").path.rstrip("/").rsplit("/", 1)[-1]
    if len(uid) != 36:
        raise Rejected(f"myob answered no usable Location for the new entity ({location!r})")
    return uid


def odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check(doc: dict, options: dict) -> None:
    """Rejected for an invoice MYOB could never take as we mean it."""
    if len(doc["number"]) > NUMBER_MAX:
        raise Rejected(f"invoice number {doc['number']!r} is longer than MYOB's {NUMBER_MAX} characters: shorten "
                       f"the tenant's numbering prefix or width")
    currency = str(options.get("currency") or "AUD")
    if doc["currency"] != currency:
        raise Rejected(f"invoice {doc['number']} is in {doc['currency']}; this MYOB company file invoices in "
                       f"{currency} (platforms.<name>.currency)")
    if not doc["lines"]:
        raise Rejected(f"invoice {doc['number']} has no lines")


def _account(options: dict, kind: str, platform: str) -> dict:
    uid = (options.get("accounts") or {}).get(kind)
    if not uid:
        raise MappingMissing(f"platforms.{platform}.accounts.{kind}: the MYOB income account UID for {kind} lines "
                             f"is not set")
    return {"UID": str(uid)}


def tax_code(options: dict, taxable: bool, platform: str) -> dict:
    name = "taxable" if taxable else "exempt"
    uid = (options.get("tax_codes") or {}).get(name)
    if not uid:
        raise MappingMissing(f"platforms.{platform}.tax_codes.{name}: the MYOB tax code UID for {name} lines is not "
                             f"set")
    return {"UID": str(uid)}


def lines(doc: dict, options: dict, platform: str) -> list[dict]:
    out = []
    for line in doc["lines"]:
        text = line["description"]
        if line["quantity"] != 1:
            text = f"{text} ({fit.plain(line['quantity'])} x {fit.plain(line['unit_price'])})"
        out.append({"Type": "Transaction", "Description": text[:DESCRIPTION_MAX], "Total": line["amount"],
                    "Account": _account(options, line["kind"], platform),
                    "TaxCode": tax_code(options, line["taxable"], platform)})
    if doc["discount_total"]:
        taxed = sum((li["amount"] for li in doc["lines"] if li["taxable"]), Decimal(0))
        shares = fit.split(doc["discount_total"], [taxed, doc["subtotal"] - taxed], money.quantum(doc["currency"]))
        label = "; ".join(d["description"] for d in doc["discounts"])[:DESCRIPTION_MAX] or "Discount"
        for share, taxable in zip(shares, (True, False)):
            if share:
                out.append({"Type": "Transaction", "Description": label, "Total": -share,
                            "Account": _account(options, "discount", platform),
                            "TaxCode": tax_code(options, taxable, platform)})
    return out


def invoice_body(doc: dict, customer_uid: str, options: dict, platform: str, rounding: Decimal | None = None,
                 existing: dict | None = None) -> dict:
    """The body of POST /Sale/Invoice/Service (with `existing`'s UID and RowVersion: of the PUT that adds
    a rounding line)."""
    body_lines = lines(doc, options, platform)
    if rounding:
        body_lines.append({"Type": "Transaction", "Description": "Rounding", "Total": rounding,
                           "Account": _account(options, "fee", platform), "TaxCode": tax_code(options, False, platform)})
    body: dict[str, Any] = {
        "Number": doc["number"],
        "Date": f"{doc['issued_on'].isoformat()}T00:00:00",
        "Customer": {"UID": customer_uid},
        "IsTaxInclusive": False,
        "Lines": body_lines,
        "JournalMemo": f"Sale; invoice {doc['number']}",
        "Terms": {"PaymentIsDue": "InAGivenNumberOfDays", "BalanceDueDate": (doc["due_on"] - doc["issued_on"]).days},
        "InvoiceDeliveryStatus": "Email" if options.get("send") else "Nothing",
    }
    if doc["job"].get("po_number"):
        body["CustomerPurchaseOrderNumber"] = doc["job"]["po_number"][:PO_MAX]
    if doc["job"].get("summary"):
        body["Comment"] = doc["job"]["summary"][:255]
    if existing:
        body.update(UID=existing["UID"], RowVersion=existing["RowVersion"])
    return body


def customer_body(customer: dict, options: dict, platform: str) -> dict:
    name = customer["name"].strip()
    body: dict[str, Any] = {"IsIndividual": False, "CompanyName": name[:50], "IsActive": True,
                            "SellingDetails": {"TaxCode": tax_code(options, True, platform),
                                               "FreightTaxCode": tax_code(options, False, platform)}}
    if len(customer["id"]) <= DISPLAY_ID_MAX:
        body["DisplayID"] = customer["id"]
    address: dict[str, Any] = {"Location": 1}
    if customer.get("email"):
        address["Email"] = customer["email"]
    if customer.get("phone"):
        address["Phone1"] = customer["phone"]
    billing = customer.get("billing_address") or {}
    if billing:
        address.update(Street=billing.get("line1", ""), City=billing.get("city", ""), State=billing.get("region", ""),
                       PostCode=billing.get("postal_code", ""), Country=billing.get("country", ""))
    if len(address) > 1:
        body["Addresses"] = [address]
    return body


def email_body(uid: str, doc: dict, to: str) -> dict:
    return {"ResourceType": "Invoice", "LayoutType": "Service", "EntityUid": uid,
            "To": [{"Name": doc["customer"]["name"], "Email": to}],
            "Subject": f"Invoice {doc['number']} from {doc['seller']['name']}",
            "Message": f"Invoice {doc['number']} is attached."}


# ---------------------------------------------------------------- answers

def pick_invoice(items: list[dict], doc: dict) -> dict | None:
    for inv in items:
        if inv.get("Number") == doc["number"]:
            return inv
    return None


def difference(inv: dict, doc: dict) -> Decimal:
    return doc["total"] - amount(inv.get("TotalAmount"))


def check_total(inv: dict, doc: dict) -> None:
    theirs = amount(inv.get("TotalAmount"))
    if theirs != doc["total"]:
        raise Rejected(f"myob computed total {theirs} for invoice {doc['number']} (UID {inv.get('UID')}) but ours is "
                       f"{doc['total']} {doc['currency']}")


def created(inv: dict) -> Created:
    return Created(external_id=inv["UID"], number=inv.get("Number"), url=inv.get("URI"),
                   detail={"total": str(amount(inv.get("TotalAmount"))), "status": inv.get("Status"),
                           "delivery": inv.get("InvoiceDeliveryStatus")})


def payment_status(inv: dict) -> PaymentStatus:
    total, due = amount(inv.get("TotalAmount")), amount(inv.get("BalanceDueAmount"))
    return PaymentStatus(amount_paid=total - due, amount_due=due, paid=due == 0 and inv.get("Status") == "Closed")


def error_text(body: Any, fallback: str = "") -> str:
    """MYOB's `{"Errors": [{"Name", "Message", "AdditionalDetails", "ErrorCode"}]}` as one line."""
    if isinstance(body, dict) and isinstance(body.get("Errors"), list) and body["Errors"]:
        return "; ".join(f"[{e.get('ErrorCode')}] {e.get('Name')}: {e.get('Message')}"
                         + (f" ({e['AdditionalDetails']})" if e.get("AdditionalDetails") else "")
                         for e in body["Errors"] if isinstance(e, dict))
    if isinstance(body, dict) and body.get("error"):
        return " ".join(str(x) for x in (body["error"], body.get("error_description")) if x)
    return fallback[:300]
