"""Jobber's webhooks as a trigger (POST /v1/hooks/jobber/<tenant>, invoicer.hooks).

As Jobber documents them (developer.getjobber.com, "Setting up Webhooks"): a POST whose body is
`{"data": {"webHookEvent": {"topic", "appId", "accountId", "itemId", "occurredAt"}}}`, signed in the
`X-Jobber-Hmac-SHA256` header with the base64 HMAC-SHA256 of the raw body keyed by the app's OAuth client
secret; at-least-once delivery ("detect duplicate webhooks based on the payload data"); an answer is due
within one second, so the job is fetched later by a task.

The body carries no delivery id: a delivery is identified by (topic, itemId, occurredAt), which a redelivery
repeats. The signature covers only the body, so staleness is judged by `occurredAt` (Inbound.max_age);
Jobber publishes no replay window: one hour is our choice.
"""
from __future__ import annotations

from typing import Any

from ..inbound import BadSignature, Delivery, Inbound, same, text, when, digest
from . import transform as t

HEADER = "x-jobber-hmac-sha256"


class JobberInbound(Inbound):
    slug = t.SLUG

    def verify(self, headers: dict[str, str], body: bytes, secret: str, now: float) -> None:
        if not same(digest(secret, body), headers.get(HEADER), "base64"):
            raise BadSignature("X-Jobber-Hmac-SHA256 does not match")

    def identify(self, payload: Any) -> Delivery:
        topic = text(payload, "data", "webHookEvent", "topic")
        item = text(payload, "data", "webHookEvent", "itemId")
        occurred = when((((payload.get("data") or {}).get("webHookEvent") or {}).get("occurredAt")),
                        "data.webHookEvent.occurredAt")
        return Delivery(key=f"{topic}:{item}:{occurred.isoformat()}", topic=topic, item_id=item,
                        occurred_at=occurred, type=t.TOPICS.get(topic))

    def fetch(self, delivery: Delivery, payload: Any, options: dict, ctx) -> dict:
        from .adapter import Jobber

        api = Jobber(options, ctx)
        if delivery.topic == "VISIT_COMPLETE":
            job, visit = api.fetch_visit(delivery.item_id)
        else:
            job, visit = api.fetch_job(delivery.item_id), None
        parts = t.event_parts(job, visit, options)
        if delivery.type == "job.completed" and t.still_open(job):
            parts["type"] = "job.updated"  # one visit of several: the draft is kept current, not invoiced yet
        return parts


INBOUND = JobberInbound
