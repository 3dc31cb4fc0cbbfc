"""Pure mapping for HubSpot's CRM objects API: the canonical invoice -> invoice, line item, contact and
note bodies, and HubSpot's answers -> `Created`. No I/O here.

Field names follow the `hubspot-api-client` package's models (crm.commerce.invoices, crm.line_items,
crm.contacts, crm.objects.notes: `properties` as a map of strings, `associations` as
`[{to: {id}, types: [{associationCategory, associationTypeId}]}]`, search as `filterGroups` of
`{propertyName, operator, value}`) and HubSpot's invoices and line items guides
(developers.hubspot.com/docs/api-reference/crm-invoices-v3/guide, .../crm-line-items-v3/guide).

How the money is made to agree with ours to the minor unit:
- every HubSpot property value is a string, so amounts go as exact decimal strings (never floats);
- our discounts are invoice-level (contract rule 3): each line carries its share of `discount_total`
  (whole minor units, largest remainder first) as `hs_discount`, and a line that carries a share goes as
  quantity 1 x its amount (so `hs_discount` means the same whether HubSpot reads it per unit or per
  line); a line whose quantity x price is not exactly its amount goes as 1 x its amount too, with
  "(qty x price)" in its name;
- our tax is rounded once on the whole invoice, HubSpot's tax rates per line: the tax goes as one line
  item of its own ("Tax FL 8%", 1 x our tax amount), so no HubSpot rounding is involved;
- the adapter reads the invoice back and refuses to call a different `hs_amount_billed` a success.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from ... import money
from ...errors import Rejected
from ..base import Created
from ..xero.transform import allocate  # the same largest-remainder split Xero's mapping uses

REFERENCE = "invoicer_reference"  # default name of the unique custom invoice property
# HubSpot-defined association type ids (the v4 associations "association type IDs" table); a tenant
# can override them with the `association_types` option
ASSOCIATIONS = {"invoice_to_contact": 177, "invoice_to_deal": 175, "line_item_to_invoice": 410,
                "note_to_contact": 202}
INVOICE_PROPERTIES = ("hs_currency", "hs_invoice_date", "hs_due_date", "hs_invoice_status", "hs_number",
                      "hs_amount_billed", "hs_subtotal")
LINE_PROPERTIES = ("name", "quantity", "price", "hs_discount", "hs_sku", "amount")
BATCH = 100  # inputs per batch request
APP_URL = "https://app.hubspot.com/contacts/{portal}/record/0-53/{id}"


@dataclass(frozen=True)
class Plan:
    """Everything HubSpot is sent for one invoice, and what its total must come to."""
    invoice: dict  # properties of the invoice (without associations)
    lines: list[dict]  # properties of each line item, in order
    total: Decimal
    currency: str


def _plain(value: Decimal) -> str:
    """A decimal as HubSpot's string form of a number: no exponent, no needless trailing zeros in quantities."""
    if value == value.to_integral_value():
        return format(value.quantize(Decimal(1)), "f")
    return format(value.normalize(), "f")


def _money(value: Decimal, currency: str) -> str:
    return format(money.round_money(value, currency), "f")


def midnight_ms(day: date) -> str:
    """A HubSpot date property: epoch milliseconds of midnight UTC on that day, as a string."""
    return str(int(datetime.combine(day, time(0), tzinfo=timezone.utc).timestamp() * 1000))


def _tax_name(doc: dict) -> str:
    tax = doc["tax"]
    rate = format((tax["rate"] * 100).normalize(), "f")
    where = f" {tax['jurisdiction']}" if tax.get("jurisdiction") else ""
    return f"Tax{where} {rate}%"


def line_items(doc: dict) -> list[dict]:
    """The properties of every line item, tax last; their amounts add up to our total exactly."""
    cur = doc["currency"]
    q = money.quantum(cur)
    lines = doc["lines"]
    if not lines:
        raise Rejected(f"invoice {doc['number']} has no lines; HubSpot cannot open an empty invoice")
    amounts = [line["amount"] for line in lines]
    try:
        shares = allocate(doc["discount_total"], amounts, q)
    except ValueError as exc:
        raise Rejected(f"invoice {doc['number']}: cannot spread discount {doc['discount_total']} over its lines: "
                       f"{exc}") from None
    out = []
    for line, share in zip(lines, shares):
        qty, unit, name = line["quantity"], line["unit_price"], line["description"]
        if share or qty * unit != line["amount"] or qty <= 0:
            if qty != 1 or unit != line["amount"]:
                name = f"{name} ({_plain(qty)} x {_plain(unit)})"
            qty, unit = Decimal(1), line["amount"]
        props = {"name": name[:500], "quantity": _plain(qty), "price": format(unit, "f")}
        if share:
            props["hs_discount"] = _money(share, cur)
        if line.get("sku"):
            props["hs_sku"] = line["sku"]
        out.append(props)
    tax = doc["tax"]["amount"]
    if tax:
        out.append({"name": _tax_name(doc), "quantity": "1", "price": _money(tax, cur)})
    if line_total(out) != doc["total"]:  # a bug in the mapping, never sent
        raise Rejected(f"invoice {doc['number']}: line items add up to {line_total(out)}, not {doc['total']}")
    return out


def line_amount(props: dict) -> Decimal:
    """What one line item comes to: quantity x price less its discount (quantity 1 whenever discounted)."""
    qty, price = Decimal(props.get("quantity") or "0"), Decimal(props.get("price") or "0")
    return qty * price - Decimal(props.get("hs_discount") or "0")


def line_total(lines: list[dict]) -> Decimal:
    return sum((line_amount(p) for p in lines), Decimal(0))


def invoice_properties(doc: dict, reference_property: str = REFERENCE) -> dict:
    job = doc["job"]
    comments = f"Invoice {doc['number']} for job {job['number']}"
    if job.get("summary"):
        comments += f": {job['summary']}"
    props = {
        "hs_currency": doc["currency"],
        "hs_invoice_date": midnight_ms(doc["issued_on"]),
        "hs_due_date": midnight_ms(doc["due_on"]),
        "hs_comments": comments[:5000],
        reference_property: reference(doc),
    }
    if job.get("po_number"):
        props["hs_purchase_order_number"] = job["po_number"]
    return props


def plan(doc: dict, reference_property: str = REFERENCE) -> Plan:
    """Rejected, before anything is sent, for an invoice HubSpot could not hold exactly."""
    if not money.is_currency(doc["currency"]):
        raise Rejected(f"invoice {doc['number']}: {doc['currency']} is not a currency")
    return Plan(invoice_properties(doc, reference_property), line_items(doc), doc["total"], doc["currency"])


def reference(doc: dict) -> str:
    """The value of our unique property: the invoice number, unique per tenant (one portal per tenant)."""
    return str(doc["number"])


# ---------------------------------------------------------------- bodies

def association(to_id: str, type_id: int) -> dict:
    return {"to": {"id": str(to_id)}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                 "associationTypeId": int(type_id)}]}


def invoice_body(p: Plan, contact_id: str, deal_id: str | None, types: dict) -> dict:
    assoc = [association(contact_id, types["invoice_to_contact"])]
    if deal_id:
        assoc.append(association(deal_id, types["invoice_to_deal"]))
    return {"properties": dict(p.invoice), "associations": assoc}


def line_items_body(lines: list[dict], invoice_id: str, types: dict) -> dict:
    return {"inputs": [{"properties": dict(props),
                        "associations": [association(invoice_id, types["line_item_to_invoice"])]}
                       for props in lines]}


def missing_lines(planned: list[dict], existing: list[dict]) -> list[dict]:
    """The planned line items HubSpot does not have yet (matched as a multiset on what we send), for a
    retried create whose line items were partly or wholly made."""
    def sig(props: dict) -> tuple:
        return (props.get("name") or "", Decimal(props.get("quantity") or "0"), Decimal(props.get("price") or "0"),
                Decimal(props.get("hs_discount") or "0"))

    have: dict[tuple, int] = {}
    for props in existing:
        have[sig(props)] = have.get(sig(props), 0) + 1
    out = []
    for props in planned:
        s = sig(props)
        if have.get(s):
            have[s] -= 1
        else:
            out.append(props)
    return out


def search_eq(name: str, value: str, properties: tuple[str, ...] = (), limit: int = 10) -> dict:
    body: dict[str, Any] = {"filterGroups": [{"filters": [{"propertyName": name, "operator": "EQ", "value": value}]}],
                            "limit": limit}
    if properties:
        body["properties"] = list(properties)
    return body


def split_name(name: str) -> tuple[str, str]:
    parts = name.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])


def contact_body(customer: dict) -> dict:
    first, last = split_name(customer["name"])
    props = {"firstname": first, "lastname": last}
    if customer.get("email"):
        props["email"] = customer["email"]
    if customer.get("phone"):
        props["phone"] = customer["phone"]
    address = customer.get("billing_address") or {}
    for ours, theirs in (("line1", "address"), ("city", "city"), ("region", "state"), ("postal_code", "zip"),
                         ("country", "country")):
        if address.get(ours):
            props[theirs] = address[ours]
    return {"properties": {k: v for k, v in props.items() if v}}


def note_body(doc: dict, link: str, contact_id: str, type_id: int, when_ms: int) -> dict:
    total = f"{doc['total']} {doc['currency']}"
    text = (f"<p>Invoice {doc['number']} ({total}, due {doc['due_on'].isoformat()}) for job "
            f"{doc['job']['number']}: <a href=\"{link}\">PDF</a></p>")
    return {"properties": {"hs_timestamp": str(when_ms), "hs_note_body": text},
            "associations": [association(contact_id, type_id)]}


def note_marker(doc: dict) -> str:
    return f"Invoice {doc['number']} ("


# ---------------------------------------------------------------- answers

def amount(value: Any) -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    return Decimal(str(value))


def check_total(inv: dict, p: Plan) -> None:
    props = inv.get("properties") or {}
    billed = amount(props.get("hs_amount_billed"))
    if billed != p.total:
        raise Rejected(f"hubspot invoice {inv.get('id')} comes to {billed} {p.currency}, ours to {p.total}; "
                       f"left as a draft")


def created(inv: dict, portal: str | None) -> Created:
    props = inv.get("properties") or {}
    url = APP_URL.format(portal=portal, id=inv["id"]) if portal else None
    return Created(external_id=str(inv["id"]), number=props.get("hs_number") or None, url=url,
                   detail={"status": props.get("hs_invoice_status"), "total": props.get("hs_amount_billed")})


def error_text(body: Any, fallback: str = "") -> str:
    """HubSpot's error body `{status, message, correlationId, category, errors: [...]}` as one line."""
    if not isinstance(body, dict):
        return fallback[:300]
    parts = [body.get("category") or body.get("errorType") or "", body.get("message") or ""]
    details = [e.get("message") for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    text = ": ".join(p for p in parts if p)
    if details:
        text += " (" + "; ".join(details)[:200] + ")"
    if body.get("correlationId"):
        text += f" [{body['correlationId']}]"
    return text or fallback[:300]
