"""Pure mapping for Dynamics 365 Business Central (API v2.0): the canonical invoice -> `salesInvoices`
header and `salesInvoiceLines` bodies, BC's answers -> Created / PaymentStatus. No I/O here.

Field names follow the v2.0 resource pages (learn.microsoft.com/dynamics365/business-central/dev-itpro/
api-reference/v2.0/resources/dynamics_salesinvoice and .../dynamics_salesinvoiceline) and the AL API pages
named in ../shared/vendor-specs/dynamics365-bc/SOURCE.txt.

How our total becomes BC's totalAmountIncludingTax, to the minor unit. BC works out tax itself from each
line's taxCode and the company's tax setup; it cannot be told a tax amount (totalTaxAmount is read-only).
So there are two ways, the tenant's `tax_mode`:
  * `account_line` (default, exact): every line goes with the tenant's exempt tax code; our discount is
    ONE G/L account line (quantity 1, negative unit price) on `discount_account`, and our tax is ONE G/L
    account line on `tax_account` (the sales-tax/VAT payable account). BC then only multiplies and adds:
    total = sum(rounded quantity x unitPrice) = ours. A line BC would round otherwise (a quantity with
    more than 5 decimals, or quantity x price not rounding to our amount) goes as 1 x its amount, the
    working in its description (as for QuickBooks).
  * `tax_codes`: lines carry the taxable/exempt codes, our discount is the header's `discountAmount`
    (BC spreads it over the lines), and BC computes tax. The adapter compares BC's total with ours
    BEFORE posting and refuses (Rejected, the draft left for a person) when they differ; a company whose
    tax setup is exactly ours gets BC-native tax lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ... import money
from ...errors import MappingMissing, Rejected
from .. import ledger
from ..base import Created, PaymentStatus
from ..jsonmoney import dec

KINDS = ("labor", "material", "fee")
LINE_TYPES = ("Item", "Account", "Resource")
TAX_MODES = ("account_line", "tax_codes")
EXTERNAL_DOC_MAX = 35  # Sales Header."External Document No." Code[35]
DESCRIPTION_MAX = 100  # Sales Line.Description Text[100]
QTY_PLACES = 5  # BC keeps quantities to 0.00001
PRICE_PLACES = 5  # default unit-amount rounding precision 0.00001
NAME_MAX, EMAIL_MAX, PHONE_MAX = 100, 80, 30
ADDRESS_MAX, CITY_MAX, STATE_MAX, POSTCODE_MAX = 100, 30, 30, 20


@dataclass(frozen=True)
class Mapping:
    """The tenant's Business Central settings the transform needs."""
    platform: str
    lines: dict = field(default_factory=dict)  # kind -> {"type": Item|Account|Resource, "number": ...} or "number"
    tax_mode: str = "account_line"
    tax_codes: dict = field(default_factory=dict)  # {taxable, exempt}
    tax_account: str | None = None
    discount_account: str | None = None

    @classmethod
    def from_options(cls, options: dict, platform: str) -> "Mapping":
        return cls(platform=platform or "dynamics365", lines=dict(options.get("lines") or {}),
                   tax_mode=str(options.get("tax_mode") or "account_line"),
                   tax_codes=dict(options.get("tax_codes") or {}),
                   tax_account=_opt(options.get("tax_account")), discount_account=_opt(options.get("discount_account")))

    def _key(self, *parts: str) -> str:
        return ".".join(["platforms", self.platform, *parts])

    def line_object(self, kind: str) -> tuple[str, str]:
        value = self.lines.get(kind)
        if isinstance(value, dict):
            kind_type, number = str(value.get("type") or "Item"), _opt(value.get("number"))
        else:
            kind_type, number = "Item", _opt(value)
        if not number:
            raise MappingMissing(f"{self._key('lines', kind)}: the Business Central item (or account) number for "
                                 f"{kind} lines is not set")
        if kind_type not in LINE_TYPES:
            raise MappingMissing(f"{self._key('lines', kind, 'type')}: {kind_type!r} is not one of {', '.join(LINE_TYPES)}")
        return kind_type, number

    def tax_code(self, taxable: bool) -> str:
        name = "taxable" if taxable and self.tax_mode == "tax_codes" else "exempt"
        code = _opt(self.tax_codes.get(name))
        if not code:
            raise MappingMissing(f"{self._key('tax_codes', name)}: the Business Central tax code for "
                                 f"{'taxable' if name == 'taxable' else 'untaxed'} lines is not set")
        return code

    def account(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise MappingMissing(f"{self._key(name)}: the G/L account number is not set "
                                 f"(tax_mode {self.tax_mode} books the invoice's "
                                 f"{'tax' if name == 'tax_account' else 'discount'} on it)")
        return value

    def problems(self) -> list[str]:
        """Everything a complete entry needs, for the startup check."""
        if self.tax_mode not in TAX_MODES:
            return [f"{self._key('tax_mode')}: {self.tax_mode!r} is not one of {', '.join(TAX_MODES)}"]
        checks = [lambda k=k: self.line_object(k) for k in KINDS] + [lambda: self.tax_code(False)]
        if self.tax_mode == "tax_codes":
            checks.append(lambda: self.tax_code(True))
        else:
            checks += [lambda: self.account("tax_account"), lambda: self.account("discount_account")]
        return ledger.missing(checks)


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _clip(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(value: str) -> str:
    """An OData string literal (a quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def quote_eq(field: str, value: str) -> str:
    return f"{field} eq {quote(value)}"


def by_reference(number: str) -> str:
    return quote_eq("externalDocumentNumber", number)


# ---------------------------------------------------------------- canonical -> Business Central

def _address(addr: dict | None, prefix: str, names: tuple[str, ...]) -> dict:
    """Our address as BC's five address properties (`prefix` + name), clipped to BC's lengths."""
    addr = addr or {}
    limits = (ADDRESS_MAX, CITY_MAX, STATE_MAX, POSTCODE_MAX, 10)
    ours = ("line1", "city", "region", "postal_code", "country")
    return {prefix + name: _clip(addr[o], limit) for o, name, limit in zip(ours, names, limits) if addr.get(o)}


def customer_body(customer: dict) -> dict:
    body: dict[str, Any] = {"displayName": _clip(customer["name"], NAME_MAX), "type": "Company"}
    if customer.get("email"):
        body["email"] = customer["email"][:EMAIL_MAX]
    if customer.get("phone"):
        body["phoneNumber"] = customer["phone"][:PHONE_MAX]
    body.update(_address(customer.get("billing_address"), "", ("addressLine1", "city", "state", "postalCode",
                                                                 "country")))
    return body


def header(doc: dict, customer_number: str) -> dict:
    """The salesInvoices POST body (a draft; lines follow)."""
    number = doc["number"]
    if len(number) > EXTERNAL_DOC_MAX:
        raise Rejected(f"invoice number {number!r} is longer than Business Central's {EXTERNAL_DOC_MAX}-character "
                       f"externalDocumentNumber; shorten the tenant's numbering")
    body: dict[str, Any] = {
        "externalDocumentNumber": number,
        "customerNumber": customer_number,
        "invoiceDate": doc["issued_on"].isoformat(),
        "postingDate": doc["issued_on"].isoformat(),
        "dueDate": doc["due_on"].isoformat(),
        "currencyCode": doc["currency"],
    }
    if doc["job"].get("po_number"):
        body["customerPurchaseOrderReference"] = doc["job"]["po_number"][:EXTERNAL_DOC_MAX]
    body.update(_address(doc.get("service_address"), "shipTo", ("AddressLine1", "City", "State", "PostCode",
                                                                  "Country")))
    return body


def _line(kind_type: str, number: str, description: str, qty: Decimal, price: Decimal, tax_code: str) -> dict:
    return {"lineType": kind_type, "lineObjectNumber": number, "description": _clip(description, DESCRIPTION_MAX),
            "quantity": qty, "unitPrice": price, "taxCode": tax_code}


def lines(doc: dict, mapping: Mapping) -> list[dict]:
    """The salesInvoiceLines POST bodies, in order (BC numbers them 10000, 20000, ...)."""
    cur = doc["currency"]
    out = []
    for line in doc["lines"]:  # a kind we have no mapping for is MappingMissing, naming it
        kind_type, number = mapping.line_object(line["kind"])
        qty, price, text = ledger.sent_as(line, cur, QTY_PLACES, PRICE_PLACES)
        out.append(_line(kind_type, number, text, qty, price, mapping.tax_code(line["taxable"])))
    if mapping.tax_mode == "account_line":
        exempt = mapping.tax_code(False)
        if doc["discount_total"]:
            out.append(_line("Account", mapping.account("discount_account"), ledger.discount_label(doc), Decimal(1),
                             -doc["discount_total"], exempt))
        if doc["tax"]["amount"]:
            out.append(_line("Account", mapping.account("tax_account"), ledger.tax_label(doc), Decimal(1),
                             doc["tax"]["amount"], exempt))
        expected = sum((money.round_money(l["quantity"] * l["unitPrice"], cur) for l in out), Decimal(0))
        if expected != doc["total"]:  # the money rules and this mapping disagree: a bug, never sent
            raise Rejected(f"Business Central lines for {doc['number']} add up to {expected}, the invoice total is "
                           f"{doc['total']}")
    return out


def header_discount(doc: dict, mapping: Mapping) -> dict | None:
    """tax_codes mode: our discount as BC's invoice discount (PATCHed once the lines are there)."""
    if mapping.tax_mode == "tax_codes" and doc["discount_total"]:
        return {"discountAmount": doc["discount_total"]}
    return None


def line_key(line: dict) -> tuple:
    """What identifies one of our lines on a draft (BC's answer or our body)."""
    return (line.get("lineType"), str(line.get("lineObjectNumber") or ""), line.get("description") or "",
            dec(line.get("quantity")).normalize(), dec(line.get("unitPrice")).normalize())


def missing_lines(existing: list[dict], wanted: list[dict], number: str, key=line_key, order: str = "sequence",
                  vendor: str = "Business Central") -> list[dict]:
    """The lines still to add to a draft that an earlier try began: the draft's lines must be the first of
    ours, in order; anything else is a draft a person changed, and is not touched."""
    have = [key(l) for l in sorted(existing, key=lambda l: dec(l.get(order)))]
    want = [key(l) for l in wanted]
    if have != want[:len(have)]:
        raise Rejected(f"the {vendor} draft invoice {number} has lines invoicer did not add; finish or "
                       f"delete it in {vendor}")
    return wanted[len(have):]


# ---------------------------------------------------------------- Business Central -> canonical

def total_of(invoice: dict) -> Decimal:
    return dec(invoice.get("totalAmountIncludingTax"))


def check_total(invoice: dict, doc: dict) -> None:
    total = total_of(invoice)
    if total != doc["total"]:
        raise Rejected(f"Business Central invoice {invoice.get('number')} ({doc['number']}) totals {total} "
                       f"{doc['currency']}, ours is {doc['total']}: check the tax codes and tax setup (or use "
                       f"tax_mode account_line); the invoice was left unposted" if invoice.get("status") == "Draft"
                       else f"Business Central invoice {invoice.get('number')} ({doc['number']}) totals {total} "
                       f"{doc['currency']}, ours is {doc['total']}")


def created(invoice: dict, doc: dict) -> Created:
    check_total(invoice, doc)
    return Created(external_id=str(invoice["id"]), number=invoice.get("number"), url=None,
                   detail={"total": str(total_of(invoice)), "status": invoice.get("status"),
                           "tax": str(dec(invoice.get("totalTaxAmount")))})


def payment_status(invoice: dict) -> PaymentStatus:
    total = total_of(invoice)
    remaining = dec(invoice.get("remainingAmount")) if "remainingAmount" in invoice else total
    return PaymentStatus(amount_paid=total - remaining, amount_due=remaining,
                         paid=invoice.get("status") == "Paid" or remaining <= 0)


def error_text(body: Any, fallback: str = "") -> str:
    """`code: message` of an OData error body {"error": {"code", "message"}}, with Finance & Operations'
    `innererror.message` (the real reason behind its "An error has occurred.") when there is one."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        inner = (err.get("innererror") or {}).get("message") if isinstance(err.get("innererror"), dict) else None
        return ": ".join(str(p) for p in (err.get("code"), err.get("message"), inner) if p)
    return fallback[:300]


# ---------------------------------------------------------------- Finance & Operations: free text invoices

FO_DESCRIPTION_MAX = 60  # CustInvoiceLine.Description (the full text also goes in InvoiceText)


def fo_date(value) -> str:
    """An F&O date field in OData (Edm.DateTimeOffset), at noon UTC so no time zone moves the day."""
    return f"{value.isoformat()}T12:00:00Z"


def fo_header(doc: dict, customer_account: str, company: str) -> dict:
    """The FreeTextInvoiceHeaders POST body; our number is ExternalInvoiceId, the PO CustomerReference."""
    body: dict[str, Any] = {"dataAreaId": company, "CustomerAccount": customer_account,
                            "InvoiceDate": fo_date(doc["issued_on"]), "DueDate": fo_date(doc["due_on"]),
                            "CurrencyCode": doc["currency"], "ExternalInvoiceId": doc["number"]}
    if doc["job"].get("po_number"):
        body["CustomerReference"] = doc["job"]["po_number"]
    return body


def fo_lines(doc: dict, mapping: Mapping, company: str) -> list[dict]:
    """The FreeTextInvoiceLines POST bodies: the Business Central lines (tax_mode account_line), each on its
    main account, numbered 1, 2, ... and tied to the header by ExternalInvoiceId."""
    return [{"dataAreaId": company, "ExternalInvoiceId": doc["number"], "LineNumber": Decimal(i),
             "Description": _clip(l["description"], FO_DESCRIPTION_MAX), "InvoiceText": l["description"],
             "MainAccountDisplayValue": l["lineObjectNumber"], "Quantity": l["quantity"],
             "UnitPrice": l["unitPrice"], "SalesTaxItemGroupId": l["taxCode"]}
            for i, l in enumerate(lines(doc, mapping), start=1)]


def fo_line_key(line: dict) -> tuple:
    return (str(line.get("MainAccountDisplayValue") or ""), line.get("Description") or "",
            dec(line.get("Quantity")).normalize(), dec(line.get("UnitPrice")).normalize())


def fo_check_total(header: dict, invoice_lines: list[dict], doc: dict) -> None:
    total = sum((dec(l.get("TransactionCurrencyAmount")) + dec(l.get("SalesTaxAmount")) for l in invoice_lines),
                Decimal(0))
    if total != doc["total"]:
        raise Rejected(f"Finance and Operations free text invoice {header.get('FreeTextNumber')} ({doc['number']}) "
                       f"totals {total} {doc['currency']}, ours is {doc['total']}: check the item sales tax groups")


def fo_created(header: dict, invoice_lines: list[dict], doc: dict) -> Created:
    fo_check_total(header, invoice_lines, doc)
    return Created(external_id=str(header["FreeTextNumber"]), number=header.get("InvoiceId") or None, url=None,
                   detail={"total": str(doc["total"]), "posted": header.get("IsPosted") in (True, "Yes"),
                           "company": header.get("dataAreaId")})
