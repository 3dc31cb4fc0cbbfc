"""Square webhooks: verify `x-square-hmacsha256-signature` and normalise invoice events.

Scheme (https://developer.squareup.com/docs/webhooks/step3validate, and the official SDK's
WebhooksHelper.verify_signature): base64 of HMAC-SHA256, keyed with the subscription's signature key
(UTF-8), over the notification URL (exactly as registered) followed by the raw body. Square sends no
timestamp in the signature; a replayed delivery is harmless here, since applying an event is
idempotent. Several keys may be configured while one is being replaced.

Events: `invoice.payment_made` -> invoice.paid when the invoice is PAID, else invoice.payment_partial
with what has been paid so far; `invoice.canceled` -> invoice.voided; `invoice.updated` of a PAID or
PARTIALLY_PAID invoice is treated like a payment (it carries the same figures); anything else -> other.

Errors: a signature that does not verify -> AuthFailed (401); a verified body that is not a Square
event -> Rejected (422).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.base import WebhookEvent
from invoicer.providers.square.transform import from_square, paid_amount

HEADER = "x-square-hmacsha256-signature"


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def sign(body: bytes | str, url: str, key: str) -> str:
    """The header value Square sends for this body delivered to this notification URL."""
    mac = hmac.new(key.encode("utf-8"), url.encode("utf-8") + _bytes(body), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify(headers: dict, body: bytes | str, url: str, keys: list[str]) -> None:
    value = next((v for k, v in (headers or {}).items() if k.lower() == HEADER), None)
    if not value:
        raise AuthFailed(f"square webhook: no {HEADER} header")
    if not url:
        raise AuthFailed("square webhook: no notification URL to verify against")
    good = [k for k in keys if k]
    if not good:
        raise AuthFailed("square webhook: no signature key configured")
    if not any(hmac.compare_digest(sign(body, url, k).encode(), value.strip().encode()) for k in good):
        raise AuthFailed("square webhook: the signature does not match")


def _invoice_event(kind: str, inv: dict, raw: dict) -> WebhookEvent:
    status = inv.get("status")
    if kind == "invoice.canceled":
        return WebhookEvent(type="invoice.voided", external_id=inv["id"], raw=raw)
    if kind == "invoice.payment_made" or (kind == "invoice.updated" and status in ("PAID", "PARTIALLY_PAID")):
        paid, _, cur = paid_amount(inv)
        if not cur:
            raise Rejected(f"square webhook: {kind} without payment request amounts")
        amount = from_square(paid, cur)
        return WebhookEvent(type="invoice.paid" if status == "PAID" else "invoice.payment_partial",
                            external_id=inv["id"], amount_paid=amount, raw=raw)
    return WebhookEvent(type="other", external_id=inv["id"], raw=raw)


def parse(headers: dict, body: bytes | str, url: str, keys: list[str]) -> list[WebhookEvent]:
    """Verify, then normalise one Square event (Square sends one per request)."""
    verify(headers, body, url, keys)
    try:
        event = json.loads(_bytes(body))
    except ValueError:
        raise Rejected("square webhook: the body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) \
            or not isinstance(event.get("data"), dict):
        raise Rejected("square webhook: the body is not a Square event")
    data = event["data"]
    inv = (data.get("object") or {}).get("invoice") if isinstance(data.get("object"), dict) else None
    if data.get("type") != "invoice" or not isinstance(inv, dict) or not inv.get("id"):
        return [WebhookEvent(type="other", external_id=str(data.get("id") or ""), raw=event)]
    return [_invoice_event(event["type"], inv, event)]
