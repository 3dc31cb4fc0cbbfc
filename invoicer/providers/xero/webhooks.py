"""Xero webhooks: verify `x-xero-signature` and normalise the events.

Xero signs the raw body: `x-xero-signature` = base64(HMAC-SHA256(webhook key, body)), the key being the
app's "webhook key" string as UTF-8. The payload is
  {"events": [{"resourceUrl", "resourceId", "eventDateUtc", "eventType": "CREATE"|"UPDATE",
               "eventCategory": "INVOICE"|"CONTACT"|..., "tenantId", "tenantType"}],
   "firstEventSequence", "lastEventSequence", "entropy"}.
"Intent to receive": when the webhook is set up, Xero sends payloads with no events, some correctly and
some wrongly signed; the endpoint must answer 200 to the good ones and 401 to the others. Here a good
empty payload parses to no events (the ingress answers 200) and a bad signature raises AuthFailed (401).
Xero signs no timestamp, so a replayed body cannot be told from a fresh one by its signature; the events
only say that something changed (no amounts), so acting on one twice is harmless.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ...errors import AuthFailed, Rejected
from ..base import WebhookEvent

HEADER = "x-xero-signature"
TYPES = {("INVOICE", "UPDATE"): "invoice.updated", ("INVOICE", "CREATE"): "invoice.created"}


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def _header(headers: dict, name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def verify(headers: dict, body: bytes, key: str) -> bool:
    given = _header(headers, HEADER)
    return bool(given) and bool(key) and hmac.compare_digest(given.strip().encode(), sign(body, key).encode())


def parse(headers: dict, body: bytes, key: str, tenant_id: str | None = None) -> list[WebhookEvent]:
    """The verified events of one delivery (only those of organisation `tenant_id`, when given).

    AuthFailed: missing or wrong signature (answer 401). Rejected: signed, but not a Xero payload."""
    if not verify(headers, body, key):
        raise AuthFailed("xero webhook: missing or invalid x-xero-signature", status=401)
    try:
        payload = json.loads(body or b"{}")
        events = payload.get("events") or []
        if not isinstance(events, list):
            raise TypeError("events is not a list")
    except (ValueError, TypeError, AttributeError) as exc:
        raise Rejected(f"xero webhook: not a Xero events payload ({exc})") from None
    out = []
    for event in events:
        if not isinstance(event, dict) or not event.get("resourceId"):
            raise Rejected("xero webhook: an event without resourceId")
        if tenant_id and event.get("tenantId") and event["tenantId"] != tenant_id:
            continue  # one Xero app sends every connected organisation's events to the same URL
        kind = TYPES.get((str(event.get("eventCategory", "")).upper(), str(event.get("eventType", "")).upper()),
                         "other")
        out.append(WebhookEvent(type=kind, external_id=str(event["resourceId"]), raw=event))
    return out
