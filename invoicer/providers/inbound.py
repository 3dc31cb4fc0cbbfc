"""Dispatch systems' own webhooks (Jobber, ServiceTitan, FieldEdge): the pieces each vendor's `webhooks.py`
shares. No database and no Celery here (invoicer.hooks stores, dedupes and runs them).

A vendor package that sends such webhooks ends its `webhooks.py` with `INBOUND = <its Inbound subclass>`:
  verify(headers, body, secret, now)   raise BadSignature unless the vendor signed these very bytes
  identify(payload) -> Delivery        the vendor's identity of the event (redeliveries share it), its topic,
                                       the id of what changed and the v1 event type it becomes (None: kept only)
  fetch(delivery, payload, options, ctx) -> {"job": ..., "customer": ...[, "type": ...]}
                                       the job, its lines, the customer (and signature) through the vendor's API,
                                       as the v1 contract's `job` and `customer` objects
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


class BadSignature(Exception):
    """Missing, malformed, wrong or stale: the ingress answers them all alike (no oracle)."""


@dataclass(frozen=True)
class Delivery:
    key: str  # the vendor's identity of this event: a redelivery carries the same one
    topic: str
    item_id: str
    occurred_at: datetime | None = None
    type: str | None = None  # the v1 event type it becomes; None: stored, not acted on


def digest(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def same(expected: bytes, given: str | None, encoding: str) -> bool:
    """`given` (a header value, base64 or hex as the vendor writes it) is `expected`, compared in constant time."""
    if not given:
        return False
    try:
        raw = base64.b64decode(given.strip(), validate=True) if encoding == "base64" else bytes.fromhex(given.strip())
    except ValueError:
        return False
    return hmac.compare_digest(raw, expected)


def sign(secret: str, message: bytes, encoding: str) -> str:
    """The signature a vendor would send (simulators and tests)."""
    raw = digest(secret, message)
    return base64.b64encode(raw).decode() if encoding == "base64" else raw.hex()


def when(value: Any, field: str) -> datetime:
    """An ISO 8601 time from a payload (ValueError naming the field)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: an ISO 8601 time is required")
    try:
        out = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field}: not an ISO 8601 time") from None
    return out if out.tzinfo else out.replace(tzinfo=timezone.utc)


def text(payload: Any, *path: str) -> str:
    """The non-empty string at `path` in a JSON payload (ValueError naming the field)."""
    node = payload
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, (str, int)) or isinstance(node, bool) or str(node) == "":
        raise ValueError(f"{'.'.join(path)}: a non-empty string is required")
    return str(node)


class Inbound:
    slug = ""
    max_age = 3600.0  # seconds: an event older than this is refused as stale even when its signature is good
    max_skew = 300.0  # seconds an event may claim to be in the future (clock skew)

    def verify(self, headers: dict[str, str], body: bytes, secret: str, now: float) -> None:
        raise NotImplementedError

    def identify(self, payload: Any) -> Delivery:
        raise NotImplementedError

    def fetch(self, delivery: Delivery, payload: Any, options: dict, ctx) -> dict:
        raise NotImplementedError

    def stale(self, delivery: Delivery, now: float) -> bool:
        if delivery.occurred_at is None:
            return False
        age = now - delivery.occurred_at.timestamp()
        return age > self.max_age or age < -self.max_skew
