"""Stripe webhooks: verify `Stripe-Signature` and normalise invoice events.

Scheme (https://docs.stripe.com/webhooks#verify-manually, and the official SDK's
stripe/_webhook.py): the header is `t=<unix time>,v1=<hex>[,v1=<hex>...][,v0=...]`; each v1 is
HMAC-SHA256, keyed with the endpoint secret (the whole `whsec_...` string, as UTF-8), of
`<t>.<raw body>`. Any one matching v1 is enough (Stripe sends several while a secret is being
rolled); other schemes are ignored. We refuse timestamps more than 300 s from now, either way.

Errors: a signature that does not verify (missing, tampered, wrong secret, stale) -> AuthFailed
(the ingress answers 401); a verified body that is not a Stripe event -> Rejected (422).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.base import WebhookEvent
from invoicer.providers.stripe.transform import from_stripe

TOLERANCE = 300  # seconds
EVENT_TYPES = ("invoice.paid", "invoice.payment_failed", "invoice.voided")


def _bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def signature(body: bytes | str, secret: str, timestamp: int) -> str:
    """The hex v1 signature of a body at a time."""
    return hmac.new(secret.encode("utf-8"), f"{int(timestamp)}.".encode() + _bytes(body), hashlib.sha256).hexdigest()


def sign(body: bytes | str, secret: str | list[str], timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header value (one v1 per secret), as Stripe sends it."""
    t = int(time.time() if timestamp is None else timestamp)
    secrets = [secret] if isinstance(secret, str) else list(secret)
    return ",".join([f"t={t}"] + [f"v1={signature(body, s, t)}" for s in secrets])


def _header(headers: dict, name: str) -> str | None:
    lower = name.lower()
    for k, v in (headers or {}).items():
        if k.lower() == lower:
            return v
    return None


def verify(headers: dict, body: bytes | str, secrets: list[str], now: float | None = None,
           tolerance: int = TOLERANCE) -> None:
    """AuthFailed unless one v1 signature matches one of our secrets within the tolerance."""
    value = _header(headers, "Stripe-Signature")
    if not value:
        raise AuthFailed("stripe webhook: no Stripe-Signature header")
    if not [s for s in secrets if s]:
        raise AuthFailed("stripe webhook: no endpoint secret configured")
    timestamp, v1 = None, []
    for part in value.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            continue
        if k == "t":
            try:
                timestamp = int(v)
            except ValueError:
                raise AuthFailed("stripe webhook: the signature timestamp is not a number") from None
        elif k == "v1":
            v1.append(v.strip())
    if timestamp is None or not v1:
        raise AuthFailed("stripe webhook: the Stripe-Signature header has no t= or no v1=")
    expected = [signature(body, s, timestamp) for s in secrets if s]
    if not any(hmac.compare_digest(e.encode(), got.encode()) for e in expected for got in v1):
        raise AuthFailed("stripe webhook: no v1 signature matches")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise AuthFailed(f"stripe webhook: timestamp {timestamp} is more than {tolerance} s from now")


def parse(headers: dict, body: bytes | str, secrets: list[str], now: float | None = None) -> list[WebhookEvent]:
    """Verify, then normalise one Stripe event (Stripe sends one event per request)."""
    verify(headers, body, secrets, now)
    try:
        event = json.loads(_bytes(body))
    except ValueError:
        raise Rejected("stripe webhook: the body is not JSON") from None
    if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("type"), str):
        raise Rejected("stripe webhook: the body is not a Stripe event")
    obj = (event.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict):
        raise Rejected("stripe webhook: data.object is not an object")
    kind = event["type"]
    if kind not in EVENT_TYPES or obj.get("object") != "invoice":
        return [WebhookEvent(type="other", external_id=str(obj.get("id") or ""), raw=event)]
    amount_paid = None
    if kind == "invoice.paid":
        try:
            amount_paid = from_stripe(int(obj["amount_paid"]), obj["currency"])
        except (KeyError, TypeError, ValueError):
            raise Rejected("stripe webhook: invoice.paid without amount_paid and currency") from None
    return [WebhookEvent(type=kind, external_id=str(obj.get("id") or ""), amount_paid=amount_paid, raw=event)]
