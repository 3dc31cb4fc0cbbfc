"""DocuSign eSignature REST v2.1, pure: our finished invoice (with its PDF) to an envelope definition,
the vendor's answers back, and DocuSign's error bodies to our typed errors. No I/O here.

The envelope (`POST /v2.1/accounts/{accountId}/envelopes`, envelopeDefinition in
../shared/vendor-specs/docusign/esignature-v2.1.envelopes-create.subset.json):
- one document, our rendered PDF as `documentBase64` (documentId "1", fileExtension "pdf");
- one signer, the customer (email, name, recipientId "1", routingOrder "1") with one sign-here tab, placed
  by page and position (`sign_here: {page, x, y}`, DocuSign's pixels from the top left at 72 dpi) or by
  an anchor text (`sign_here: {anchor: "..."}`);
- `status: "sent"`: DocuSign emails the signer at once;
- our reference twice: `transactionId` (DocuSign keeps it 7 days) and a text custom field
  `invoicer_key` (hidden from the signer, kept with the envelope); the lookup before a retried create
  lists envelopes by that custom field, which outlives the 7 days.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

from ...errors import AuthFailed, ProviderError, RateLimited, Rejected, Unavailable
from ..base import Created

KEY_FIELD = "invoicer_key"  # the envelope custom field that carries our idempotency key
INVOICE_FIELD = "invoicer_invoice"  # and one with our invoice number, for people reading the envelope
SUBJECT_MAX = 100  # emailSubject: DocuSign's limit
DEFAULT_SUBJECT = "Please sign invoice {number} from {seller}"
DEFAULT_SIGN_HERE = {"page": 1, "x": 380, "y": 690}
# errorCode values (DocuSign's "API Error Codes" page and its rate-limit article)
RATE_CODES = {"HOURLY_APIINVOCATION_LIMIT_EXCEEDED", "BURST_APIINVOCATION_LIMIT_EXCEEDED",
              "CONCURRENT_REQUEST_LIMIT_EXCEEDED"}
AUTH_CODES = {"USER_AUTHENTICATION_FAILED", "AUTHORIZATION_INVALID_TOKEN", "PARTNER_AUTHENTICATION_FAILED",
              "ACCOUNT_LACKS_PERMISSIONS", "USER_LACKS_PERMISSIONS", "USER_NOT_ACCOUNT_MEMBER",
              "INVALID_USERID", "USER_DOES_NOT_BELONG_TO_SPECIFIED_ACCOUNT"}
RETRY_CODES = {"UNSPECIFIED_ERROR", "SERVICE_UNAVAILABLE"}  # DocuSign's own "try again" answers (with 5xx)


def _text(value, limit: int) -> str:
    return str(value or "").strip()[:limit]


def subject(doc: dict, template: str | None = None) -> str:
    text = (template or DEFAULT_SUBJECT).format(number=doc["number"], seller=doc["seller"]["name"])
    return text[:SUBJECT_MAX]


def check(doc: dict) -> None:
    """Rejected, before anything is sent, for an invoice DocuSign could not take."""
    customer = doc.get("customer") or {}
    if not customer.get("email"):
        raise Rejected(f"docusign: customer {customer.get('id')} has no email address; "
                       "DocuSign sends the envelope to the signer by email")
    pdf = doc.get("pdf") or {}
    if not pdf.get("data"):
        raise Rejected(f"docusign: invoice {doc['number']} has no rendered PDF to send for signature")


def sign_here_tab(placement: dict | None) -> dict:
    """The sign-here tab: by anchor text, or by page and position (strings, as DocuSign's models declare)."""
    place = {**DEFAULT_SIGN_HERE, **(placement or {})}
    tab = {"documentId": "1", "recipientId": "1", "tabLabel": "invoicer_sign_here"}
    if place.get("anchor"):
        return {**tab, "anchorString": str(place["anchor"]), "anchorUnits": "pixels",
                "anchorXOffset": str(int(place.get("anchor_x", 0))), "anchorYOffset": str(int(place.get("anchor_y", 0)))}
    return {**tab, "pageNumber": str(int(place["page"])), "xPosition": str(int(place["x"])),
            "yPosition": str(int(place["y"]))}


def envelope(doc: dict, key: str, options: dict | None = None) -> dict:
    """The envelopeDefinition for one invoice: its PDF, the customer as signer, sent at once."""
    check(doc)
    options = options or {}
    customer, pdf = doc["customer"], doc["pdf"]
    name = pdf.get("filename") or f"{doc['number']}.pdf"
    return {
        "emailSubject": subject(doc, options.get("email_subject")),
        "emailBlurb": _text(options.get("email_blurb") or
                            f"{doc['seller']['name']} asks you to sign invoice {doc['number']} "
                            f"({doc['total']} {doc['currency']}).", 10000),
        "documents": [{"documentId": "1", "name": _text(name, 100), "fileExtension": "pdf",
                       "documentBase64": base64.b64encode(pdf["data"]).decode("ascii")}],
        "recipients": {"signers": [{
            "email": _text(customer["email"], 100), "name": _text(customer["name"], 100),
            "recipientId": "1", "routingOrder": "1",
            "tabs": {"signHereTabs": [sign_here_tab(options.get("sign_here"))]}}]},
        "customFields": {"textCustomFields": [
            {"name": KEY_FIELD, "value": key[:100], "show": "false", "required": "false"},
            {"name": INVOICE_FIELD, "value": _text(doc["number"], 100), "show": "true", "required": "false"}]},
        "transactionId": key[:100],
        "status": "sent",
    }


def lookup_params(doc: dict, key: str) -> dict:
    """`GET .../envelopes` query for the envelope an earlier try made: by our custom field, from a day before
    the invoice was issued (DocuSign needs a from_date)."""
    issued = doc.get("created_at")
    if isinstance(issued, datetime):
        start = (issued if issued.tzinfo else issued.replace(tzinfo=timezone.utc)) - timedelta(days=1)
    else:
        start = datetime.now(timezone.utc) - timedelta(days=30)
    return {"from_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "custom_field": f"{KEY_FIELD}={key[:100]}",
            "include": "custom_fields"}


def key_of(envelope_info: dict) -> str | None:
    """Our key from an envelope's custom fields, if it carries one."""
    fields = (envelope_info.get("customFields") or {}).get("textCustomFields") or []
    return next((str(f.get("value")) for f in fields if f.get("name") == KEY_FIELD), None)


def found(listing: dict, key: str) -> dict | None:
    """The envelope of ours in a list answer (`envelopes`), checked by its custom field, not trusted blindly;
    one that was voided is not ours to reuse."""
    for env in listing.get("envelopes") or []:
        if key_of(env) == key[:100] and env.get("status") not in ("voided", "deleted"):
            return env
    return None


def created(summary: dict, doc: dict, account_id: str) -> Created:
    """What we record of an envelope: its id (the delivery's external id, which Connect events name)."""
    envelope_id = summary.get("envelopeId")
    if not envelope_id:
        raise Rejected(f"docusign: the answer names no envelopeId ({str(summary)[:200]})")
    return Created(external_id=str(envelope_id), number=doc["number"], url=None,
                   detail={"status": summary.get("status"), "account_id": account_id,
                           "status_at": summary.get("statusDateTime") or summary.get("statusChangedDateTime")})


def error_text(body) -> str:
    if isinstance(body, dict) and (body.get("errorCode") or body.get("message")):
        return f"{body.get('errorCode')}: {body.get('message')}"
    if isinstance(body, dict) and body.get("error"):  # the OAuth service's own shape
        return f"{body.get('error')}: {body.get('error_description') or ''}".strip()
    return str(body)[:300]


def typed(status: int, body, what: str, retry_after: float | None = None) -> ProviderError:
    """DocuSign's answer (`{errorCode, message}`) as the typed error that decides the retry."""
    code = body.get("errorCode") if isinstance(body, dict) else None
    detail = f"docusign {what} answered {status}: {error_text(body)}"
    if code in RATE_CODES or status == 429:
        return RateLimited(detail, retry_after=retry_after, status=status)
    if status in (401, 403) or code in AUTH_CODES:
        return AuthFailed(detail, status=status)
    if status in (408, 409) or status >= 500 or code in RETRY_CODES:
        return Unavailable(detail, retry_after=retry_after, status=status)
    return Rejected(detail, status=status)


def reset_in(headers, now: float) -> float | None:
    """Seconds until DocuSign's hourly window resets, from `X-RateLimit-Reset` (a Unix time; a small
    number is taken as seconds to wait)."""
    value = headers.get("X-RateLimit-Reset") if headers is not None else None
    try:
        reset = float(value)
    except (TypeError, ValueError):
        return None
    return max(1.0, reset - now) if reset > 1e9 else max(1.0, reset)
