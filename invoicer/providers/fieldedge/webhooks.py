"""FieldEdge's webhooks as a trigger (POST /v1/hooks/fieldedge/<tenant>, invoicer.hooks).

What FieldEdge publishes: its operation list has webhook registration (POST /v1/webhook), deletion, and an
operation that ROTATES THE WEBHOOK'S HMAC SECRET -- so deliveries are HMAC-signed with a per-webhook secret.
NOT CONFIRMED (no page we could read describes a delivery): the header, hash, encoding and payload. ASSUMED,
as for ServiceTitan: header `X-FieldEdge-Signature` = base64(HMAC-SHA256(raw body, secret)); body
`{"id": <event id>, "event": "WorkOrderClosed", "timestamp": ISO 8601, "data": {"workOrderId": ...}}`.
A rotated secret: set the new one in the variable `sources.fieldedge.secret_env` names (one secret at a time).
"""
from __future__ import annotations

from typing import Any

from ..inbound import BadSignature, Delivery, Inbound, digest, same, text, when
from . import transform as t

HEADER = "x-fieldedge-signature"  # ASSUMED


class FieldEdgeInbound(Inbound):
    slug = t.SLUG

    def verify(self, headers: dict[str, str], body: bytes, secret: str, now: float) -> None:
        if not same(digest(secret, body), headers.get(HEADER), "base64"):
            raise BadSignature("X-FieldEdge-Signature does not match")

    def identify(self, payload: Any) -> Delivery:
        kind = text(payload, "event")
        return Delivery(key=text(payload, "id"), topic=kind, item_id=text(payload, "data", "workOrderId"),
                        occurred_at=when(payload.get("timestamp"), "timestamp"), type=t.EVENTS.get(kind))

    def fetch(self, delivery: Delivery, payload: Any, options: dict, ctx) -> dict:
        from .adapter import FieldEdge

        got = FieldEdge(options, ctx).fetch(delivery.item_id)
        return t.event_parts(got["work_order"], got["invoice"], got["customer"], options)


INBOUND = FieldEdgeInbound
