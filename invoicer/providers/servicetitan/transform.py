"""Pure mapping for ServiceTitan's v2 tenant APIs (../shared/vendor-specs/servicetitan: jpm, crm, accounting):
a ServiceTitan job, its invoice, customer, contacts and location -> the v1 contract's `job` and `customer`
(the inbound webhook), and our canonical invoice -> the `InvoiceUpdateRequest` that sets the items of the
job's existing invoice (outbound). No I/O here.

ServiceTitan makes the invoice with the job; invoicer never creates one there. Its items are the job's lines:
Service items become labor (quantity as hours, price as rate), every other type a material. Money in
answers is decimal strings (InvoiceResponse.subTotal, items[].price); in requests, JSON numbers written by
their own digits (jsonmoney), never floats.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ... import money
from ...errors import Rejected
from ..base import Created
from ..jsonmoney import dec

SLUG = "servicetitan"
# assumed V2 webhook event types (see webhooks.py) -> the v1 event type
EVENTS = {"job.completed": "job.completed", "job.updated": "job.updated"}


def _address(raw: Any, default_country: str) -> dict:
    raw = raw or {}
    line1 = " ".join(str(raw.get(k) or "").strip() for k in ("street", "unit")).strip()
    country = str(raw.get("country") or "").strip()
    country = country.upper() if len(country) == 2 and country.isalpha() else \
        {"united states": "US", "usa": "US", "canada": "CA"}.get(country.casefold(), default_country)
    return {"line1": line1[:200], "city": str(raw.get("city") or "")[:100], "region": str(raw.get("state") or "")[:100],
            "postal_code": str(raw.get("zip") or "")[:20], "country": country}


def _contact(contacts: list[dict], *types: str) -> str | None:
    for c in contacts:
        if isinstance(c, dict) and c.get("type") in types and c.get("value"):
            return str(c["value"]).strip()
    return None


def lines(invoice: dict) -> tuple[list[dict], list[dict]]:
    """(labor, materials) of the v1 job from the invoice's items, in their order."""
    labor, materials = [], []
    for item in sorted(invoice.get("items") or [], key=lambda i: i.get("order") or 0):
        qty, price = dec(item.get("quantity")), dec(item.get("price"))
        if qty == 0:
            continue
        description = str(item.get("description") or item.get("skuName") or "Item").strip()[:500] or "Item"
        if item.get("type") == "Service":
            labor.append({"description": description, "hours": str(qty), "rate": str(price),
                          "taxable": bool(item.get("taxable"))})
        else:
            materials.append({"sku": str(item.get("skuName") or "")[:64], "description": description,
                              "quantity": str(qty), "unit_price": str(price), "taxable": bool(item.get("taxable"))})
    return labor, materials


def tax_rate(invoice: dict, options: dict) -> str:
    """The tenant's rate (option tax_rate), else the invoice's own: sales tax over its taxable items."""
    if options.get("tax_rate") is not None:
        return str(options["tax_rate"])
    taxable = sum((dec(i.get("total")) for i in invoice.get("items") or [] if i.get("taxable")), Decimal(0))
    tax = dec(invoice.get("salesTax"))
    return str((tax / taxable).quantize(Decimal("0.0001"))) if taxable and tax else "0"


def event_parts(job: dict, invoice: dict, customer: dict, contacts: list[dict], location: dict | None,
                options: dict) -> dict:
    """The v1 `job` and `customer`. Options: currency (USD), tax_rate (else the invoice's), tax_jurisdiction,
    payment_terms_days (30), country (US)."""
    default_country = str(options.get("country") or "US")
    labor, materials = lines(invoice)
    phone = _contact(contacts, "MobilePhone", "Phone")
    phone = phone if phone and phone.startswith("+") and phone[1:].isdigit() else None
    out_job = {
        "id": str(job["id"]), "number": str(job.get("jobNumber") or job["id"])[:64],
        "completed_at": job.get("completedOn"),
        "technician": {"id": str(options.get("technician_id") or "servicetitan"),
                       "name": str(options.get("technician_name") or "ServiceTitan technician")},
        "summary": str(job.get("summary") or "")[:4000],
        "service_address": _address((location or {}).get("address") or customer.get("address"), default_country),
        "labor": labor, "materials": materials, "fees": [], "discounts": [],
        "tax": {"rate": tax_rate(invoice, options), "jurisdiction": str(options.get("tax_jurisdiction") or "")},
        "currency": str(options.get("currency") or "USD"), "payment_terms_days": int(options.get("payment_terms_days", 30)),
    }
    out_customer = {"id": str(customer["id"]), "name": str(customer.get("name") or "").strip(),
                    "email": _contact(contacts, "Email"), "phone": phone,
                    "billing_address": _address(customer.get("address"), default_country) if customer.get("address") else None,
                    "external_ids": {SLUG: str(customer["id"])}}
    return {"job": out_job, "customer": out_customer}


def update_request(doc: dict, existing: list[dict]) -> tuple[dict, list[int]]:
    """(InvoiceUpdateRequest, ids of items to delete): our lines onto the invoice's items in order (an item
    keeps its id, so a repeat changes nothing), one more for the discount, our tax as the invoice's tax."""
    ordered = sorted(existing, key=lambda i: i.get("order") or 0)
    items: list[dict] = []
    for n, line in enumerate(doc["lines"]):
        item = {"description": line["description"][:500], "quantity": line["quantity"], "unitPrice": line["unit_price"]}
        if n < len(ordered):
            item["id"] = ordered[n]["id"]
        items.append(item)
    if doc["discount_total"]:
        item = {"description": "Discount", "quantity": Decimal(1), "unitPrice": -doc["discount_total"]}
        if len(doc["lines"]) < len(ordered):
            item["id"] = ordered[len(doc["lines"])]["id"]
        items.append(item)
    stale = [int(i["id"]) for i in ordered[len(items):]]
    body = {"items": items, "subtotal": doc["subtotal"] - doc["discount_total"], "tax": doc["tax"]["amount"],
            "summary": (doc["job"].get("summary") or "")[:4000] or None}
    return body, stale


def check_total(invoice: dict, doc: dict) -> None:
    total = dec(invoice.get("total")).quantize(money.quantum(doc["currency"]))
    if total != doc["total"]:
        raise Rejected(f"servicetitan's total {total} for invoice {invoice.get('id')} differs from ours {doc['total']}")


def created(invoice: dict, doc: dict) -> Created:
    return Created(external_id=str(invoice["id"]), number=invoice.get("referenceNumber") or doc["number"],
                   detail={"job_id": (invoice.get("job") or {}).get("id"), "total": str(invoice.get("total"))})
