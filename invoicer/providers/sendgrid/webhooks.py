"""SendGrid's signed Event Webhook: verify the ECDSA signature and normalise the events.

Scheme (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features,
and the sendgrid package's EventWebhook helper, which we use): `X-Twilio-Email-Event-Webhook-Signature`
is a base64 ECDSA P-256 / SHA-256 signature of the `X-Twilio-Email-Event-Webhook-Timestamp` value
followed by the raw body; the verification key is the account's public key (base64 DER). We also
refuse a timestamp further than `tolerance` seconds from now (a replay).
"""
from __future__ import annotations

import json
import time

from sendgrid.helpers.eventwebhook import EventWebhook

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.base import WebhookEvent
from invoicer.providers.sendgrid.transform import EVENTS, KEY_ARG

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
TOLERANCE = 600  # seconds


def _header(headers: dict, name: str) -> str | None:
    return next((v for k, v in (headers or {}).items() if k.lower() == name.lower()), None)


def verify(headers: dict, body: bytes, public_key: str, now: float | None = None, tolerance: int = TOLERANCE) -> None:
    signature, timestamp = _header(headers, SIGNATURE), _header(headers, TIMESTAMP)
    if not signature or not timestamp:
        raise AuthFailed("sendgrid webhook: no signature or timestamp header")
    try:
        ok = EventWebhook(public_key).verify_signature(body.decode("utf-8"), signature, timestamp)
    except (ValueError, TypeError, UnicodeDecodeError):  # a malformed key, signature or body
        ok = False
    if not ok:
        raise AuthFailed("sendgrid webhook: the signature does not verify")
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        raise AuthFailed("sendgrid webhook: the timestamp is not a number") from None
    if age > tolerance:
        raise AuthFailed(f"sendgrid webhook: timestamp {timestamp} is more than {tolerance} s from now")


def parse(headers: dict, body: bytes, public_key: str, now: float | None = None,
          tolerance: int = TOLERANCE) -> list[WebhookEvent]:
    verify(headers, body, public_key, now, tolerance)
    try:
        events = json.loads(body)
    except ValueError:
        raise Rejected("sendgrid webhook: the body is not JSON") from None
    if not isinstance(events, list):
        raise Rejected("sendgrid webhook: the body is not a list of events")
    out = []
    for e in events:
        if not isinstance(e, dict):
            continue
        kind = "blocked" if e.get("event") == "bounce" and e.get("type") == "blocked" else e.get("event")
        ours = EVENTS.get(kind)
        raw = {k: e.get(k) for k in ("event", "type", "sg_event_id", "sg_message_id", "timestamp") if k in e}
        if e.get("reason") or e.get("response"):
            raw["reason"] = str(e.get("reason") or e.get("response"))[:200]
        message_id = str(e.get("sg_message_id") or "").split(".")[0]  # "<X-Message-Id>.filter..."
        out.append(WebhookEvent(type=f"message.{ours}" if ours else "other", external_id=message_id,
                                reference=e.get(KEY_ARG), raw=raw))
    return out
