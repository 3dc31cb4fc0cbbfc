"""Pure mapping for Jobber's GraphQL API: the documents invoicer sends, a Jobber job -> the v1 contract's
`job` and `customer` (the inbound webhook), our canonical invoice -> `InvoiceCreateInput` (outbound), and
Jobber's answers -> `Created` / typed errors. No I/O here.

Type and field names follow the hand excerpt in ../shared/vendor-specs/jobber (InvoiceCreateInput,
InvoiceCreationLineItemInput, InvoiceDueDetails, InvoiceCreatePayload { invoice userErrors }). What the
excerpt does not settle is marked UNCONFIRMED here and in docs/providers/jobber.md: the query fields of
`visit`/`job`/`client`, the argument name `input` of `invoiceCreate`, the values of `InvoiceOrigin`, and
the fields of `TaxInputType` and `DiscountInput`.

Money: Jobber's money fields are GraphQL `Float`s. invoicer writes them as JSON numbers by their own
decimal digits (jsonmoney) and reads them back as Decimal; a float is never made.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ... import money
from ...errors import AuthFailed, RateLimited, Rejected, Unavailable
from ..base import Created
from ..jsonmoney import dec

SLUG = "jobber"
# topics (WebHookTopicEnum) -> the v1 event type; other topics are stored and not acted on
TOPICS = {"VISIT_COMPLETE": "job.completed", "JOB_UPDATE": "job.updated"}

_ADDRESS = "street1 street2 city province postalCode country"
_CLIENT = f"""id name companyName emails {{ address primary }} phones {{ number primary }}
      billingAddress {{ {_ADDRESS} }}"""
_JOB = f"""id jobNumber title instructions jobStatus completedAt
    client {{ {_CLIENT} }}
    property {{ id address {{ {_ADDRESS} }} }}
    lineItems {{ nodes {{ id name description category quantity unitPrice totalPrice taxable }} }}
    visits {{ nodes {{ id isComplete completedAt assignedUsers {{ nodes {{ id name {{ full }} }} }} }} }}"""
_INVOICE = "id invoiceNumber subject invoiceStatus subtotal taxAmount total jobberWebUri"

VISIT = f"""query Visit($id: EncodedId!) {{
  visit(id: $id) {{ id isComplete completedAt assignedUsers {{ nodes {{ id name {{ full }} }} }}
    job {{ {_JOB} }} }} }}"""
JOB = f"""query Job($id: EncodedId!) {{ job(id: $id) {{ {_JOB} }} }}"""
JOB_INVOICES = f"""query JobInvoices($id: EncodedId!) {{
  job(id: $id) {{ id invoices {{ nodes {{ {_INVOICE} }} }} }} }}"""
INVOICE_CREATE = f"""mutation InvoiceCreate($input: InvoiceCreateInput!) {{
  invoiceCreate(input: $input) {{ invoice {{ {_INVOICE} }} userErrors {{ message path }} }} }}"""
DOCUMENTS = (VISIT, JOB, JOB_INVOICES, INVOICE_CREATE)

_COUNTRIES = {"united states": "US", "united states of america": "US", "usa": "US", "canada": "CA",
              "united kingdom": "GB", "uk": "GB", "great britain": "GB", "australia": "AU",
              "new zealand": "NZ", "ireland": "IE"}


# ---------------------------------------------------------------- answers

def check(answer: Any, field: str | None = None) -> dict:
    """The `data` of a GraphQL answer (of `field` when given); GraphQL `errors` and `userErrors` (both with
    HTTP 200) as typed errors. THROTTLED waits as long as the query-cost bucket needs to refill."""
    if not isinstance(answer, dict):
        raise Rejected("jobber answered no JSON object")
    errors = answer.get("errors") or []
    if errors:
        codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)}
        text = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
        detail = f"jobber answered errors: {text}"
        if "THROTTLED" in codes or text.strip().lower() == "throttled":
            raise RateLimited(detail, retry_after=throttle_wait(answer))
        if codes & {"UNAUTHENTICATED", "UNAUTHORIZED"}:
            raise AuthFailed(detail, status=401)
        if codes & {"FORBIDDEN"}:
            raise AuthFailed(detail, status=403)
        if codes & {"INTERNAL_SERVER_ERROR"}:
            raise Unavailable(detail)
        raise Rejected(detail)
    data = answer.get("data") or {}
    if field is None:
        return data
    result = data.get(field)
    if not isinstance(result, dict):
        raise Rejected(f"jobber answered no {field}")
    problems = result.get("userErrors") or []
    if problems:
        raise Rejected(f"jobber {field} refused: " + "; ".join(
            f"{'.'.join(map(str, e.get('path') or []))}: {e.get('message')}" for e in problems))
    return result


def throttle_wait(answer: dict) -> float:
    """Seconds until the leaky bucket holds the query's cost again (extensions.cost, as Jobber documents it)."""
    cost = ((answer.get("extensions") or {}).get("cost") or {})
    status = cost.get("throttleStatus") or {}
    try:
        missing = float(cost.get("requestedQueryCost", 0)) - float(status.get("currentlyAvailable", 0))
        rate = float(status.get("restoreRate") or 0)
    except (TypeError, ValueError):
        return 1.0
    return max(1.0, missing / rate) if rate > 0 else 1.0


def nodes(connection: Any) -> list[dict]:
    return [n for n in ((connection or {}).get("nodes") or []) if isinstance(n, dict)]


# ---------------------------------------------------------------- inbound: Jobber job -> v1 job and customer

def country(value: Any, default: str) -> str:
    text = str(value or "").strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _COUNTRIES.get(text.casefold(), default)


def address(raw: Any, default_country: str) -> dict:
    raw = raw or {}
    line1 = " ".join(str(raw.get(k) or "").strip() for k in ("street1", "street2")).strip()
    return {"line1": line1[:200], "city": str(raw.get("city") or "")[:100],
            "region": str(raw.get("province") or "")[:100], "postal_code": str(raw.get("postalCode") or "")[:20],
            "country": country(raw.get("country"), default_country)}


def _primary(items: Any, key: str) -> str | None:
    items = [i for i in (items or []) if isinstance(i, dict) and i.get(key)]
    chosen = next((i for i in items if i.get("primary")), items[0] if items else None)
    return str(chosen[key]).strip() if chosen else None


def _e164(number: str | None) -> str | None:
    """A phone as E.164 when it already is one (Jobber keeps what people typed: nothing is guessed)."""
    if not number:
        return None
    digits = "+" + "".join(ch for ch in number if ch.isdigit()) if number.strip().startswith("+") else ""
    return digits if 8 <= len(digits) <= 16 else None


def event_parts(job: dict, visit: dict | None, options: dict) -> dict:
    """The v1 `job` and `customer` of a Jobber job (and the completed visit that triggered it).

    Tenant options used (`platforms.<jobber entry>` or `sources.jobber.fetch`): currency (default USD),
    tax_rate (a fraction, default 0), tax_jurisdiction, payment_terms_days (default 30), country (default US;
    Jobber addresses carry country names)."""
    default_country = str(options.get("country") or "US")
    currency = str(options.get("currency") or "USD")
    labor, materials = [], []
    for item in nodes(job.get("lineItems")):
        qty, unit = dec(item.get("quantity")), dec(item.get("unitPrice"))
        if qty == 0:
            continue
        name = str(item.get("name") or "").strip() or "Item"
        described = f"{name}: {item['description']}" if item.get("description") else name
        taxable = bool(item.get("taxable"))
        if item.get("category") == "SERVICE":
            labor.append({"description": described[:500], "hours": str(qty), "rate": str(unit), "taxable": taxable})
        else:
            materials.append({"sku": str(item.get("id") or "")[:64], "description": described[:500],
                              "quantity": str(qty), "unit_price": str(unit), "taxable": taxable})
    visits = nodes(job.get("visits"))
    users = nodes((visit or {}).get("assignedUsers")) or [u for v in visits for u in nodes(v.get("assignedUsers"))]
    tech = users[0] if users else {}
    completed = (visit or {}).get("completedAt") or job.get("completedAt") or next(
        (v.get("completedAt") for v in reversed(visits) if v.get("completedAt")), None)
    summary = " - ".join(str(x).strip() for x in (job.get("title"), job.get("instructions")) if x)
    client = job.get("client") or {}
    prop = (job.get("property") or {}).get("address")
    billing = client.get("billingAddress")
    out_job = {
        "id": str(job["id"]), "number": str(job.get("jobNumber") or job["id"])[:64], "completed_at": completed,
        "technician": {"id": str(tech.get("id") or "unassigned"),
                       "name": str(((tech.get("name") or {}).get("full")) or "Unassigned")},
        "summary": summary[:4000], "service_address": address(prop or billing, default_country),
        "labor": labor, "materials": materials, "fees": [], "discounts": [],
        "tax": {"rate": str(options.get("tax_rate") or "0"), "jurisdiction": str(options.get("tax_jurisdiction") or "")},
        "currency": currency, "payment_terms_days": int(options.get("payment_terms_days", 30)),
    }
    customer = {"id": str(client.get("id")), "name": str(client.get("name") or client.get("companyName") or "").strip(),
                "email": _primary(client.get("emails"), "address"), "phone": _e164(_primary(client.get("phones"), "number")),
                "billing_address": address(billing, default_country) if billing else None,
                "external_ids": {SLUG: str(client.get("id"))}}
    return {"job": out_job, "customer": customer}


def still_open(job: dict) -> bool:
    """A job with visits still to do: a completed visit is not the job's end (recurring or multi-day work)."""
    return any(not v.get("isComplete") for v in nodes(job.get("visits")))


# ---------------------------------------------------------------- outbound: canonical invoice -> invoiceCreate

def client_id(doc: dict) -> str | None:
    return (doc["customer"].get("external_ids") or {}).get(SLUG)


def invoice_input(doc: dict, options: dict, client: str) -> dict:
    """InvoiceCreateInput for our invoice, made from its Jobber job for its Jobber client."""
    items = []
    for line in doc["lines"]:
        items.append({"name": line["description"][:255], "quantity": line["quantity"], "unitPrice": line["unit_price"],
                      "taxable": bool(line["taxable"]),
                      "category": "PRODUCT" if line["kind"] == "material" else "SERVICE"})
    data: dict[str, Any] = {
        "clientId": client, "jobIds": [doc["job"]["id"]], "invoiceNumber": doc["number"],
        "subject": (doc["job"].get("summary") or f"Job {doc['job']['number']}").splitlines()[0][:255] or doc["number"],
        "issuedDate": f"{doc['issued_on'].isoformat()}T00:00:00Z",
        "dueDetails": {"invoiceNet": int(doc["payment_terms_days"])},
        "origin": str(options.get("origin") or "API"),  # UNCONFIRMED enum value
        "tax": {"name": (doc["tax"].get("jurisdiction") or "Tax")[:60],
                "rate": (doc["tax"]["rate"] * 100).normalize()},  # UNCONFIRMED fields: percent rate
        "lineItems": items,
        "markSent": bool(options.get("mark_sent", True)),
    }
    if doc["discount_total"]:
        data["discount"] = {"discountType": "AMOUNT", "discountRate": doc["discount_total"]}  # UNCONFIRMED fields
    return data


def check_total(inv: dict, doc: dict) -> None:
    total = dec(inv.get("total")).quantize(money.quantum(doc["currency"]))
    if total != doc["total"]:
        raise Rejected(f"jobber's total {total} for invoice {doc['number']} differs from ours {doc['total']}")


def created(inv: dict) -> Created:
    return Created(external_id=str(inv["id"]), number=inv.get("invoiceNumber"), url=inv.get("jobberWebUri"),
                   detail={"status": inv.get("invoiceStatus")})


def pick(invoices: list[dict], doc: dict) -> dict | None:
    """Our invoice among the job's: the one carrying our number."""
    return next((i for i in invoices if str(i.get("invoiceNumber")) == doc["number"]), None)
