"""PayPal webhooks: the verify-webhook-signature request, and invoicing events normalised.

PayPal signs each delivery with its own certificate (headers PAYPAL-TRANSMISSION-ID, -TIME, -SIG,
-CERT-URL, -AUTH-ALGO). We do not check the certificate chain ourselves: we ask PayPal, with
`POST /v1/notifications/verify-webhook-signature` (../shared/vendor-specs/paypal/
notifications_webhooks_v1.json), giving it those headers, our webhook id and the event. The event goes
byte for byte as it arrived (spliced into the request body, not parsed and dumped again): PayPal's
check covers the body's exact bytes, and a re-serialised event (other key order or spacing) fails.

Events (https://developer.paypal.com/api/rest/webhooks/event-names/#invoicing):
INVOICING.INVOICE.PAID -> invoice.paid, INVOICING.INVOICE.PARTIALLY_PAID -> invoice.payment_partial
(amount = the invoice's payments.paid_amount), INVOICING.INVOICE.CANCELLED -> invoice.voided; others
-> other. The invoice is `resource` itself or `resource.invoice` (both shapes appear in PayPal's samples).
"""
from __future__ import annotations

import json

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.base import WebhookEvent
from invoicer.providers.paypal.transform import paid

HEADERS = {"auth_algo": "paypal-auth-algo", "cert_url": "paypal-cert-url", "transmission_id": "paypal-transmission-id",
           "transmission_sig": "paypal-transmission-sig", "transmission_time": "paypal-transmission-time"}
KINDS = {"INVOICING.INVOICE.PAID": "invoice.paid", "INVOICING.INVOICE.PARTIALLY_PAID": "invoice.payment_partial",
         "INVOICING.INVOICE.CANCELLED": "invoice.voided"}


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def verify_body(headers: dict, body: bytes | str, webhook_id: str) -> bytes:
    """The verify-webhook-signature request for one delivery, with the event spliced in unchanged.
    AuthFailed when a signature header is missing or the body is no JSON object (it cannot be verified)."""
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    fields = {}
    for name, header in HEADERS.items():
        if not lower.get(header):
            raise AuthFailed(f"paypal webhook: no {header.upper()} header")
        fields[name] = lower[header]
    raw = _bytes(body).strip()
    try:
        if not isinstance(json.loads(raw), dict):
            raise ValueError
    except ValueError:
        raise AuthFailed("paypal webhook: the body is not a JSON event, so it cannot be verified") from None
    fields["webhook_id"] = webhook_id
    return json.dumps(fields).encode()[:-1] + b', "webhook_event": ' + raw + b"}"


def normalise(body: bytes | str) -> list[WebhookEvent]:
    """One verified PayPal event as our WebhookEvent."""
    event = json.loads(_bytes(body))
    kind, resource = event.get("event_type"), event.get("resource")
    if not isinstance(kind, str) or not isinstance(resource, dict):
        raise Rejected("paypal webhook: the body is not a PayPal event")
    inv = resource.get("invoice") if isinstance(resource.get("invoice"), dict) else resource
    ours = KINDS.get(kind) if kind.startswith("INVOICING.INVOICE.") else None
    if ours is None or not inv.get("id"):
        return [WebhookEvent(type="other", external_id=str(inv.get("id") or ""), raw=event)]
    amount = (paid(inv) or None) if ours != "invoice.voided" else None  # PAID without figures: paid in full
    return [WebhookEvent(type=ours, external_id=inv["id"], amount_paid=amount, raw=event)]
