"""ServiceTitan's V2 webhooks as a trigger (POST /v1/hooks/servicetitan/<tenant>, invoicer.hooks).

What ServiceTitan documents (developer-next.servicetitan.io "V2 Webhooks", and its FAQ): the app sets a 32- to
64-character HMAC key per callback; "a hash of the payload using the shared secret (HMAC key)" is sent "in the
request header"; a non-2xx answer is retried after 10, 30, 60 and 300 s; failed events can be replayed from the
developer portal.

NOT CONFIRMED (the pages we could read name neither): the header's name, the hash function and encoding, and
the payload's fields. ASSUMED here, and in the simulator, until checked against a real delivery:
  header `X-ServiceTitan-Signature` = base64(HMAC-SHA256(raw body, HMAC key));
  body `{"eventId", "eventType", "createdOn", "tenantId", "data": {"id": <job id>}}`.
A redelivery or a portal replay carries the same eventId (the dedupe key). Staleness is judged by
`createdOn` with a 24-hour window, so a portal replay of yesterday's failed events is still taken.
"""
from __future__ import annotations

from typing import Any

from ..inbound import BadSignature, Delivery, Inbound, digest, same, text, when
from . import transform as t

HEADER = "x-servicetitan-signature"  # ASSUMED


class ServiceTitanInbound(Inbound):
    slug = t.SLUG
    max_age = 86400.0

    def verify(self, headers: dict[str, str], body: bytes, secret: str, now: float) -> None:
        if not same(digest(secret, body), headers.get(HEADER), "base64"):
            raise BadSignature("X-ServiceTitan-Signature does not match")

    def identify(self, payload: Any) -> Delivery:
        event_id = text(payload, "eventId")
        kind = text(payload, "eventType")
        job = text(payload, "data", "id")
        if not job.isdigit():
            raise ValueError("data.id: a ServiceTitan job id (an integer) is required")
        return Delivery(key=event_id, topic=kind, item_id=job, occurred_at=when(payload.get("createdOn"), "createdOn"),
                        type=t.EVENTS.get(kind))

    def fetch(self, delivery: Delivery, payload: Any, options: dict, ctx) -> dict:
        from .adapter import ServiceTitan

        got = ServiceTitan(options, ctx).fetch(delivery.item_id)
        return t.event_parts(got["job"], got["invoice"], got["customer"], got["contacts"], got["location"], options)


INBOUND = ServiceTitanInbound
