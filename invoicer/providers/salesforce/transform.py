"""Pure mapping for Salesforce's REST API: the canonical invoice -> upserts by external id (the account,
the invoice record, one record per line), grouped into Composite API requests; Salesforce's answers ->
`Created` and typed errors. No I/O here.

Three layouts, the tenant's choice (`object` option):
- `custom` (default): our custom objects `Invoice__c` (external id `Invoicer_Reference__c` = our
  number) with child `Invoice_Line__c` records (external id `Invoicer_Line_Reference__c` = number:position,
  parent set through the relationship `Invoice__r` by the invoice's external id). Every amount is
  written by us (Subtotal__c, Discount__c, Tax__c, Total__c, each line's Amount__c), so the record holds
  our figures exactly; the adapter reads Total__c back (a field whose scale is too small for the
  currency would round it, and is refused).
- `order`: the standard Order (external id `Invoicer_Reference__c` on Order) with OrderItem records
  (`Invoicer_Line_Reference__c`), each needing a PricebookEntryId from the tenant's mapping per kind of
  line (labor, material, fee, discount, tax) in the tenant's Pricebook2. Salesforce computes
  Order.TotalAmount = sum of Quantity x UnitPrice: our lines go as quantity x price when that is exact,
  else 1 x amount; each discount as a line of 1 x -amount; the tax as one line; the adapter compares
  TotalAmount with our total.
- `workorder`: the standard WorkOrder (Field Service; external id `Invoicer_Reference__c` on WorkOrder) with
  WorkOrderLineItem records (`Invoicer_Line_Reference__c` = number:position), priced like OrderItems: a
  PricebookEntryId per kind of line from the WorkOrder's Pricebook2, quantity x price when exact, else
  1 x amount, discounts as 1 x -amount, the tax as one line. Salesforce computes WorkOrder.TotalPrice from
  the line items; the adapter compares it with our total. WorkOrderNumber is Salesforce's auto number.
Related records are set by external id (`Account__r`, `Invoice__r`, `Order`, `WorkOrder`), so no subrequest needs
an id from another: every request of a retry is the same upsert again, and safe.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from ... import money
from ...errors import (AuthFailed, MappingMissing, ProviderError, RateLimited, Rejected,
                       Unavailable)
from ..base import Created
from ..xero.transform import dumps, loads  # JSON with exact Decimal numbers, never floats  # noqa: F401

COMPOSITE_MAX = 25  # subrequests per /composite call
DEFAULT_VERSION = "v62.0"
KINDS = ("labor", "material", "fee", "discount", "tax")
HALTED = "PROCESSING_HALTED"


@dataclass(frozen=True)
class Layout:
    """Where the invoice goes in the org: object and field names (defaults: the objects our docs define)."""
    kind: str = "custom"  # custom | order | workorder
    invoice_object: str = "Invoice__c"
    reference_field: str = "Invoicer_Reference__c"
    line_object: str = "Invoice_Line__c"
    line_reference_field: str = "Invoicer_Line_Reference__c"
    parent_relationship: str = "Invoice__r"
    account: bool = True
    account_reference_field: str = "Invoicer_Customer_Id__c"
    multi_currency: bool = False
    pricebook_id: str | None = None
    pricebook_entries: dict = field(default_factory=dict)
    platform: str = "salesforce"

    @classmethod
    def from_options(cls, options: dict, platform: str) -> "Layout":
        kind = str(options.get("object") or "custom")
        if kind not in LAYOUTS:
            raise MappingMissing(f"platforms.{platform}.object: {OBJECTS}, not {kind!r}")
        base = LAYOUTS[kind]
        names = {k: str(options[k]) for k in ("invoice_object", "reference_field", "line_object",
                                              "line_reference_field", "parent_relationship",
                                              "account_reference_field") if options.get(k)}
        return cls(**{**base.__dict__, **names, "kind": kind, "platform": platform or "salesforce",
                      "account": bool(options.get("account", True)) or kind != "custom",
                      "multi_currency": bool(options.get("multi_currency", False)),
                      "pricebook_id": options.get("pricebook_id"),
                      "pricebook_entries": dict(options.get("pricebook_entries") or {})})

    def entry(self, kind: str) -> str:
        value = self.pricebook_entries.get(kind)
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.pricebook_entries.{kind}: the PricebookEntry id for "
                                 f"{kind} lines is not set")
        return str(value)

    @property
    def priced(self) -> bool:
        """Standard objects whose lines need a PricebookEntry and whose total Salesforce computes."""
        return self.kind != "custom"

    @property
    def total_field(self) -> str:
        return {"custom": "Total__c", "order": "TotalAmount", "workorder": "TotalPrice"}[self.kind]

    @property
    def name_field(self) -> str:
        """The record's name: ours on Invoice__c and Order, Salesforce's auto number on WorkOrder."""
        return "WorkOrderNumber" if self.kind == "workorder" else "Name"


LAYOUTS = {"custom": Layout(),
           "order": Layout(kind="order", invoice_object="Order", line_object="OrderItem", parent_relationship="Order"),
           "workorder": Layout(kind="workorder", invoice_object="WorkOrder", line_object="WorkOrderLineItem",
                               parent_relationship="WorkOrder")}
OBJECTS = "'custom', 'order' or 'workorder'"


@dataclass(frozen=True)
class Upsert:
    object: str
    field: str
    value: str
    body: dict
    reference: str  # the subrequest's referenceId

    def path(self, version: str) -> str:
        return f"/services/data/{version}/sobjects/{self.object}/{self.field}/{quote(self.value, safe='')}"


@dataclass(frozen=True)
class Plan:
    upserts: list[Upsert]
    reference: str
    total: Decimal
    currency: str


# ---------------------------------------------------------------- numbers

def _amount(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


# ---------------------------------------------------------------- requests

def reference(doc: dict) -> str:
    return str(doc["number"])


def _lines(doc: dict) -> list[dict]:
    """Our lines, discounts and tax as (kind, description, quantity, unit price, amount, taxable, sku)."""
    out = []
    for line in doc["lines"]:
        qty, unit, text = line["quantity"], line["unit_price"], line["description"]
        if qty * unit != line["amount"]:  # Salesforce would multiply; send what adds up
            text, qty, unit = f"{text} ({_plain(qty)} x {_plain(unit)})", Decimal(1), line["amount"]
        out.append({"kind": line["kind"], "description": text, "quantity": qty, "unit_price": unit,
                    "amount": line["amount"], "taxable": line["taxable"], "sku": line.get("sku")})
    for d in doc["discounts"]:
        if d["amount"]:
            out.append({"kind": "discount", "description": d["description"], "quantity": Decimal(1),
                        "unit_price": -d["amount"], "amount": -d["amount"], "taxable": False, "sku": None})
    # the discounts together never exceed the subtotal (contract rule 2): the capped total is what counts
    excess = sum((-x["amount"] for x in out if x["kind"] == "discount"), Decimal(0)) - doc["discount_total"]
    if excess:
        out.append({"kind": "discount", "description": "Discount cap (discounts exceed the subtotal)",
                    "quantity": Decimal(1), "unit_price": excess, "amount": excess, "taxable": False, "sku": None})
    tax = doc["tax"]["amount"]
    if tax:
        rate = format((doc["tax"]["rate"] * 100).normalize(), "f")
        where = f" {doc['tax']['jurisdiction']}" if doc["tax"].get("jurisdiction") else ""
        out.append({"kind": "tax", "description": f"Tax{where} {rate}%", "quantity": Decimal(1), "unit_price": tax,
                    "amount": tax, "taxable": False, "sku": None})
    return out


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != value.to_integral_value() else format(value.quantize(1), "f")


def _account(doc: dict, layout: Layout) -> Upsert:
    c = doc["customer"]
    body = {"Name": c["name"][:255]}
    if c.get("phone"):
        body["Phone"] = c["phone"]
    address = c.get("billing_address") or {}
    for ours, theirs in (("line1", "BillingStreet"), ("city", "BillingCity"), ("region", "BillingState"),
                         ("postal_code", "BillingPostalCode"), ("country", "BillingCountry")):
        if address.get(ours):
            body[theirs] = address[ours]
    return Upsert("Account", layout.account_reference_field, str(c["id"]), body, "account")


def _account_ref(doc: dict, layout: Layout) -> dict:
    return {layout.account_reference_field: str(doc["customer"]["id"])}


def plan(doc: dict, layout: Layout) -> Plan:
    """Every upsert for one invoice, in order (account, invoice, lines); MappingMissing/Rejected before any call."""
    cur = doc["currency"]
    if not money.is_currency(cur):
        raise Rejected(f"invoice {doc['number']}: {cur} is not a currency")
    ref = reference(doc)
    lines = _lines(doc)
    if sum((x["amount"] for x in lines), Decimal(0)) != doc["total"]:
        raise Rejected(f"invoice {doc['number']}: its lines do not add up to {doc['total']}")
    job = doc["job"]
    upserts = [_account(doc, layout)] if layout.account else []
    currency = {"CurrencyIsoCode": cur} if layout.multi_currency else {}
    if layout.kind == "custom":
        head = {"Name": str(doc["number"])[:80], "Invoice_Date__c": doc["issued_on"].isoformat(),
                "Due_Date__c": doc["due_on"].isoformat(), "Subtotal__c": doc["subtotal"],
                "Discount__c": doc["discount_total"], "Tax__c": doc["tax"]["amount"], "Total__c": doc["total"],
                "Job_Number__c": str(job["number"]), "Summary__c": (job.get("summary") or "")[:32000],
                "Status__c": "Issued", **({"Currency__c": cur} if not layout.multi_currency else currency)}
        if job.get("po_number"):
            head["PO_Number__c"] = job["po_number"]
        if doc["customer"].get("email"):  # where an org Flow that emails the PDF sends it (docs page)
            head["Customer_Email__c"] = doc["customer"]["email"]
        if doc.get("pay_url"):
            head["Pay_URL__c"] = doc["pay_url"]
        if layout.account:
            head["Account__r"] = _account_ref(doc, layout)
        upserts.append(Upsert(layout.invoice_object, layout.reference_field, ref, head, "invoice"))
        for i, x in enumerate(lines):
            body = {"Name": x["description"][:80], layout.parent_relationship: {layout.reference_field: ref},
                    "Position__c": i + 1, "Kind__c": x["kind"], "Description__c": x["description"][:32000],
                    "Quantity__c": x["quantity"], "Unit_Price__c": x["unit_price"], "Amount__c": x["amount"],
                    "Taxable__c": bool(x["taxable"])}
            if x["sku"]:
                body["SKU__c"] = x["sku"]
            upserts.append(Upsert(layout.line_object, layout.line_reference_field, f"{ref}:{i + 1}", body, f"line{i}"))
    else:
        if not layout.pricebook_id:
            raise MappingMissing(f"platforms.{layout.platform}.pricebook_id: the Pricebook2 id for "
                                 f"{layout.invoice_object} is not set")
        about = f"Invoice {doc['number']} for job {job['number']}"
        head = {"Account": _account_ref(doc, layout), "Pricebook2Id": str(layout.pricebook_id),
                "Description": f"{about}: {job.get('summary') or ''}"[:32000], **currency}
        if layout.kind == "order":
            head.update(EffectiveDate=doc["issued_on"].isoformat(), Status="Draft", Name=str(doc["number"])[:80])
            if job.get("po_number"):
                head["PoNumber"] = job["po_number"][:80]
        else:  # WorkOrder: no name of ours (WorkOrderNumber is Salesforce's); the subject says which invoice
            head["Subject"] = (about + (f", PO {job['po_number']}" if job.get("po_number") else ""))[:255]
        upserts.append(Upsert(layout.invoice_object, layout.reference_field, ref, head, "invoice"))
        for i, x in enumerate(lines):
            body = {layout.parent_relationship: {layout.reference_field: ref},
                    "PricebookEntryId": layout.entry(x["kind"]), "Quantity": x["quantity"],
                    "UnitPrice": x["unit_price"], "Description": x["description"][:255]}
            upserts.append(Upsert(layout.line_object, layout.line_reference_field, f"{ref}:{i + 1}", body, f"line{i}"))
    return Plan(upserts, ref, doc["total"], cur)


def check_path(layout: Layout, ref: str, version: str) -> str:
    fields = ",".join(["Id", layout.name_field, layout.total_field])
    return (f"/services/data/{version}/sobjects/{layout.invoice_object}/{layout.reference_field}/"
            f"{quote(ref, safe='')}?fields={fields}")


def composites(p: Plan, layout: Layout, version: str) -> list[dict]:
    """/composite bodies (all or none, at most 25 subrequests each); the last one ends by reading the
    invoice back by its external id."""
    subs = [{"method": "PATCH", "url": u.path(version), "referenceId": u.reference, "body": u.body}
            for u in p.upserts]
    subs.append({"method": "GET", "url": check_path(layout, p.reference, version), "referenceId": "check"})
    return [{"allOrNone": True, "compositeRequest": subs[i:i + COMPOSITE_MAX]}
            for i in range(0, len(subs), COMPOSITE_MAX)]


def soql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pdf_title(doc: dict) -> str:
    return f"Invoice {doc['number']}"


def pdf_query(record_id: str, doc: dict) -> str:
    return (f"SELECT Id, ContentDocumentId FROM ContentVersion WHERE FirstPublishLocationId = "
            f"{soql_quote(record_id)} AND Title = {soql_quote(pdf_title(doc))}")


def content_version(record_id: str, doc: dict, pdf: dict) -> dict:
    import base64

    return {"Title": pdf_title(doc), "PathOnClient": pdf.get("filename") or f"{doc['number']}.pdf",
            "VersionData": base64.b64encode(pdf["data"]).decode(), "FirstPublishLocationId": record_id,
            "Description": f"invoicer {reference(doc)}"}


# ---------------------------------------------------------------- answers

def check_total(record: dict, p: Plan, layout: Layout) -> None:
    theirs = _amount(record.get(layout.total_field))
    if theirs != p.total:
        raise Rejected(f"salesforce {layout.invoice_object} {record.get('Id')} holds {layout.total_field} {theirs} "
                       f"{p.currency}, ours is {p.total} (is the field's scale too small for {p.currency}?)")


def created(record: dict, p: Plan, layout: Layout, instance_url: str, detail: dict) -> Created:
    rid = str(record["Id"])
    total = money.round_money(_amount(record.get(layout.total_field)), p.currency)
    return Created(external_id=rid, number=record.get(layout.name_field),
                   url=f"{instance_url.rstrip('/')}/lightning/r/{layout.invoice_object}/{rid}/view",
                   detail={"total": str(total), "object": layout.invoice_object, **detail})


def errors_of(body: Any) -> list[dict]:
    if isinstance(body, list):
        return [e for e in body if isinstance(e, dict)]
    if isinstance(body, dict) and body.get("errorCode"):
        return [body]
    return []


def error_text(errors: list[dict], fallback: str = "") -> str:
    parts = []
    for e in errors:
        text = f"{e.get('errorCode')}: {e.get('message')}"
        if e.get("fields"):
            text += f" (fields: {', '.join(map(str, e['fields']))})"
        parts.append(text)
    return "; ".join(parts) or fallback[:300]


def typed(status: int, errors: list[dict], where: str, reference_fields: tuple[str, ...] = (),
          retry_after: float | None = None) -> ProviderError:
    """The typed error a Salesforce error list means (`where` says which request)."""
    real = [e for e in errors if e.get("errorCode") != HALTED] or errors
    codes = {e.get("errorCode") for e in real}
    detail = f"salesforce {where} answered {status}: {error_text(real)}"
    if "REQUEST_LIMIT_EXCEEDED" in codes or status == 429:
        return RateLimited(detail, retry_after=retry_after or 3600.0, status=status)
    if "INVALID_SESSION_ID" in codes or status == 401:
        return AuthFailed(detail, status=401)
    if "DUPLICATE_VALUE" in codes:
        fields = {f for e in real for f in e.get("fields") or []}
        if fields & set(reference_fields) or any(r in (e.get("message") or "") for e in real for r in reference_fields):
            # two upserts of the same external id at once: the next one finds the record and updates it
            return Unavailable(detail, retry_after=1.0, status=status)
        return Rejected(detail, status=status)
    if codes & {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"} or status >= 500 or status in (408, 409):
        return Unavailable(detail, retry_after=retry_after, status=status)
    if "REQUIRED_FIELD_MISSING" in codes:
        fields = sorted({f for e in real for f in e.get("fields") or []})
        return Rejected(f"{detail} -- required field(s) missing: {', '.join(fields) or '?'}", status=status)
    if status in (401, 403):
        return AuthFailed(detail, status=status)
    if status == 300:
        return Rejected(f"{detail} -- the external id matches several records", status=status)
    return Rejected(detail, status=status)
