"""The thin HTTP ingress: verify, validate, persist, enqueue. Nothing else happens here."""
from __future__ import annotations

import asyncio
import hmac
import json
import re
import sys
from datetime import datetime, timezone

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from pydantic import ValidationError
from sqlalchemy import select, text, tuple_
from sqlalchemy.exc import DBAPIError
from standardwebhooks import Webhook
from starlette.concurrency import run_in_threadpool

from . import __version__, db, documents, dlq, hooks, logs, metrics, pipeline
from .errors import AuthFailed, Rejected
from .providers import registry
from .config import ConfigError, settings, tenants
from .models import Event
from .status import job_status
from .batching import GroupCommit
from .store import insert_ignore_many

log = logs.get("invoicer.ingress")
_FIELD_IN_MSG = re.compile(r"^([a-z_][a-z_0-9.]*): (.*)$", re.S)
BATCH = 200  # events at most in one group commit (one INSERT, one published message)
MAX_DEPTH = 32  # an event is 5 levels deep; the workers' JSON parser stops at 200


def _queues() -> tuple[str, ...]:
    from .tasks import QUEUES

    return QUEUES


def jsonable(value):
    return json.loads(json.dumps(value, default=str))


def parse_time(value) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise ValueError("an ISO 8601 time is required, e.g. 2026-11-25T08:00:00Z")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {value[:40]!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _error(status: int, error: str, detail, headers=None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _fields(exc: ValidationError) -> list[dict]:
    out = []
    for e in exc.errors(include_url=False):
        loc = [str(p) for p in e["loc"]]
        msg = e["msg"].removeprefix("Value error, ")
        m = _FIELD_IN_MSG.match(msg)
        if m:  # a model-level rule names the field it is about
            loc.append(m.group(1))
            msg = m.group(2)
        out.append({"field": ".".join(loc) or "body", "reason": msg})
    return out


def persist(tenant: str, source: str, event: Event, body: str) -> tuple[int, bool]:
    """Store the event under its (tenant, source, id); (row id, duplicate)."""
    return persist_many([(tenant, source, event, body)])[0]


def persist_many(items: list[tuple[str, str, Event, str]]) -> list[tuple[int, bool]]:
    """Store (tenant, source, event, body) items in one transaction under their (tenant, source, id):
    (row id, duplicate) for each, in order. The first copy of an identity is stored; later ones, in
    this batch or before it, are duplicates. Rows go in in identity order, so two processes' batches
    wait for each other's rows in one order and never deadlock."""
    keys = [(tenant, source, event.id) for tenant, source, event, _ in items]
    now = db.utcnow()
    rows = [{"tenant": tenant, "source": source, "event_id": event.id, "type": event.type, "job_id": event.job.id,
             "body": body, "status": "accepted", "received_at": now}
            for _, (tenant, source, event, body) in sorted(zip(keys, items), key=lambda pair: pair[0])]
    e = db.events.c
    made_before = {}
    with db.engine().begin() as conn:
        made = insert_ignore_many(conn, db.events, rows, ["tenant", "source", "event_id"])
        others = set(keys) - made.keys()
        if others:
            made_before = dict(((r.tenant, r.source, r.event_id), r.id) for r in conn.execute(
                select(e.id, e.tenant, e.source, e.event_id).where(tuple_(e.tenant, e.source, e.event_id).in_(others))))
    out, first = [], set()
    for key in keys:
        if key in made and key not in first:
            first.add(key)
            out.append((made[key], False))
        else:
            out.append((made.get(key) or made_before[key], True))
    return out


def store_batch(items: list[tuple[str, str, Event, str]]) -> list[tuple[int, bool]]:
    """One group commit of the ingress (its new events are published next, by publish_batch)."""
    metrics.INGRESS_BATCH.observe(len(items))
    return persist_many(items)


def publish_batch(items: list, stored: list[tuple[int, bool]]) -> bool:
    return publish_many([pk for pk, duplicate in stored if not duplicate])


def publish(event_pk: int) -> bool:
    from .tasks.pipeline import process_event

    return _publish(process_event, [event_pk])


def publish_many(event_pks: list[int]) -> bool:
    from .tasks.pipeline import process_many

    return not event_pks or _publish(process_many, [event_pks])


def _publish(task, args: list) -> bool:
    try:
        task.apply_async(args)
        return True
    except Exception as exc:  # the events are stored: the beat sweep enqueues them when the broker is back
        log.warning("event.enqueue_failed", event_pks=args[0], error=type(exc).__name__,
                    note="stored; the beat sweep enqueues it when the broker is back")
        return False


async def _field(request: Request, name: str):
    """One field of a JSON object body, or None (no body, not JSON, not an object)."""
    try:
        return (await request.json()).get(name)
    except (ValueError, AttributeError):
        return None


async def _operate(action, *args, **kw):
    """Run an operator's action (dlq.discard, dlq.settle) off the event loop and enqueue what it says
    runs next; its result, None when there was nothing to act on."""
    def run():
        follow = action(*args, **kw)
        if follow:
            from .tasks import enqueue

            enqueue(follow)
        return follow

    return await run_in_threadpool(run)


def apply_platform_event(tenant: str, provider: str, event) -> str:
    """One verified platform event: a signature (`job.signed`, DocuSign Connect) becomes the job's event,
    persisted and published as `POST /v1/events` does (once: its id is fixed by the signed document);
    a notice that carries ids only (QuickBooks) makes the platform be asked (tasks.reminders.payment_notice);
    anything else is recorded against the invoice (pipeline.apply_webhook)."""
    if event.type in ("invoice.changed", "payment.changed"):
        from .tasks.reminders import payment_notice

        return payment_notice(tenant, provider, event)
    if event.type != "job.signed":
        return pipeline.apply_webhook(tenant, provider, event)
    from . import signatures

    made = signatures.signed_event(tenant, provider, event)
    if isinstance(made, str):
        return made
    signed, body = made
    pk, duplicate = persist(tenant, provider, signed, body)
    if duplicate:
        return "duplicate"
    publish(pk)
    log.info("event.accepted", tenant=tenant, job=signed.job.id, event_pk=pk, event_id=signed.id,
             type=signed.type, source=provider)
    return "signed"


async def _read_body(request: Request, limit: int, timeout: float) -> bytes | JSONResponse:
    """The body, or the answer to give: 413 over the limit, 408 when it does not arrive within the
    timeout (a client trickling it would otherwise hold a connection for ever)."""
    def too_large():
        return _error(413, "too_large", f"the body is over {limit} bytes")

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return too_large()
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    return too_large()
                chunks.append(chunk)
    except TimeoutError:
        return _error(408, "timeout", f"the body did not arrive within {timeout:g} s", {"Connection": "close"})
    except ClientDisconnect:
        return _error(400, "disconnected", "the client went away before the body was complete")
    return b"".join(chunks)


# What every 422 looks like, under the names FastAPI gives its own validation error in the document.
PROBLEM_SCHEMAS = {
    "ValidationError": {"title": "ValidationError", "type": "object", "required": ["field", "reason"],
                        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}},
    "HTTPValidationError": {"title": "HTTPValidationError", "type": "object", "required": ["error", "detail"],
                            "properties": {"error": {"type": "string"}, "detail": {
                                "type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}}},
}


def _too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """True when arrays and objects nest deeper than `limit` (walked without recursion)."""
    containers = (dict, list)
    stack = [(value, 1)] if isinstance(value, containers) else []
    while stack:  # only arrays and objects go on the stack: an event's hundreds of scalars are skipped
        item, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
                     if isinstance(v, containers))
    return False


def create_app() -> FastAPI:
    cfg = settings()
    # the group commit's thread waits on the database a few times per batch and then needs the GIL back
    # from the event loop; at the default 5 ms switch interval each of those waits took up to 5 ms more
    sys.setswitchinterval(0.0005)
    tenants()  # a bad tenants file fails here, at start, naming the key
    app = FastAPI(title="invoicer ingress", version=__version__, openapi_url=None, docs_url=None, redoc_url=None,
                  description="Accepts job events (contract v1) and reports each job's state. Every endpoint "
                              "but the health checks needs a signature, a signed link or a bearer token.")

    def admin(request: Request) -> JSONResponse | None:
        """None when the request carries the admin token; else the 401 to answer. With no token
        configured (INVOICER_API_TOKEN) the admin and status endpoints are closed, not open."""
        if not cfg.api_token:
            return _error(401, "unauthorized", "set INVOICER_API_TOKEN to use this endpoint",
                          {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {cfg.api_token}"):
            return _error(401, "unauthorized", "a bearer token is required", {"WWW-Authenticate": "Bearer"})
        return None

    # one per process: with --workers N, N group commits (docs/benchmarks.md)
    batcher = app.state.batcher = GroupCommit(store_batch, BATCH, then=publish_batch)
    system = metrics.SystemCollector(_queues())
    from prometheus_client import REGISTRY

    try:
        REGISTRY.register(system)
    except ValueError:  # a second app in one process (tests): the first one's collector answers
        pass

    @app.get("/metrics", include_in_schema=False)
    async def get_metrics(request: Request):
        if not metrics.authorized(request.headers.get("authorization")):
            return _error(401, "unauthorized", "a bearer token (INVOICER_METRICS_TOKEN) is required",
                          {"WWW-Authenticate": "Bearer"})
        body, ctype = await run_in_threadpool(metrics.exposition, REGISTRY)
        return Response(body, media_type=ctype)

    # the event body is declared by hand (below): its models go into the document's components, where
    # its references point, or the document would not resolve
    event_schema = Event.model_json_schema(ref_template="#/components/schemas/{model}")
    event_models = event_schema.pop("$defs", {})
    generate = app.openapi

    def document() -> dict:
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(event_models)
        schemas.update(PROBLEM_SCHEMAS)  # every 422 is ours (below), FastAPI's own shape included
        return spec

    app.openapi = document

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):
        """A path or query parameter of the wrong type: the same answer, field and reason, as a bad event."""
        return _error(422, "validation_failed", [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "reason": e["msg"]}
            for e in exc.errors()])

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request):
        return admin(request) or JSONResponse(app.openapi())

    @app.post("/v1/events", status_code=202, responses={
        200: {"description": "a duplicate of an accepted event; nothing new is enqueued"},
        401: {"description": "bad, missing or stale Standard Webhooks signature"},
        408: {"description": "the body did not arrive in time (INVOICER_BODY_TIMEOUT)"},
        413: {"description": "body over 256 KiB"}, 415: {"description": "not application/json"},
        422: {"description": "each bad field and why"}, 503: {"description": "database down: retry later"}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": event_schema}}}})
    async def post_event(request: Request):
        answer = await _post_event(request)
        outcome = {202: "accepted", 200: "duplicate"}.get(answer.status_code, "rejected")
        reason = json.loads(answer.body).get("error", "") if outcome == "rejected" else ""
        metrics.EVENTS.labels(outcome, reason).inc()
        if outcome == "rejected":
            log.info("event.rejected", status=answer.status_code, reason=reason)
        return answer

    async def _post_event(request: Request):
        body = await _read_body(request, cfg.max_body_bytes, cfg.body_timeout)
        if isinstance(body, JSONResponse):
            return body
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            return _error(415, "unsupported_media_type", "send the event as application/json")
        try:
            text_body = body.decode("utf-8")
            raw = json.loads(text_body)
            too_deep = _too_deep(raw)
        except ValueError as exc:  # bad UTF-8, bad JSON, or an integer of more than 4,300 digits
            return _error(422, "invalid_json", [{"field": "body", "reason": f"not valid UTF-8 JSON: {exc}"[:300]}])
        except RecursionError:  # nested far too deep for the parser itself
            too_deep = True
        if too_deep:
            return _error(422, "invalid_json", [{"field": "body",
                                                  "reason": f"nested deeper than {MAX_DEPTH} levels"}])
        if not isinstance(raw, dict):
            return _error(422, "validation_failed", [{"field": "body", "reason": "must be a JSON object"}])
        tenant_slug, source_name = raw.get("tenant"), raw.get("source")
        if not isinstance(tenant_slug, str) or not isinstance(source_name, str):
            missing = [f for f in ("tenant", "source") if not isinstance(raw.get(f), str)]
            return _error(422, "validation_failed", [{"field": f, "reason": "a string is required"} for f in missing])
        tenant = tenants().get(tenant_slug)
        if tenant is None:
            return _error(422, "validation_failed", [{"field": "tenant", "reason": "no such tenant is configured"}])
        source = tenant.source(source_name)
        if source is None:
            return _error(401, "unauthorized", f"source {source_name[:64]!r} is not configured for this tenant")
        if not source.unsigned:
            try:
                Webhook(source.secret()).verify(text_body, dict(request.headers), json_parse=False)
            except ConfigError:
                return _error(503, "misconfigured", "the source's secret is not available", {"Retry-After": "30"})
            except Exception:  # wrong, missing, malformed or stale: one answer, no oracle
                return _error(401, "bad_signature", "missing, invalid or stale webhook signature")
        try:
            event = Event.model_validate(raw)
        except ValidationError as exc:
            return _error(422, "validation_failed", _fields(exc))
        try:
            pk, duplicate = await batcher.submit((tenant_slug, source_name, event, text_body))
        except DBAPIError as exc:
            log.error("event.store_unavailable", tenant=tenant_slug, error=type(exc).__name__)
            return _error(503, "unavailable", "the event store is unavailable; retry later", {"Retry-After": "5"})
        answer = {"event_id": event.id, "job_id": event.job.id,
                  "status_url": f"/v1/jobs/{tenant_slug}/{event.job.id}"}
        if duplicate:
            log.info("event.duplicate", tenant=tenant_slug, job=event.job.id, event_pk=pk, event_id=event.id)
            return JSONResponse({**answer, "duplicate": True}, status_code=200)
        log.info("event.accepted", tenant=tenant_slug, job=event.job.id, event_pk=pk, event_id=event.id,
                 type=event.type, source=source_name)
        return JSONResponse(answer, status_code=202)

    async def platform_webhook(provider: str, tenant: str | None, request: Request):
        """A platform's own webhook (Stripe invoice.paid, Xero invoice events) or a message channel's status
        events (SendGrid Event Webhook, Twilio StatusCallback), verified by that
        platform's scheme against each entry that may have sent it; events go to the tenant whose
        entry accepted them. A platform that sends every account's events to one URL (Xero) is posted to
        /v1/webhooks/<provider>; each entry then keeps the events of its own account."""
        body = await _read_body(request, cfg.max_body_bytes, cfg.body_timeout)
        if isinstance(body, JSONResponse):
            return body
        entries = [(slug, conf) for slug, t in tenants().items() if tenant in (None, slug)
                   for conf in [*t.platforms.values(), *t.channels.configured()] if conf.provider == provider]
        if not entries or not registry.has(provider, "parse_webhook"):
            return _error(404, "not_found", "no such webhook endpoint")
        cls = registry.get(provider)
        outcomes, verified = [], False
        for slug, conf in entries:
            try:
                # in a thread: some platforms verify by calling the vendor (PayPal's verify-webhook-signature)
                events = await run_in_threadpool(cls(conf.model_dump(), None).parse_webhook, dict(request.headers),
                                                 body, str(request.url))
            except AuthFailed:
                continue
            except Rejected as exc:
                return _error(422, "invalid_webhook", str(exc))
            verified = True
            for e in events:
                outcomes.append(await run_in_threadpool(apply_platform_event, slug, provider, e))
            if tenant is not None or not cls.shared_webhook_url:
                break  # one entry's secret verified it: it was for that entry
        if not verified:
            return _error(401, "bad_signature", "the webhook signature does not verify")
        return {"received": len(outcomes), "outcomes": outcomes}

    @app.post("/v1/webhooks/{provider}/{tenant}")
    async def tenant_webhook(provider: str, tenant: str, request: Request):
        return await platform_webhook(provider, tenant, request)

    @app.post("/v1/webhooks/{provider}")
    async def provider_webhook(provider: str, request: Request):
        return await platform_webhook(provider, None, request)

    @app.post("/v1/hooks/{source}/{tenant}", status_code=202, responses={
        200: {"description": "a redelivery of a stored webhook; nothing new is enqueued"},
        401: {"description": "bad, missing or stale vendor signature"}, 404: {"description": "no such source"}})
    async def dispatch_hook(source: str, tenant: str, request: Request):
        """A dispatch system's own webhook (Jobber, ServiceTitan, FieldEdge): invoicer.hooks."""
        body = await _read_body(request, cfg.max_body_bytes, cfg.body_timeout)
        if isinstance(body, JSONResponse):
            return body
        status, answer = await run_in_threadpool(hooks.receive, source, tenant, dict(request.headers), body)
        return JSONResponse(answer, status_code=status)

    @app.get("/v1/jobs/{tenant}/{job_id}")
    async def get_job(tenant: str, job_id: str, request: Request):
        if denied := admin(request):
            return denied
        status = await run_in_threadpool(job_status, tenant, job_id)
        if status is None:
            return _error(404, "not_found", "no such job")
        return status

    def stored_pdf(invoice_id: int) -> tuple[str, bytes] | None:
        """(number, bytes) of an invoice's finished PDF, read from its own tenant's folder."""
        d, i = db.deliveries.c, db.invoices.c
        with db.engine().connect() as conn:
            row = conn.execute(select(d.detail, i.tenant, i.number).join_from(db.deliveries, db.invoices)
                               .where(d.invoice_id == invoice_id, d.kind == "pdf", d.status == "done")).first()
        if row is None:
            return None
        try:
            return row.number, documents.storage(cfg).get(row.tenant, row.detail["path"])
        except (OSError, ValueError):
            return None

    @app.get("/v1/invoices/{invoice_id}.pdf")
    async def get_invoice_pdf(invoice_id: str, expires: str | None = None, signature: str | None = None):
        if not (invoice_id.isascii() and invoice_id.isdigit() and len(invoice_id) < 19
                and documents.check_link(cfg.secret_key, int(invoice_id), expires, signature)):
            # tampered, expired, malformed or unsigned: one answer that tells nothing more
            return _error(403, "forbidden", "the link is invalid or has expired")
        found = await run_in_threadpool(stored_pdf, int(invoice_id))
        if found is None:
            return _error(404, "not_found", "no such document")
        number, data = found
        return Response(data, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{number}.pdf"', "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff"})

    # ------------------------------------------------------------ admin: dead letters and replay

    @app.get("/v1/admin/dlq")
    async def list_dead(request: Request, tenant: str | None = None, limit: int = 100):
        if denied := admin(request):
            return denied
        rows = await run_in_threadpool(dlq.dead_letters, tenant, max(1, min(limit, 1000)))
        return {"dead_letters": jsonable(rows)}

    @app.get("/v1/admin/dlq/{delivery_id}")
    async def show_dead(delivery_id: int, request: Request):
        if denied := admin(request):
            return denied
        row = await run_in_threadpool(dlq.show, delivery_id)
        return jsonable(row) if row else _error(404, "not_found", "no such delivery")

    @app.post("/v1/admin/dlq/{delivery_id}/retry")
    async def retry_dead(delivery_id: int, request: Request):
        if denied := admin(request):
            return denied

        def run():
            kind = dlq.retry(delivery_id, by="api")
            if kind:
                from .tasks import enqueue

                enqueue([(kind, delivery_id)])
            return kind

        kind = await run_in_threadpool(run)
        if kind is None:
            return _error(409, "not_dead", "the delivery is not a dead letter (already retried, done or discarded)")
        return {"retried": delivery_id, "kind": kind}

    @app.post("/v1/admin/dlq/{delivery_id}/discard")
    async def discard_dead(delivery_id: int, request: Request):
        if denied := admin(request):
            return denied
        reason = await _field(request, "reason")
        if not isinstance(reason, str) or not reason.strip():
            return _error(422, "validation_failed", [{"field": "reason", "reason": "say why it is discarded"}])
        if await _operate(dlq.discard, delivery_id, reason.strip(), by="api") is None:
            return _error(409, "not_dead", "the delivery is not a dead letter (already retried, done or discarded)")
        return {"discarded": delivery_id}

    @app.get("/v1/admin/review")
    async def list_review(request: Request, tenant: str | None = None, limit: int = 100):
        if denied := admin(request):
            return denied
        rows = await run_in_threadpool(dlq.dead_letters, tenant, max(1, min(limit, 1000)), "review")
        return {"review": jsonable(rows)}

    @app.post("/v1/admin/review/{delivery_id}/settle")
    async def settle_review(delivery_id: int, request: Request):
        if denied := admin(request):
            return denied
        outcome = await _field(request, "outcome")
        if outcome not in ("sent", "resend"):
            return _error(422, "validation_failed", [{"field": "outcome", "reason": "must be \"sent\" (the recipient "
                                                      "has it) or \"resend\" (send it once more)"}])
        if await _operate(dlq.settle, delivery_id, sent=outcome == "sent", by="api") is None:
            return _error(409, "not_in_review", "the delivery is not waiting for review (already settled?)")
        return {"settled": delivery_id, "outcome": outcome}

    @app.post("/v1/admin/replay")
    async def replay(request: Request):
        if denied := admin(request):
            return denied
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(422, "validation_failed", [{"field": "body", "reason": "a JSON object is required"}])
        problems, window = [], {}
        for name in ("from", "to"):
            try:
                window[name] = parse_time(body.get(name))
            except ValueError as exc:
                problems.append({"field": name, "reason": str(exc)})
        if not problems and window["from"] >= window["to"]:
            problems.append({"field": "to", "reason": "must be after from"})
        if problems:
            return _error(422, "validation_failed", problems)

        def run():
            from .tasks import redrive

            return redrive(*dlq.replay(window["from"], window["to"], body.get("tenant")))

        return {"redriven": await run_in_threadpool(run)}

    # ------------------------------------------------------------ admin: invoices and reminders by hand

    @app.post("/v1/admin/invoices/{invoice_id}/{action}")
    async def invoice_action(invoice_id: int, action: str, request: Request):
        if denied := admin(request):
            return denied
        from . import reminders

        if action not in reminders.ACTIONS:
            return _error(404, "not_found", f"no such action; one of {', '.join(reminders.ACTIONS)}")
        body = await request.body()
        try:
            reason = (json.loads(body) if body else {}).get("reason")
        except (ValueError, AttributeError):
            return _error(422, "validation_failed", [{"field": "body", "reason": "a JSON object is required"}])
        if reason is not None and not isinstance(reason, str):
            return _error(422, "validation_failed", [{"field": "reason", "reason": "a string is required"}])
        try:
            result = await run_in_threadpool(reminders.act, invoice_id, action, "api", reason)
        except reminders.Conflict as exc:
            return _error(409, "conflict", str(exc))
        return result if result else _error(404, "not_found", "no such invoice")

    @app.post("/v1/admin/customers/{tenant}/{customer_id}/{action}")
    async def customer_action(tenant: str, customer_id: str, action: str, request: Request):
        if denied := admin(request):
            return denied
        from . import reminders

        if action not in ("opt-out", "opt-in"):
            return _error(404, "not_found", "no such action; one of opt-out, opt-in")
        if tenant not in tenants():
            return _error(404, "not_found", "no such tenant")
        changed = await run_in_threadpool(reminders.opt_out, tenant, customer_id, "api", action == "opt-in")
        return {"tenant": tenant, "customer": customer_id, "action": action, "changed": changed}

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}

    @app.get("/readyz")
    async def readyz():
        def check():
            out = {}
            try:
                with db.engine().connect() as conn:
                    conn.execute(text("SELECT 1"))
                out["database"] = "ok"
            except Exception as exc:
                out["database"] = type(exc).__name__
            try:
                from .tasks import app as celery_app

                with celery_app.connection_for_write() as conn:
                    conn.ensure_connection(max_retries=1, timeout=2)
                out["broker"] = "ok"
            except Exception as exc:
                out["broker"] = type(exc).__name__
            return out

        out = await run_in_threadpool(check)
        ok = all(v == "ok" for v in out.values())
        return JSONResponse({"ready": ok, **out}, status_code=200 if ok else 503)

    return app
