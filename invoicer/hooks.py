"""Dispatch systems as triggers: `POST /v1/hooks/{source}/{tenant}` for Jobber, ServiceTitan and FieldEdge.

Their webhooks carry ids, not jobs. The ingress only verifies the vendor's signature, stores the raw body
under the vendor's identity of the event (a redelivery is answered 200 and nothing more), and enqueues
`invoicer.ingest.hook`; that task fetches the job, its lines and the customer through the vendor's API,
maps them to a v1 event and stores it exactly as `POST /v1/events` does (`ingress.persist`), so the normal
pipeline takes it from there. The hook row keeps the raw body and the event it became; the audit log's
`hook_mapped` entry names both.

Which sources exist: every provider package whose `webhooks.py` ends with `INBOUND = <class>`
(invoicer.providers.inbound). A tenant takes a source's webhooks once its `sources.<slug>` names the
secret (`secret_env`); unsigned dispatch webhooks are not taken.
"""
from __future__ import annotations

import json
import re
import time
from importlib import import_module

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from . import db, logs
from .config import ConfigError, settings, tenants
from .errors import MappingMissing, ProviderError, Rejected
from .models import Event
from .providers.inbound import BadSignature, Delivery, Inbound
from .store import audit, insert_ignore, sweep

log = logs.get("invoicer.hooks")
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def inbound(source: str) -> Inbound | None:
    """The source's webhook handler, or None when no provider package takes webhooks by that name."""
    if not _SLUG.match(source):
        return None
    name = f"invoicer.providers.{source}.webhooks"
    try:
        module = import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name not in (name, f"invoicer.providers.{source}"):
            raise  # a broken package, not an unknown source
        return None
    cls = getattr(module, "INBOUND", None)
    return cls() if cls is not None else None


def _answer(status: int, error: str, detail) -> tuple[int, dict]:
    return status, {"error": error, "detail": detail}


def receive(source: str, tenant_slug: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    """Verify, store, dedupe, enqueue: (HTTP status, answer). Nothing is stored unless the signature holds."""
    handler = inbound(source)
    tenant = tenants().get(tenant_slug)
    conf = tenant.sources.get(source) if tenant is not None else None
    if handler is None or conf is None:
        return _answer(404, "not_found", "no such webhook endpoint")
    if conf.unsigned:
        return _answer(401, "unauthorized", f"sources.{source} must name the vendor's secret (secret_env)")
    try:
        secret = conf.secret()
    except ConfigError:
        return _answer(503, "misconfigured", "the source's secret is not available")
    headers = {k.lower(): v for k, v in headers.items()}
    now = time.time()
    try:
        handler.verify(headers, body, secret, now)
    except BadSignature:
        return _answer(401, "bad_signature", "missing, invalid or stale webhook signature")
    try:
        payload = json.loads(body.decode("utf-8"))
        if not isinstance(payload, dict):
            raise ValueError("body: must be a JSON object")
        delivery = handler.identify(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _answer(422, "invalid_json", [{"field": "body", "reason": f"not valid UTF-8 JSON: {exc}"}])
    except ValueError as exc:
        field, _, reason = str(exc).partition(": ")
        return _answer(422, "validation_failed", [{"field": field, "reason": reason or str(exc)}])
    if handler.stale(delivery, now):  # a good signature on an old body: a replay
        return _answer(401, "bad_signature", "missing, invalid or stale webhook signature")
    try:
        pk, duplicate = store(tenant_slug, source, delivery, body)
    except DBAPIError as exc:
        log.error("hook.store_unavailable", tenant=tenant_slug, source=source, error=type(exc).__name__)
        return _answer(503, "unavailable", "the webhook store is unavailable; retry later")
    answer = {"hook_id": pk, "topic": delivery.topic}
    if duplicate:
        log.info("hook.duplicate", tenant=tenant_slug, source=source, hook_id=pk, topic=delivery.topic)
        return 200, {**answer, "duplicate": True}
    if delivery.type is None:
        log.info("hook.ignored", tenant=tenant_slug, source=source, hook_id=pk, topic=delivery.topic)
        return 202, {**answer, "ignored": True}
    enqueue(pk)
    log.info("hook.accepted", tenant=tenant_slug, source=source, hook_id=pk, topic=delivery.topic)
    return 202, answer


def store(tenant: str, source: str, delivery: Delivery, body: bytes) -> tuple[int, bool]:
    """The raw delivery under (tenant, source, the vendor's event identity): (row id, duplicate)."""
    with db.engine().begin() as conn:
        pk = insert_ignore(conn, db.hook_deliveries, {
            "tenant": tenant, "source": source, "delivery_key": delivery.key[:256], "topic": delivery.topic[:64],
            "item_id": delivery.item_id[:128], "body": body.decode("utf-8"), "attempts": 0,
            "status": "received" if delivery.type else "ignored", "received_at": db.utcnow()},
            ["tenant", "source", "delivery_key"])
        if pk is not None:
            return pk, False
        h = db.hook_deliveries.c
        pk = conn.execute(select(h.id).where(h.tenant == tenant, h.source == source,
                                             h.delivery_key == delivery.key[:256])).scalar_one()
        return pk, True


def enqueue(hook_pk: int) -> bool:
    from .tasks.hooks import process_hook

    try:
        process_hook.apply_async((hook_pk,))
        return True
    except Exception as exc:  # stored: `stalled()` finds it for the beat sweep
        log.warning("hook.enqueue_failed", hook_id=hook_pk, error=type(exc).__name__)
        return False


def fetch_options(tenant, source: str) -> tuple[str, dict]:
    """(credentials name, options) for the source's API: the tenant's platform entry of that provider
    (Jobber, ServiceTitan, which are also invoice platforms), with `sources.<slug>.fetch` on top; else the
    fetch options alone, credentials stored under the source's name (FieldEdge)."""
    extra = tenant.sources[source].fetch
    for name, platform in tenant.platforms.items():
        if platform.provider == source:
            return name, {**platform.model_dump(), **extra}
    return source, {"provider": source, **extra}


def process(hook_pk: int, attempt: int = 1) -> int | None:
    """Fetch the job behind one stored webhook and store the v1 event it maps to; the event's row id (for
    the caller to publish), or None when there is nothing (more) to do. Safe to run twice: the event's id is
    the vendor's event identity, so a second run finds the same event row."""
    from .ingress import persist
    from .pipeline import Ctx

    h = db.hook_deliveries.c
    with db.engine().begin() as conn:
        row = conn.execute(select(db.hook_deliveries).where(h.id == hook_pk)).first()
        if row is None or row.status != "received":
            return None
        conn.execute(update(db.hook_deliveries).where(h.id == hook_pk).values(attempts=h.attempts + 1))
    tenant = tenants().get(row.tenant)
    handler = inbound(row.source)
    if tenant is None or handler is None or row.source not in tenant.sources:
        raise MappingMissing(f"hook {hook_pk}: tenant {row.tenant} takes no {row.source} webhooks any more")
    payload = json.loads(row.body)
    delivery = handler.identify(payload)
    name, options = fetch_options(tenant, row.source)
    ctx = Ctx(engine=db.engine(), var_dir=settings().var_dir, attempt=attempt, tenant=row.tenant, platform=name)
    fetched = handler.fetch(delivery, payload, options, ctx)
    raw = {"type": fetched.get("type") or delivery.type, "id": event_id(row.source, delivery.key),
           "source": row.source, "tenant": row.tenant,
           "occurred_at": (delivery.occurred_at or row.received_at).isoformat(),
           "job": fetched["job"], "customer": fetched["customer"]}
    try:
        event = Event.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise Rejected(f"{row.source} job {delivery.item_id} does not make a valid v1 event: {problems}") from None
    body = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    event_pk, _ = persist(row.tenant, row.source, event, body)
    with db.engine().begin() as conn:
        done = conn.execute(update(db.hook_deliveries).where(h.id == hook_pk, h.status == "received").values(
            status="processed", event_pk=event_pk, processed_at=db.utcnow(), error=None))
        if done.rowcount:
            audit(conn, row.tenant, "hook_mapped", event_pk=event_pk, hook_id=hook_pk, source=row.source,
                  topic=row.topic, item_id=row.item_id, job_id=event.job.id)
    log.info("hook.mapped", tenant=row.tenant, source=row.source, hook_id=hook_pk, event_pk=event_pk,
             job=event.job.id)
    return event_pk


def event_id(source: str, key: str) -> str:
    """The v1 event id of a dispatch webhook: its vendor identity, hashed when it would not fit."""
    import hashlib

    value = f"{source}:{key}"
    return value if len(value) <= 128 else f"{source}:" + hashlib.sha256(key.encode()).hexdigest()


def fail(hook_pk: int, exc: Exception) -> None:
    """A delivery that can never be mapped (a refused fetch, a job that is no valid v1 event): recorded and
    audited with the reason, never retried by itself."""
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    h = db.hook_deliveries.c
    with db.engine().begin() as conn:
        row = conn.execute(select(h.tenant, h.source).where(h.id == hook_pk)).first()
        if row is None:
            return
        conn.execute(update(db.hook_deliveries).where(h.id == hook_pk).values(
            status="failed", error=reason, processed_at=db.utcnow()))
        audit(conn, row.tenant, "hook_failed", hook_id=hook_pk, source=row.source, error=reason)
    log.warning("hook.failed", hook_id=hook_pk, error=type(exc).__name__)


def retryable(exc: Exception) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def stalled(grace: float, limit: int = 500, now=None) -> list[int]:
    """Hooks received more than `grace` seconds ago and still not mapped (their task was lost), each
    re-driven with the sweep's back-off (store.sweep)."""
    from datetime import timedelta

    h = db.hook_deliveries.c
    now = now or db.utcnow()
    with db.engine().begin() as conn:
        return [r.id for r in sweep(conn, db.hook_deliveries, h.received_at,
                                    [h.status == "received", h.received_at < now - timedelta(seconds=grace)],
                                    now, grace, limit)]