"""The pipeline's domain logic: event -> job -> invoice -> deliveries. No Celery here.

Every function takes ids, reloads state, returns early when its work is done, and returns the ids of
the deliveries to enqueue next; the caller enqueues them after the transaction has committed.
"""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import db, documents, logs, metrics, money, notify
from .config import Tenant, settings, tenants
from .errors import ProviderError, RateLimited
from .models import Event
from .providers import registry
from .providers.ratelimit import Throttled
from .store import audit, audit_row, idempotency_key, insert_ignore, sweep

log = logs.get("invoicer.pipeline")
DISCARDED = "discarded"  # a dead letter an operator gave up on (`invoicer dlq discard`)
# review: a message whose outcome only a person can settle
TERMINAL = ("done", "skipped", "review", DISCARDED)
MESSAGES = ("email", "sms", "slack")
BATCH = 50  # invoices per request, where a platform takes many (Xero)


@dataclass
class Ctx:
    """What a provider may use: the attempt number, the tenant's credentials and refs on this platform,
    the shared rate limiter; the engine and var folder only for the built-in `local` provider."""
    engine: object
    var_dir: Path
    attempt: int = 1
    tenant: str = ""
    platform: str = ""
    last_error: str | None = None
    delivery_id: int | None = None

    def reserve(self, name: str, make=None) -> str | None:
        """A value kept on this delivery across its attempts (an id the vendor reserved for it): the one
        stored, else make()'s, stored before it is used; the first copy to store one wins. `make`
        None: only look. Without a delivery (a provider used outside the pipeline) nothing is kept."""
        if self.delivery_id is None:
            return make() if make is not None else None
        d = db.deliveries.c
        with self.engine.connect() as conn:
            held = (conn.execute(select(d.detail).where(d.id == self.delivery_id)).scalar() or {}).get("reserved", {})
        if name in held or make is None:
            return held.get(name)
        value = make()
        with self.engine.begin() as conn:
            detail = conn.execute(select(d.detail).where(d.id == self.delivery_id).with_for_update()).scalar() or {}
            reserved = detail.get("reserved", {})
            if name not in reserved:
                conn.execute(update(db.deliveries).where(d.id == self.delivery_id).values(
                    detail={**detail, "reserved": {**reserved, name: value}}))
            return reserved.get(name, value)

    @property
    def credentials(self):
        from .credentials import Credentials

        return Credentials(self.engine, self.tenant, self.platform)

    @property
    def refs(self):
        from .credentials import Refs

        return Refs(self.engine, self.tenant, self.platform)

    @property
    def limiter(self):
        from .providers.ratelimit import limiter

        return limiter()


@dataclass
class Outcome:
    enqueue: list[tuple[str, int]] = field(default_factory=list)  # (kind, delivery id) to run next
    retry_in: float | None = None  # run this delivery again after so many seconds
    later: list[tuple[str, int, float]] = field(default_factory=list)  # (kind, id, seconds): other retries


# ---------------------------------------------------------------- events -> jobs -> invoices

def process_event(event_pk: int) -> list[tuple[str, int]]:
    """Apply one accepted event to its job; the platform deliveries to start, if it triggers invoicing."""
    for _ in range(5):
        try:
            with db.engine().begin() as conn:
                return _process(conn, event_pk)
        except IntegrityError:  # a concurrent event of the same job made the row first: look again
            time.sleep(random.uniform(0.01, 0.05))
    raise RuntimeError(f"event {event_pk}: could not settle its job after 5 tries")


def process_events(event_pks: list[int], reraise: tuple = ()) -> list[tuple[str, int]]:
    """Apply a batch of accepted events in one transaction, in the order they arrived, each in a savepoint
    of its own: the outcome is that of applying them one by one. An event that cannot be applied is
    marked failed alone (fail_event) and the rest go on; the database failing (any other DBAPIError)
    or an exception of `reraise` (the task's soft time limit) rolls the whole batch back for a retry.
    The batch's tenants' invoice counters, then the jobs that exist, are locked first, all at once and in
    one order, so two workers' batches wait for each other rather than deadlock. The platform deliveries to start."""
    follow, failed = [], []
    e, j = db.events.c, db.jobs.c
    with db.engine().begin() as conn:
        evs = conn.execute(select(db.events).where(e.id.in_(event_pks), e.status == "accepted").order_by(e.id)).all()
        jobs = sorted({(ev.tenant, ev.job_id) for ev in evs})
        if jobs:
            # the tenants' invoice counters first: a batch holds one from its first invoice to its commit, and
            # one that took it after inserting a new job another batch also has would deadlock with that batch
            c = db.counters.c
            conn.execute(select(c.tenant).where(c.tenant.in_({t for t, _ in jobs}), c.name == "invoice")
                         .order_by(c.tenant).with_for_update()).all()
            conn.execute(select(j.id).where(tuple_(j.tenant, j.job_id).in_(jobs))
                         .order_by(j.tenant, j.job_id).with_for_update()).all()
        for ev in evs:
            try:
                follow += _settle(conn, ev)
            except reraise:
                raise
            except DBAPIError:
                raise
            except Exception as exc:
                failed.append((ev.id, exc))
    for event_pk, exc in failed:
        fail_event(event_pk, exc)
    return follow


def _settle(conn: Connection, ev) -> list[tuple[str, int]]:
    """One event of a batch in a savepoint; a concurrent event of the same job making the row first
    (IntegrityError) undoes only this savepoint, and it is applied again."""
    for _ in range(5):
        try:
            with conn.begin_nested():
                return _applied(conn, ev)
        except IntegrityError:
            time.sleep(random.uniform(0.01, 0.05))
    raise RuntimeError(f"event {ev.id}: could not settle its job after 5 tries")


def _process(conn: Connection, event_pk: int) -> list[int]:
    ev = conn.execute(select(db.events).where(db.events.c.id == event_pk)).first()
    if ev is None or ev.status != "accepted":
        return []
    return _applied(conn, ev)


def _applied(conn: Connection, ev) -> list[int]:
    out = _apply(conn, ev)
    log.info("event.applied", tenant=ev.tenant, job=ev.job_id, event_pk=ev.id, event_id=ev.event_id,
             type=ev.type, source=ev.source, deliveries=len(out))
    return out


def _apply(conn: Connection, ev) -> list[int]:
    event_pk = ev.id
    tenant = tenants().get(ev.tenant)
    done = update(db.events).where(db.events.c.id == event_pk).values(status="processed", processed_at=db.utcnow())
    if tenant is None:
        audit(conn, ev.tenant, "event_ignored_unknown_tenant", event_pk=event_pk)
        conn.execute(done)
        return []
    event = Event.model_validate_json(ev.body)
    created = insert_ignore(conn, db.jobs, {"tenant": ev.tenant, "job_id": ev.job_id, "state": "draft",
                                            "event_pk": event_pk}, ["tenant", "job_id"])
    job = conn.execute(select(db.jobs).where(db.jobs.c.tenant == ev.tenant, db.jobs.c.job_id == ev.job_id)
                       .with_for_update()).first()
    current_pk = job.event_pk
    if created:
        audit(conn, ev.tenant, "job_created", job_pk=job.id, event_pk=event_pk, type=event.type)
    elif _is_newer(conn, event, job.event_pk):  # out-of-order delivery: the newest report of the job wins
        conn.execute(update(db.jobs).where(db.jobs.c.id == job.id).values(event_pk=event_pk, updated_at=db.utcnow()))
        current_pk = event_pk
    conn.execute(done)
    invoiced = conn.execute(select(db.invoices.c.id).where(db.invoices.c.job_pk == job.id)).first()

    if event.type == "job.updated":
        if invoiced:
            conn.execute(update(db.jobs).where(db.jobs.c.id == job.id).values(needs_review=True))
            audit(conn, ev.tenant, "updated_after_invoicing", job_pk=job.id, event_pk=event_pk,
                  invoice_id=invoiced.id, note="flagged for review; the invoice was not changed")
        else:
            audit(conn, ev.tenant, "draft_updated", job_pk=job.id, event_pk=event_pk)
        return []
    if invoiced:
        audit(conn, ev.tenant, "trigger_after_invoicing", job_pk=job.id, event_pk=event_pk, type=event.type)
        return []
    if event.type == "job.completed" and tenant.trigger == "signed":
        conn.execute(update(db.jobs).where(db.jobs.c.id == job.id).values(state="awaiting_signature"))
        audit(conn, ev.tenant, "awaiting_signature", job_pk=job.id, event_pk=event_pk)
        return []
    return _create_invoice(conn, tenant, ev.tenant, job.id, current_pk, trigger_pk=event_pk)


def _reason(exc: Exception) -> str:
    """Why, without the data: a validation error names its fields and rules, never the values it was
    given (a customer's name would otherwise reach the logs)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors(include_input=False))
    return str(exc)


def fail_event(event_pk: int, exc: Exception) -> None:
    """An event that cannot be applied (a bug, or data the code cannot handle) stops here, visibly."""
    reason = _reason(exc)
    with db.engine().begin() as conn:
        ev = conn.execute(select(db.events.c.tenant).where(db.events.c.id == event_pk)).first()
        conn.execute(update(db.events).where(db.events.c.id == event_pk, db.events.c.status == "accepted")
                     .values(status="failed", error=f"{type(exc).__name__}: {reason}"[:500]))
        if ev:
            audit(conn, ev.tenant, "event_failed", event_pk=event_pk, error=type(exc).__name__)
    log.error("event.failed", event_pk=event_pk, tenant=ev.tenant if ev else None, error=type(exc).__name__,
              reason=reason[:300])


def _is_newer(conn: Connection, event: Event, current_pk: int) -> bool:
    body = conn.execute(select(db.events.c.body).where(db.events.c.id == current_pk)).scalar_one()
    return event.occurred_at >= Event.model_validate_json(body).occurred_at


def _next_number(conn: Connection, slug: str, tenant: Tenant) -> str:
    c = db.counters.c
    step = update(db.counters).where(c.tenant == slug, c.name == "invoice").values(value=c.value + 1)
    value = conn.execute(step.returning(c.value)).scalar()
    if value is None:
        insert_ignore(conn, db.counters, {"tenant": slug, "name": "invoice", "value": tenant.numbering.start - 1},
                      ["tenant", "name"])
        value = conn.execute(step.returning(c.value)).scalar_one()
    return f"{tenant.numbering.prefix}{value:0{tenant.numbering.width}d}"


def _create_invoice(conn: Connection, tenant: Tenant, slug: str, job_pk: int, data_pk: int,
                    trigger_pk: int) -> list[tuple[str, int]]:
    """Price the job from its newest report (event `data_pk`) and create one delivery per platform."""
    body = conn.execute(select(db.events.c.body).where(db.events.c.id == data_pk)).scalar_one()
    data = Event.model_validate_json(body)
    lines, discounts, totals = money.price(data.job)
    revision = 1
    invoice_id = conn.execute(db.invoices.insert().values(
        job_pk=job_pk, tenant=slug, revision=revision, number=_next_number(conn, slug, tenant),
        currency=data.job.currency, issued_on=db.utcnow(), due_days=data.job.payment_terms_days,
        subtotal=totals.subtotal, discount=totals.discount, tax=totals.tax, total=totals.total,
        event_pk=data_pk, stage="platforms").returning(db.invoices.c.id)).scalar_one()
    rows = [dict(invoice_id=invoice_id, position=i, kind=l.kind, description=l.description, sku=l.sku,
                 quantity=l.quantity, unit_price=l.unit_price, amount=l.amount, taxable=l.taxable, percent=None)
            for i, l in enumerate(lines)]
    rows += [dict(invoice_id=invoice_id, position=len(lines) + i, kind="discount", description=d.description,
                  sku=None, quantity=1, unit_price=d.amount, amount=d.amount, taxable=False, percent=d.percent)
             for i, d in enumerate(discounts)]
    conn.execute(db.invoice_lines.insert(), rows)
    audit(conn, slug, "invoice_mapped", job_pk=job_pk, event_pk=trigger_pk, invoice_id=invoice_id,
          total=str(totals.total), currency=data.job.currency)
    ids = [_add_delivery(conn, invoice_id, slug, data.job.id, revision, "invoice", name, platform.provider)
           for name, platform in tenant.platforms.items() if not registry.has(platform.provider, "attach_pdf")]
    conn.execute(update(db.jobs).where(db.jobs.c.id == job_pk).values(state="invoicing", updated_at=db.utcnow()))
    ids = [i for i in ids if i]
    return ids or advance(conn, invoice_id)  # only platforms that wait for the PDF: render it now


def _add_delivery(conn, invoice_id, tenant, job_id, revision, kind, target, provider, recipient=None,
                  skipped=None) -> int | None:
    key = idempotency_key(tenant, job_id, revision, kind, target, recipient or "")
    values = dict(invoice_id=invoice_id, kind=kind, target=target, provider=provider, recipient=recipient,
                  idempotency_key=key, status="skipped" if skipped else "pending",
                  detail={"reason": skipped} if skipped else None)
    new = insert_ignore(conn, db.deliveries, values, ["idempotency_key"])
    if new and skipped:
        audit(conn, tenant, "delivery_skipped", invoice_id=invoice_id, delivery_id=new, kind=kind, reason=skipped)
    return (kind, new) if new and not skipped else None


# ---------------------------------------------------------------- deliveries

THREADS = 32  # side effects of one batch in flight at once (I/O: a slow vendor must not serialise a batch)
SERIAL = {"pdf"}  # CPU-bound and reportlab keeps process-wide caches: rendered one after another


@dataclass
class Member:
    """One claimed delivery of a batch, and what its side effect came to."""
    row: object
    doc: dict | None
    ms: int = 0  # time inside the side effect
    result: dict | None = None
    exc: Exception | None = None
    retryable: bool = True
    retry_after: float | None = None

    def fail(self, exc: Exception, retryable: bool, retry_after: float | None) -> None:
        self.exc, self.retryable, self.retry_after = exc, retryable, retry_after


def run_delivery(delivery_id: int) -> Outcome:
    """Claim one delivery, do its side effect, record the attempt; what to run next."""
    out = run_deliveries([delivery_id])
    mine = [s for kind, i, s in out.later if i == delivery_id]
    if mine:
        out.retry_in = mine[0]
        out.later = [x for x in out.later if x[1] != delivery_id]
    return out


def _claimable(now):
    d = db.deliveries.c
    return or_(d.status == "pending",
               and_(d.status == "retry", d.next_attempt_at <= now + timedelta(seconds=1)),
               and_(d.status == "running", d.claimed_until < now))


def run_deliveries(delivery_ids) -> Outcome:
    """Claim many deliveries in one statement, run their side effects side by side, record every outcome
    in one transaction and move each touched invoice on once; what to run next, and the retries
    (`later`: a member held by another copy is looked at again when that copy's lease ends)."""
    cfg = settings()
    ids = sorted({int(i) for i in delivery_ids})
    out = Outcome()
    if not ids:
        return out
    now = db.utcnow()
    with db.engine().begin() as conn:
        rows = _claim(conn, ids, now, cfg)
        held = set(ids) - {r.id for r in rows}
        if held:
            d = db.deliveries.c
            for r in conn.execute(select(d.id, d.kind, d.claimed_until).where(d.id.in_(held), d.status == "running")):
                # another copy holds the lease (a redelivery while it runs, or a dead worker's lease not yet
                # expired): look again once the lease ends, rather than dropping this message
                out.later.append((r.kind, r.id, max(0.5, (r.claimed_until - now).total_seconds() + 0.5)))
        if not rows:
            return out  # done, dead, or waiting for their scheduled retry
        docs = load_invoices(conn, {r.invoice_id for r in rows})
        members = [Member(r, docs.get(r.invoice_id)) for r in rows]
        members += [Member(r, doc) for r, doc in _claim_siblings(conn, members, now, cfg)]
    groups = _groups(members)
    parallel = [g for g in groups if len(g) == 1 and g[0].row.kind not in SERIAL]
    serial = [g for g in groups if not (len(g) == 1 and g[0].row.kind not in SERIAL)]
    if len(parallel) > 1:
        with ThreadPoolExecutor(min(THREADS, len(parallel))) as pool:
            running = [pool.submit(_effects, g) for g in parallel]
            for g in serial:
                _effects(g)
            for f in running:
                f.result()
    else:
        for g in parallel + serial:
            _effects(g)
    follow, later = _record(members)
    out.enqueue += follow
    out.later += later
    return out


def _claim(conn: Connection, ids: list[int], now, cfg) -> list:
    """Lease the claimable ones of `ids` (rows locked in id order: two overlapping claims cannot deadlock)."""
    d = db.deliveries.c
    locked = select(d.id).where(d.id.in_(ids), _claimable(now)).order_by(d.id).with_for_update()
    rows = conn.execute(update(db.deliveries).where(d.id.in_(locked), _claimable(now)).values(
        status="running", attempts=d.attempts + 1, updated_at=now,
        claimed_until=now + timedelta(seconds=cfg.task_time_limit + 5)).returning(*db.deliveries.c)).all()
    return sorted(rows, key=lambda r: r.id)


def _batchable(m: Member) -> bool:
    """A first try of an invoice on a platform that takes many per request (create-only)."""
    r = m.row
    return (m.doc is not None and r.kind == "invoice" and r.attempts == 1 and registry.has(r.provider, "create_batch")
            and not tenants()[m.doc["tenant"]].platforms[r.target].model_dump().get("send"))


def _claim_siblings(conn: Connection, members: list[Member], now, cfg) -> list[tuple]:
    """For a platform that takes many invoices per request: up to BATCH pending invoices of the same tenant on
    the same platform in all, the others claimed beside these (SKIP LOCKED: never another's)."""
    d, i = db.deliveries.c, db.invoices.c
    have: dict[tuple, int] = {}
    for m in members:
        if _batchable(m):
            key = (m.doc["tenant"], m.row.provider, m.row.target)
            have[key] = have.get(key, 0) + 1
    taken = [m.row.id for m in members]
    # pending, or only held back by our own limiter (a throttled wait spends no attempt): a batch that
    # leaves them behind breaks up into one-invoice calls at the tail of a burst (bench/burst.py)
    waiting = or_(d.status == "pending", and_(d.status == "retry", d.attempts == 0))
    extra = []
    for (tenant, provider, target), n in have.items():
        if n >= BATCH:
            continue
        ids = conn.execute(select(d.id).join(db.invoices, i.id == d.invoice_id).where(
            d.kind == "invoice", waiting, d.provider == provider, d.target == target,
            i.tenant == tenant, d.id.not_in(taken)).order_by(d.id).limit(BATCH - n)
            .with_for_update(skip_locked=True, of=db.deliveries)).scalars().all()
        if ids:
            extra += conn.execute(update(db.deliveries).where(d.id.in_(ids), waiting).values(
                status="running", attempts=d.attempts + 1, updated_at=now,
                claimed_until=now + timedelta(seconds=cfg.task_time_limit + 5)).returning(*db.deliveries.c)).all()
    if not extra:
        return []
    docs = load_invoices(conn, {r.invoice_id for r in extra})
    return [(r, docs.get(r.invoice_id)) for r in sorted(extra, key=lambda r: r.id)]


def _groups(members: list[Member]) -> list[list[Member]]:
    """Members that go to a platform in one request together (Xero), every other member alone."""
    together: dict[tuple, list[Member]] = {}
    alone = []
    for m in members:
        if _batchable(m):
            together.setdefault((m.doc["tenant"], m.row.provider, m.row.target), []).append(m)
        else:
            alone.append([m])
    return [g for g in together.values()] + alone


def _effects(group: list[Member]) -> None:
    """Do one group's side effects; every outcome (result or typed error) is kept on its member."""
    cfg = settings()
    first = group[0]
    started = time.monotonic()
    if first.doc is None:  # its invoice could not be loaded (logged by load_invoices)
        first.fail(RuntimeError(f"invoice {first.row.invoice_id} could not be loaded"), True, None)
        return
    tenant = tenants()[first.doc["tenant"]]
    ctx = Ctx(engine=db.engine(), var_dir=cfg.var_dir, attempt=first.row.attempts, tenant=first.doc["tenant"],
              platform=first.row.target, last_error=first.row.last_error, delivery_id=first.row.id)
    try:
        if len(group) > 1:
            _create_together(group, tenant, ctx)
        else:
            first.result = _HANDLERS[first.row.kind](first.row, first.doc, tenant, ctx)
    except ProviderError as exc:
        first.fail(exc, exc.retryable, exc.retry_after)
    except Exception as exc:  # a bug or an unexpected library error: retried, capped, then dead-lettered
        log.exception(f"{first.row.kind}.raised", **_fields(first.row, first.doc))
        first.fail(exc, True, None)
    ms = int((time.monotonic() - started) * 1000)
    for m in group:
        m.ms = ms


def _create_together(group: list[Member], tenant: Tenant, ctx: Ctx) -> None:
    """Create many invoices in one request; each is then recorded (or retried) on its own."""
    first = group[0].row
    provider = registry.get(first.provider)(tenant.platforms[first.target].model_dump(), ctx)
    batch = []
    for m in group:  # an invoice the platform could never take leaves the batch, dead-lettered alone
        try:
            provider.check_invoice(m.doc)
            batch.append(m)
        except ProviderError as exc:
            m.fail(exc, exc.retryable, exc.retry_after)
    if not batch:
        return
    try:
        created = provider.create_invoices([m.doc for m in batch], [m.row.idempotency_key for m in batch])
    except Exception as exc:
        # one bad invoice must not sink the others: every member retries on its own (looking itself up
        # first), a refused one now, the others after the backoff the error calls for; only a member that
        # fails again alone is dead-lettered, with its own reason
        after = 0.0 if isinstance(exc, ProviderError) and not exc.retryable else \
            (exc.retry_after if isinstance(exc, ProviderError) else None)
        for m in batch:
            m.fail(exc, True, after)
        return
    for m, c in zip(batch, created, strict=True):
        if isinstance(c, ProviderError):  # the platform refused this one and made the others
            m.fail(c, c.retryable, c.retry_after)
        else:
            m.result = {"external_id": c.external_id, "number": c.number, "url": c.url,
                        "detail": {**c.detail, "batch": len(batch)}}


def _record(members: list[Member]) -> tuple[list[tuple[str, int]], list[tuple[str, int, float]]]:
    """Every member's outcome in one transaction: delivery rows, attempts and audit rows in bulk, each
    touched invoice moved on once (locked in id order). What to run next, and the retries."""
    cfg = settings()
    eng = db.engine()
    d = db.deliveries.c
    now = db.utcnow()
    done, failed, attempt_rows, audit_rows, later = [], [], [], [], []
    review_jobs, failed_jobs = set(), set()
    for m in members:
        r, doc = m.row, m.doc or {"tenant": "", "job_pk": None}
        ms = m.ms
        if m.exc is None:
            status = m.result.get("status", "done")
            done.append({"b_id": r.id, "b_status": status, "b_now": now, "b_external_id": m.result.get("external_id"),
                         "b_number": m.result.get("number"), "b_url": m.result.get("url"),
                         "b_detail": m.result.get("detail")})
            attempt_rows.append(_attempt_row(r, "ok", None, ms))
            audit_rows.append(audit_row(
                doc["tenant"], f"{r.kind}_done" if status == "done" else f"{r.kind}_{status}", job_pk=doc["job_pk"],
                invoice_id=r.invoice_id, delivery_id=r.id, target=r.target, attempt=r.attempts,
                external_id=m.result.get("external_id"),
                **({"sha256": m.result["detail"]["sha256"]} if r.kind == "pdf" else {})))  # proves what was sent
            if status == "review":
                review_jobs.add(doc["job_pk"])
            continue
        exc = m.exc
        throttled = isinstance(exc, Throttled)  # our own limiter: the vendor was not called, no attempt spent
        # a vendor's 429 is not a failure of the request either: wait as told (capped), without spending an
        # attempt, so a daily limit cannot dead-letter a healthy invoice
        limited = isinstance(exc, RateLimited) and not throttled
        retry = throttled or limited or (m.retryable and r.attempts < cfg.max_attempts)
        delay = backoff(r.attempts, m.retry_after) if retry else None
        failed.append({"b_id": r.id, "b_back": 1 if throttled or limited else 0, "b_status": "retry" if retry else "dead",
                       "b_now": now, "b_next": now + timedelta(seconds=delay) if retry else None,
                       "b_error": f"{type(exc).__name__}: {exc}"[:500]})
        if retry:
            later.append((r.kind, r.id, delay))
        if throttled:
            continue
        attempt_rows.append(_attempt_row(r, "retry" if retry else "dead", exc, ms))
        audit_rows.append(audit_row(
            doc["tenant"], "retry_scheduled" if retry else "dead_lettered", job_pk=doc["job_pk"],
            invoice_id=r.invoice_id, delivery_id=r.id, kind=r.kind, target=r.target, attempt=r.attempts,
            error=type(exc).__name__, reason=str(exc)[:200], **({"retry_in_s": round(delay, 2)} if retry else {})))
        if not retry and not r.target.startswith("reminder:") and doc["job_pk"]:  # a dead reminder: the job stays done
            failed_jobs.add(doc["job_pk"])
    docs = {m.row.invoice_id: m.doc for m in members if m.doc is not None}
    try:
        with eng.begin() as conn:
            invs = lock_invoices(conn, sorted({m.row.invoice_id for m in members}))
            if done:
                conn.execute(update(db.deliveries).where(d.id == bindparam("b_id")).values(
                    status=bindparam("b_status"), claimed_until=None, next_attempt_at=None, updated_at=bindparam("b_now"),
                    last_error=None, external_id=bindparam("b_external_id"), external_number=bindparam("b_number"),
                    url=bindparam("b_url"), detail=bindparam("b_detail")), done)
            if failed:
                conn.execute(update(db.deliveries).where(d.id == bindparam("b_id")).values(
                    attempts=d.attempts - bindparam("b_back"), status=bindparam("b_status"), claimed_until=None,
                    updated_at=bindparam("b_now"), next_attempt_at=bindparam("b_next"),
                    last_error=bindparam("b_error")), failed)
            if attempt_rows:
                conn.execute(db.attempts.insert(), attempt_rows)
            if audit_rows:
                conn.execute(db.audit_log.insert(), audit_rows)
            if review_jobs:
                conn.execute(update(db.jobs).where(db.jobs.c.id.in_(review_jobs)).values(needs_review=True))
            if failed_jobs:
                conn.execute(update(db.jobs).where(db.jobs.c.id.in_(failed_jobs)).values(state="failed"))
            follow = _advance_locked(conn, invs, docs)
    except DBAPIError:
        # the effects happened but were not recorded: give the leases back so the retries (which look the
        # effects up first) run now, not when the leases would have run out
        with eng.begin() as conn:
            conn.execute(update(db.deliveries).where(d.id.in_([m.row.id for m in members]), d.status == "running")
                         .values(status="retry", claimed_until=None, next_attempt_at=db.utcnow(),
                                 updated_at=db.utcnow()))
        raise
    _observe(members, done, later)
    return follow, later


def _observe(members: list[Member], done: list[dict], later: list) -> None:
    """Metrics and one log line per member, once its outcome is committed."""
    retrying = {i for _, i, _ in later}
    for m in members:
        r, doc = m.row, m.doc or {"tenant": "", "job": {"id": None}, "number": None}
        if m.exc is None:
            if r.kind == "invoice":
                metrics.INVOICES.labels(r.provider).inc()
                if doc.get("received_at"):
                    metrics.TO_INVOICE.labels(r.provider).observe((db.utcnow() - doc["received_at"]).total_seconds())
            log.info(f"{r.kind}.done", **_fields(r, doc), external_id=m.result.get("external_id"), ms=m.ms)
            continue
        retry = r.id in retrying
        if not isinstance(m.exc, Throttled):
            metrics.PROVIDER_ERRORS.labels(r.provider, type(m.exc).__name__).inc()
            (metrics.RETRIES if retry else metrics.DEAD).labels(r.kind, r.provider).inc()
        delay = next((s for _, i, s in later if i == r.id), None)
        log.warning(f"{r.kind}.{'retry' if retry else 'dead'}", **_fields(r, doc), error=type(m.exc).__name__,
                    reason=_scrub(str(m.exc)[:300], doc), **({"retry_in_s": round(delay, 2)} if retry else {}))


def _attempt_row(row, outcome: str, exc: Exception | None, ms: int) -> dict:
    return dict(delivery_id=row.id, number=row.attempts, outcome=outcome,
                error_type=type(exc).__name__ if exc else None, error=str(exc)[:500] if exc else None,
                duration_ms=ms, at=db.utcnow())


def _scrub(text: str, doc: dict) -> str:
    """A vendor's error may quote the customer (`The contact name Nguyễn Thị Hương is already
    assigned`): take the customer's own details out before the text reaches a log."""
    customer = doc.get("customer") or {}
    places = [customer.get("billing_address") or {}, doc.get("service_address") or {}]
    known = [customer.get(k) for k in ("name", "email", "phone", "company")] + \
        [p.get(k) for p in places for k in ("line1", "line2")]
    for value in sorted({v for v in known if isinstance(v, str) and len(v) >= 3}, key=len, reverse=True):
        text = text.replace(value, "[customer]")
    return text


def _fields(row, doc: dict) -> dict:
    """What every line about a delivery carries: ids only, never the customer's data."""
    return {"tenant": doc["tenant"], "job": doc["job"]["id"], "event_pk": doc.get("event_pk"), "invoice": doc["number"],
            "delivery": row.id, "kind": row.kind, "platform": row.target, "provider": row.provider,
            "attempt": row.attempts}


def backoff(attempt: int, retry_after: float | None = None) -> float:
    cfg = settings()
    if retry_after is not None:
        return min(cfg.retry_cap, max(retry_after, 0.0))
    return min(cfg.retry_cap, cfg.retry_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def lock_invoices(conn: Connection, invoice_ids: list[int]) -> list:
    """The invoices, locked in id order (two batches touching the same invoices cannot deadlock). FOR NO KEY
    UPDATE: serialises advancing one invoice without conflicting with the KEY SHARE locks that inserting its
    audit rows takes (FOR UPDATE would deadlock two deliveries finishing together)."""
    i = db.invoices.c
    return conn.execute(select(db.invoices).where(i.id.in_(invoice_ids)).order_by(i.id)
                        .with_for_update(key_share=True)).all()


def advance(conn: Connection, invoice_id: int) -> list[tuple[str, int]]:
    """Move an invoice to its next stage once the current one is complete (idempotent, race-safe)."""
    return _advance_locked(conn, lock_invoices(conn, [invoice_id]), {})


def _advance_locked(conn: Connection, invs: list, docs: dict) -> list[tuple[str, int]]:
    """advance() for invoices already locked (in id order), their deliveries' states read in one query;
    `docs` the invoice documents already loaded (not loaded again)."""
    if not invs:
        return []
    d = db.deliveries.c
    states: dict[int, list] = {inv.id: [] for inv in invs}
    for invoice_id, kind, status in conn.execute(select(d.invoice_id, d.kind, d.status)
                                                 .where(d.invoice_id.in_(list(states)))):
        states[invoice_id].append((kind, status))
    follow = []
    for inv in invs:
        follow += _advance(conn, inv, states[inv.id], docs.get(inv.id))
    return follow


def _advance(conn: Connection, inv, rows: list, doc: dict | None) -> list[tuple[str, int]]:
    invoice_id = inv.id

    def complete(kinds):
        return all(s in TERMINAL for k, s in rows if k in kinds)

    def move(to):
        conn.execute(update(db.invoices).where(db.invoices.c.id == invoice_id).values(stage=to))

    def the_doc():
        nonlocal doc
        doc = doc or load_invoice(conn, invoice_id)
        return doc

    current = inv.stage
    if current == "platforms" and complete({"invoice"}):
        move("render")
        return [i for i in [_add_delivery(conn, invoice_id, inv.tenant, the_doc()["job"]["id"], inv.revision,
                                          "pdf", "pdf", "local")] if i]
    if current == "render" and complete({"pdf"}):
        # a filing whose link stands in for ours in the messages (Drive `link_in_messages`) runs first
        first = [(name, p.provider) for name, p in tenants()[inv.tenant].platforms.items()
                 if registry.has(p.provider, "attach_pdf") and p.model_dump().get("link_in_messages")]
        if first:
            move("filing")
            ids = [i for i in (_add_delivery(conn, invoice_id, inv.tenant, the_doc()["job"]["id"], inv.revision,
                                             "invoice", *f) for f in first) if i]
            if ids:
                return ids
        current = "filing"
    if current == "filing" and complete({"invoice"}):
        move("notify")
        tenant = tenants()[inv.tenant]
        # platforms that take the finished PDF (CRMs: capability attach_pdf) get the invoice now, beside the messages
        after = [("invoice", name, p.provider) for name, p in tenant.platforms.items()
                 if registry.has(p.provider, "attach_pdf")]
        ids = [i for i in (_add_delivery(conn, invoice_id, inv.tenant, the_doc()["job"]["id"], inv.revision, *m)
                           for m in after + notify.plan(the_doc(), tenant)) if i]
        if ids:
            return ids
        stage = "notify"  # every channel was skipped: nothing to wait for
    else:
        stage = current
    if stage == "notify" and complete(set(MESSAGES) | {"invoice"}):  # CRMs (attach_pdf) run beside messages
        move("done")
        now = db.utcnow()
        conn.execute(update(db.jobs).where(db.jobs.c.id == inv.job_pk).values(
            state="done", finished_at=now, updated_at=now))
        audit(conn, inv.tenant, "job_done", job_pk=inv.job_pk, invoice_id=invoice_id)
        received = doc.get("received_at") if doc else \
            conn.execute(select(db.events.c.received_at).where(db.events.c.id == inv.event_pk)).scalar()
        if received:
            metrics.TO_NOTIFIED.observe((now - received).total_seconds())
        log.info("job.done", tenant=inv.tenant, job_pk=inv.job_pk, invoice=inv.number, event_pk=inv.event_pk)
    return []


# ---------------------------------------------------------------- the invoice as one document

def load_invoice(conn: Connection, invoice_id: int) -> dict:
    """The canonical invoice as a plain dict: what providers, the PDF and messages are made from."""
    return load_invoices(conn, [invoice_id], strict=True)[invoice_id]


def load_invoices(conn: Connection, invoice_ids, strict: bool = False) -> dict[int, dict]:
    """load_invoice for many invoices in three queries, each event parsed once. Not strict: an invoice that
    cannot be made into its document is left out (its deliveries fail alone), not raised."""
    i, e, d = db.invoices.c, db.events.c, db.deliveries.c
    ids = list(invoice_ids)
    invs = conn.execute(select(db.invoices).where(i.id.in_(ids))).all()
    events = {r.id: r for r in conn.execute(select(e.id, e.body, e.received_at)
                                            .where(e.id.in_({inv.event_pk for inv in invs})))}
    links: dict[int, list] = {}
    for invoice_id, target, provider, url in conn.execute(select(d.invoice_id, d.target, d.provider, d.url).where(
            d.invoice_id.in_(ids), d.kind == "invoice", d.status == "done", d.url.is_not(None)).order_by(d.id)):
        links.setdefault(invoice_id, []).append((target, provider, url))
    parsed: dict[int, Event] = {}
    out = {}
    for inv in invs:
        try:
            ev = events[inv.event_pk]
            if inv.event_pk not in parsed:
                parsed[inv.event_pk] = Event.model_validate_json(ev.body)
            tenant = tenants()[inv.tenant]
            doc = document(parsed[inv.event_pk], inv.tenant, tenant, inv.number, inv.issued_on, inv.due_days)
            if doc["total"] != inv.total:  # the stored invoice is the record; the money rules must agree with it
                raise RuntimeError(f"invoice {inv.number}: recomputed total {doc['total']} != stored {inv.total}")
        except Exception as exc:
            if strict:
                raise
            log.error("invoice.load_failed", invoice_id=inv.id, error=type(exc).__name__)
            continue
        out[inv.id] = {**doc, "id": inv.id, "job_pk": inv.job_pk, "revision": inv.revision,
                       "pay_url": _pay_url(links.get(inv.id, []), tenant.pay_link), "event_pk": inv.event_pk,
                       "received_at": ev.received_at}
    if strict and len(out) < len(set(ids)):
        raise LookupError(f"no invoice {sorted(set(ids) - out.keys())}")
    return out


def document(event: Event, slug: str, tenant: Tenant, number: str, issued, due_days: int) -> dict:
    """The canonical invoice for an event's job (pure: the same inputs give the same dict)."""
    job, customer = event.job, event.customer
    lines, discounts, totals = money.price(job)
    q = money.quantum(job.currency)
    return {
        "tenant": slug, "number": number, "currency": job.currency, "locale": tenant.locale,
        "issued_on": issued.date(), "due_on": (issued + timedelta(days=due_days)).date(),
        "created_at": issued, "payment_terms_days": due_days,
        "seller": {"name": tenant.name, "address": tenant.address, "tax_id": tenant.tax_id},
        "branding": tenant.branding.model_dump(),
        "customer": customer.model_dump(mode="python"),
        "service_address": job.service_address.model_dump(),
        "job": {"id": job.id, "number": job.number, "summary": job.summary, "technician": job.technician.name,
                "po_number": job.po_number, "completed_at": job.completed_at},
        "lines": [{"kind": l.kind, "description": l.description, "sku": l.sku, "quantity": l.quantity,
                   "unit_price": l.unit_price, "amount": l.amount, "taxable": l.taxable} for l in lines],
        "discounts": [{"description": d.description, "amount": d.amount, "percent": d.percent} for d in discounts],
        "subtotal": totals.subtotal.quantize(q), "discount_total": totals.discount.quantize(q),
        "tax": {"rate": job.tax.rate, "jurisdiction": job.tax.jurisdiction, "amount": totals.tax.quantize(q)},
        "total": totals.total.quantize(q),
        "signature": job.signature.model_dump() if job.signature else None,
        "pay_url": None,
    }


def _pay_url(links, platform: str | None) -> str | None:
    """The payment link a payment platform gave for this invoice, for the PDF and the messages: the
    tenant's `pay_link` platform's when it names one, else the first payment platform's. `links`: the
    (target, provider, url) of the invoice's done platforms, in id order."""
    for target, provider, url in links:
        if registry.has(provider, "payment_link") and platform in (None, target):
            return url
    return None


# ---------------------------------------------------------------- what each kind of delivery does

def _invoice(row, doc, tenant: Tenant, ctx: Ctx) -> dict:
    options = tenant.platforms[row.target].model_dump()
    provider = registry.get(row.provider)(options, ctx)
    if "attach_pdf" in provider.capabilities:
        doc = {**doc, "pdf": _pdf_for(ctx, row.invoice_id)}
    found = None
    if ctx.attempt > 1 and "find_invoice" in provider.capabilities:  # an earlier try may have landed
        found = provider.find_invoice(doc, row.idempotency_key)
    created = found or provider.create_invoice(doc, row.idempotency_key)
    if options.get("send") and "send_invoice" in provider.capabilities:
        provider.send_invoice(created, doc, row.idempotency_key)  # idempotent on the vendor's side
    return {"external_id": created.external_id, "number": created.number, "url": created.url,
            "detail": {**created.detail, "found_existing": bool(found)}}


def _pdf(row, doc, tenant: Tenant, ctx: Ctx) -> dict:
    from . import pdf

    key = documents.key(doc["tenant"], doc["issued_on"], doc["number"])
    data = pdf.render(doc)
    sha = documents.storage().put(doc["tenant"], key, data)
    return {"external_id": key, "detail": {"path": key, "sha256": sha, "bytes": len(data)}}


def _pdf_row(ctx: Ctx, invoice_id: int):
    with ctx.engine.connect() as conn:
        return conn.execute(select(db.deliveries).where(db.deliveries.c.invoice_id == invoice_id,
                                                        db.deliveries.c.kind == "pdf")).first()


def _pdf_for(ctx: Ctx, invoice_id: int) -> dict | None:
    """The finished PDF for a platform that attaches it: {filename, data, link, sha256} (link None
    without a secret key to sign it)."""
    row = _pdf_row(ctx, invoice_id)
    if row is None or row.status != "done" or not row.detail:
        return None
    data = documents.storage().get(ctx.tenant, row.detail["path"])  # the tenant's own folder only
    return {"filename": row.detail["path"].rsplit("/", 1)[-1], "data": data, "link": notify.link(row),
            "sha256": row.detail.get("sha256")}


def _message(row, doc, tenant: Tenant, ctx: Ctx) -> dict:
    """Send one message, once where the channel can tell: after an attempt whose outcome is unknown,
    look the message up at the vendor (find_message); a channel that cannot look sends again only if
    it is at-least-once by design (resend_after_unknown), else the delivery waits for a person (review)."""
    d, a = db.deliveries.c, db.attempts.c
    template = None
    if row.target.startswith("reminder:"):  # paid, paused, voided, opted out or quiet hours: look again now
        from . import reminders

        stop, template, doc = reminders.gate(row, doc, tenant)
        if stop:
            return stop
    with ctx.engine.connect() as conn:
        pdf_row = conn.execute(select(db.deliveries).where(d.invoice_id == row.invoice_id, d.kind == "pdf")).first()
        filed = conn.execute(select(d.target, d.url).where(d.invoice_id == row.invoice_id, d.kind == "invoice",
                                                           d.status == "done", d.url.is_not(None))).all()
        unknown = 0
        if row.attempts > 1:
            since = (row.detail or {}).get("resend_after_attempt", 0)  # a person settled the earlier ones
            recorded, lost = conn.execute(select(func.count(), func.count().filter(a.error_type == "OutcomeUnknown"))
                                          .where(a.delivery_id == row.id, a.id > since)).one()
            # an answer lost on the way, or an attempt that never recorded its end (a worker killed
            # mid-send): either may have sent the message
            unknown = lost + max(0, row.attempts - 1 - recorded)
    pdf_url = next((url for target, url in filed if target in tenant.platforms
                    and tenant.platforms[target].model_dump().get("link_in_messages")), None)  # Drive's link
    message = notify.compose(row, doc, tenant, pdf_row, ctx.var_dir, template, pdf_url=pdf_url)
    provider = registry.get(row.provider)(notify.channel_options(tenant, row.kind), ctx)
    if unknown:
        if (row.detail or {}).get("events"):  # the vendor's own status event already named it: it went
            return {"external_id": row.external_id, "detail": {**row.detail, "found_existing": True}}
        if "find_message" in provider.capabilities:
            found = provider.find_message(message, row.kind)
            if found is not None:
                return {"external_id": found.external_id,
                        "detail": {"status": "sent", **found.detail, "found_existing": True}}
        elif not provider.resend_after_unknown:
            return {"status": "review", "detail": {
                "status": "unknown", "reason": f"an earlier attempt may have sent it and {row.provider} cannot be "
                                              "asked; not sent again: check the recipient's copy"}}
    send = {"email": provider.send_email, "sms": provider.send_sms, "slack": provider.send_chat}[row.kind]
    sent = send(message)
    if template:
        metrics.REMINDERS.labels(row.target.removeprefix("reminder:")).inc()
    return {"external_id": sent.external_id, "detail": {"status": "sent", **sent.detail}}


_HANDLERS = {"invoice": _invoice, "pdf": _pdf, "email": _message, "sms": _message, "slack": _message}


# ---------------------------------------------------------------- sweeps and dead letters

def stalled(limit: int = 500, now=None) -> tuple[list[int], list[tuple[str, int]], list[int]]:
    """What the beat sweep re-drives: accepted events never processed, deliveries idle past their time,
    and invoices whose stage is complete but did not move on.

    A row is re-enqueued a grace period after it stalled, then again only after a doubling wait
    (`swept_at`, store.sweep), so a long queue is not multiplied by every sweep while it drains; a redundant
    copy is harmless, since every task claims first."""
    cfg = settings()
    now = now or db.utcnow()
    grace = now - timedelta(seconds=cfg.sweep_grace)
    e, d, i = db.events.c, db.deliveries.c, db.invoices.c
    with db.engine().begin() as conn:
        events = [r.id for r in sweep(conn, db.events, e.received_at, [e.status == "accepted", e.received_at < grace],
                                      now, cfg.sweep_grace, limit)]
        deliveries = [(r.kind, r.id) for r in sweep(conn, db.deliveries, d.created_at, [or_(
            and_(d.status == "pending", d.updated_at < grace),
            and_(d.status == "retry", d.next_attempt_at < now - timedelta(seconds=5)),
            and_(d.status == "running", d.claimed_until < now),
        )], now, cfg.sweep_grace, limit, columns=(d.kind,))]
        open_invoices = select(d.invoice_id).where(d.status.not_in(TERMINAL))
        invoices = conn.execute(select(i.id).where(i.stage != "done", i.created_at < grace,
                                                   i.id.not_in(open_invoices)).limit(limit)).scalars().all()
    return events, deliveries, list(invoices)


def delivery_kind(delivery_id: int) -> str:
    with db.engine().connect() as conn:
        return conn.execute(select(db.deliveries.c.kind).where(db.deliveries.c.id == delivery_id)).scalar_one()


def advance_invoice(invoice_id: int) -> list[tuple[str, int]]:
    with db.engine().begin() as conn:
        return advance(conn, invoice_id)


def counts() -> dict:
    with db.engine().connect() as conn:
        by = conn.execute(select(db.deliveries.c.kind, db.deliveries.c.status, func.count())
                          .group_by(db.deliveries.c.kind, db.deliveries.c.status)).all()
        ev = dict(conn.execute(select(db.events.c.status, func.count()).group_by(db.events.c.status)).all())
        jobs = dict(conn.execute(select(db.jobs.c.state, func.count()).group_by(db.jobs.c.state)).all())
    return {"events": ev, "jobs": jobs, "deliveries": {f"{k}.{s}": n for k, s, n in by}}


def apply_webhook(tenant: str, provider: str, event) -> str:
    """Record what a platform's verified webhook says about one of our invoices; idempotent."""
    if event.type.startswith("message."):
        return apply_message_event(tenant, provider, event)
    d, i = db.deliveries.c, db.invoices.c
    with db.engine().begin() as conn:
        row = conn.execute(select(db.invoices).join(db.deliveries, d.invoice_id == i.id).where(
            i.tenant == tenant, d.provider == provider, d.kind == "invoice",
            d.external_id == event.external_id).with_for_update()).first()
        if row is None:
            return "unknown_invoice"
        if event.type not in ("invoice.paid", "invoice.payment_partial"):
            if event.type == "invoice.voided" and row.voided_at is None:  # voided there: no more reminders
                conn.execute(update(db.invoices).where(i.id == row.id).values(voided_at=db.utcnow()))
            audit(conn, tenant, f"webhook_{event.type}", job_pk=row.job_pk, invoice_id=row.id, provider=provider,
                  external_id=event.external_id)
            return "recorded"
        paid = event.amount_paid if event.amount_paid is not None else row.total
        if row.amount_paid == paid:
            return "unchanged"
        full = paid >= row.total
        conn.execute(update(db.invoices).where(i.id == row.id).values(
            amount_paid=paid, paid_at=db.utcnow() if full else None))
        audit(conn, tenant, "invoice_paid" if full else "payment_partial", job_pk=row.job_pk, invoice_id=row.id,
              provider=provider, external_id=event.external_id, amount_paid=str(paid))
    return "paid" if full else "partial"


# a message's status only moves forward; bounced and failed are final
MESSAGE_RANK = {"unknown": 0, "queued": 1, "sent": 2, "delivered": 3, "bounced": 4, "failed": 4}


def apply_message_event(tenant: str, provider: str, event) -> str:
    """A channel's verified status event (SendGrid Event Webhook, Twilio StatusCallback) for one of our
    messages, found by our delivery key (`event.reference`) or the vendor's message id; idempotent.
    A delivery left for review after an unknown outcome is settled by the vendor's word that it went."""
    d, i = db.deliveries.c, db.invoices.c
    status = event.type.removeprefix("message.")
    where = d.idempotency_key == event.reference if event.reference else d.external_id == event.external_id
    with db.engine().begin() as conn:
        row = conn.execute(select(db.deliveries, i.job_pk).join(db.invoices, i.id == d.invoice_id).where(
            where, i.tenant == tenant, d.provider == provider, d.kind.in_(MESSAGES)).with_for_update(of=db.deliveries)
        ).first()
        if row is None:
            return "unknown_message"
        if status not in MESSAGE_RANK:
            return "ignored"
        detail = dict(row.detail or {})
        current = detail.get("status", "queued")
        seen = [e for e in detail.get("events", []) if isinstance(e, dict)]
        values = {}
        if row.status != "done" and status != "queued":
            values.update(status="done", claimed_until=None, next_attempt_at=None)  # the vendor says it went
        if MESSAGE_RANK[status] <= MESSAGE_RANK.get(current, 0) and not values:
            return "unchanged"
        if MESSAGE_RANK[status] > MESSAGE_RANK.get(current, 0):
            detail["status"] = status
            if event.raw.get("reason"):
                detail["status_reason"] = str(event.raw["reason"])[:200]
        detail["events"] = (seen + [{"status": status, "at": db.utcnow().isoformat()}])[-20:]
        if event.external_id and not row.external_id:
            values["external_id"] = event.external_id
        conn.execute(update(db.deliveries).where(d.id == row.id).values(detail=detail, updated_at=db.utcnow(),
                                                                         **values))
        audit(conn, tenant, f"message_{status}", job_pk=row.job_pk, invoice_id=row.invoice_id, delivery_id=row.id,
              provider=provider, kind=row.kind, external_id=event.external_id)
        if values.get("status") == "done":
            advance(conn, row.invoice_id)
    return status
