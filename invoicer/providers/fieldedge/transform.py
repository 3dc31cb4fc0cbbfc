"""Pure mapping for FieldEdge, a trigger only: a closed work order, its invoice lines and its customer -> the
v1 contract's `job` and `customer`. No I/O here.

FieldEdge publishes no machine-readable spec (../shared/vendor-specs/fieldedge/SOURCE.txt): its operation list
names GET /v1/invoices/{invoiceId} (read only; the invoice id is the work order id) and a work-order GET, but
the field names below are MODELLED, not read from FieldEdge: workOrder {id, number, customerId, completedOn,
description, technician {id, name}, serviceAddress}, invoice {lines: [{type, description, quantity,
unitPrice, taxable}], taxRate}, customer {id, name, email, phone, billingAddress}. Check them against a real
tenant before relying on them; docs/providers/fieldedge.md says the same.
"""
from __future__ import annotations

from typing import Any

from ..jsonmoney import dec

SLUG = "fieldedge"
EVENTS = {"WorkOrderClosed": "job.completed", "WorkOrderUpdated": "job.updated"}  # MODELLED event names


def _address(raw: Any, default_country: str) -> dict:
    raw = raw or {}
    country = str(raw.get("country") or "").strip()
    return {"line1": str(raw.get("street") or "")[:200], "city": str(raw.get("city") or "")[:100],
            "region": str(raw.get("state") or "")[:100], "postal_code": str(raw.get("zip") or "")[:20],
            "country": country.upper() if len(country) == 2 and country.isalpha() else default_country}


def event_parts(work_order: dict, invoice: dict, customer: dict, options: dict) -> dict:
    default_country = str(options.get("country") or "US")
    labor, materials = [], []
    for line in invoice.get("lines") or []:
        qty, price = dec(line.get("quantity")), dec(line.get("unitPrice"))
        if qty == 0:
            continue
        description = str(line.get("description") or "Item")[:500]
        if line.get("type") == "Labor":
            labor.append({"description": description, "hours": str(qty), "rate": str(price),
                          "taxable": bool(line.get("taxable"))})
        else:
            materials.append({"description": description, "quantity": str(qty), "unit_price": str(price),
                              "taxable": bool(line.get("taxable")), "sku": str(line.get("itemCode") or "")[:64]})
    tech = work_order.get("technician") or {}
    rate = options.get("tax_rate") if options.get("tax_rate") is not None else invoice.get("taxRate") or "0"
    phone = customer.get("phone")
    return {
        "job": {"id": str(work_order["id"]), "number": str(work_order.get("number") or work_order["id"])[:64],
                "completed_at": work_order.get("completedOn"),
                "technician": {"id": str(tech.get("id") or "fieldedge"), "name": str(tech.get("name") or "Technician")},
                "summary": str(work_order.get("description") or "")[:4000],
                "service_address": _address(work_order.get("serviceAddress") or customer.get("billingAddress"),
                                            default_country),
                "labor": labor, "materials": materials, "fees": [], "discounts": [],
                "tax": {"rate": str(rate), "jurisdiction": str(options.get("tax_jurisdiction") or "")},
                "currency": str(options.get("currency") or "USD"),
                "payment_terms_days": int(options.get("payment_terms_days", 30))},
        "customer": {"id": str(customer["id"]), "name": str(customer.get("name") or "").strip(),
                     "email": customer.get("email") or None,
                     "phone": phone if isinstance(phone, str) and phone.startswith("+") and phone[1:].isdigit() else None,
                     "billing_address": _address(customer["billingAddress"], default_country)
                     if customer.get("billingAddress") else None,
                     "external_ids": {SLUG: str(customer["id"])}},
    }
