"""A signature a platform reports (DocuSign Connect `envelope-completed`) as the job's `job.signed` event.

The platform's verified webhook names its own document (the envelope id, recorded as the external id of
the invoice's delivery to that platform); the job's newest report is taken as it is, with
`job.signature` set to who signed and when, `occurred_at` the signing time, `source` the platform and an
id fixed by the platform's document, so a replayed or repeated delivery of the same completion is the
same event and is stored once (the ingress key: tenant, source, id). The ingress then persists and
publishes it exactly as it does an event posted to `POST /v1/events`.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from pydantic import ValidationError
from sqlalchemy import select

from . import db
from .errors import Rejected
from .models import Event


def event_id(provider: str, external_id: str) -> str:
    return f"{provider}-{external_id}-signed"[:128]


def _time(value) -> str:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"signature time {str(value)[:40]!r} is not an ISO 8601 time") from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def signed_event(tenant: str, provider: str, webhook) -> tuple[Event, str] | str:
    """(the job.signed event, its JSON body) for a verified `job.signed` webhook event, or the outcome
    "unknown_invoice" when no invoice of the tenant went to the platform under that document id."""
    d, i, j, e = db.deliveries.c, db.invoices.c, db.jobs.c, db.events.c
    with db.engine().connect() as conn:
        body = conn.execute(
            select(e.body).select_from(db.deliveries.join(db.invoices, d.invoice_id == i.id)
                                       .join(db.jobs, j.id == i.job_pk).join(db.events, e.id == j.event_pk))
            .where(i.tenant == tenant, d.provider == provider, d.kind == "invoice",
                   d.external_id == webhook.external_id)).scalar()
    if body is None:
        return "unknown_invoice"
    payload = json.loads(body)
    signed_at = _time(webhook.raw.get("signed_at"))
    payload.update(type="job.signed", id=event_id(provider, webhook.external_id), source=provider,
                   occurred_at=signed_at)
    payload["job"]["signature"] = {"signed_by": str(webhook.raw.get("signed_by") or "")[:500], "signed_at": signed_at}
    text = json.dumps(payload, ensure_ascii=False)
    try:
        return Event.model_validate(payload), text
    except ValidationError as exc:
        raise Rejected(f"{provider}: the signature does not make a valid job.signed event: "
                       f"{exc.errors(include_url=False)[0]['msg']}") from None
