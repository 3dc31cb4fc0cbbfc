"""Dead letters and replay: what operators do by hand, from the CLI or the admin API, each recorded
in the audit trail. Every action is idempotent: retrying a delivery that is no longer dead, or
replaying an event that already finished, changes nothing."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select, update

from . import db
from .pipeline import DISCARDED, TERMINAL, advance, audit


def _query():
    d, i, j = db.deliveries.c, db.invoices.c, db.jobs.c
    return (select(d.id, d.kind, d.target, d.provider, d.status, d.attempts, d.last_error, d.updated_at, i.tenant,
                   i.number, j.job_id)
            .join(db.invoices, i.id == d.invoice_id).join(db.jobs, j.id == i.job_pk))


def dead_letters(tenant: str | None = None, limit: int = 1000, status: str = "dead") -> list[dict]:
    """Dead letters, or (status="review") messages whose outcome only a person can settle."""
    q = _query().where(db.deliveries.c.status == status).order_by(db.deliveries.c.id).limit(limit)
    if tenant:
        q = q.where(db.invoices.c.tenant == tenant)
    with db.engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def show(delivery_id: int) -> dict | None:
    """One delivery with every attempt it made (error type, message, duration)."""
    a = db.attempts.c
    with db.engine().connect() as conn:
        row = conn.execute(_query().where(db.deliveries.c.id == delivery_id)).first()
        if row is None:
            return None
        attempts = conn.execute(select(a.number, a.outcome, a.error_type, a.error, a.duration_ms, a.at)
                                .where(a.delivery_id == delivery_id).order_by(a.id)).all()
    return {**row._mapping, "attempts_made": [dict(r._mapping) for r in attempts]}


def _dead(conn, delivery_id: int, status: str = "dead"):
    return conn.execute(select(db.deliveries).where(db.deliveries.c.id == delivery_id,
                                                    db.deliveries.c.status == status).with_for_update()).first()


def retry(delivery_id: int, by: str = "cli") -> str | None:
    """Give a dead-lettered delivery a fresh budget of attempts; its kind, or None when it was not dead
    (already retried, done or discarded: nothing to do)."""
    with db.engine().begin() as conn:
        row = _dead(conn, delivery_id)
        if row is None:
            return None
        conn.execute(update(db.deliveries).where(db.deliveries.c.id == delivery_id).values(
            status="pending", attempts=0, updated_at=db.utcnow()))
        inv = conn.execute(select(db.invoices).where(db.invoices.c.id == row.invoice_id)).first()
        if not row.target.startswith("reminder:"):  # a reminder runs after its job is done
            conn.execute(update(db.jobs).where(db.jobs.c.id == inv.job_pk).values(state="invoicing"))
        audit(conn, inv.tenant, "dlq_retry", job_pk=inv.job_pk, invoice_id=inv.id, delivery_id=delivery_id,
              previous_error=row.last_error, by=by)
    return row.kind


def discard(delivery_id: int, reason: str, by: str = "cli") -> list[tuple[str, int]] | None:
    """Give up on a dead-lettered delivery for good (for example an email to an address that does not
    exist): the invoice moves on without it. What to run next, or None when it was not dead."""
    with db.engine().begin() as conn:
        row = _dead(conn, delivery_id)
        if row is None:
            return None
        conn.execute(update(db.deliveries).where(db.deliveries.c.id == delivery_id).values(
            status=DISCARDED, updated_at=db.utcnow(), next_attempt_at=None))
        inv = conn.execute(select(db.invoices).where(db.invoices.c.id == row.invoice_id)).first()
        audit(conn, inv.tenant, "dlq_discarded", job_pk=inv.job_pk, invoice_id=inv.id, delivery_id=delivery_id,
              kind=row.kind, target=row.target, previous_error=row.last_error, reason=reason[:200], by=by)
        others_dead = conn.execute(select(db.deliveries.c.id).where(
            db.deliveries.c.invoice_id == inv.id, db.deliveries.c.status == "dead")).first()
        if not others_dead:
            conn.execute(update(db.jobs).where(db.jobs.c.id == inv.job_pk, db.jobs.c.state == "failed")
                         .values(state="invoicing"))
        return advance(conn, inv.id)


def settle(delivery_id: int, sent: bool, by: str = "cli") -> list[tuple[str, int]] | None:
    """Settle a message left for review (an earlier attempt may have sent it and the channel cannot be
    asked): `sent` when the recipient's copy shows it went (the invoice moves on), else send it again,
    once: only attempts after this decision count as unknown outcomes. What to run next, or None when
    the delivery was not in review."""
    d, a = db.deliveries.c, db.attempts.c
    with db.engine().begin() as conn:
        row = _dead(conn, delivery_id, "review")
        if row is None:
            return None
        inv = conn.execute(select(db.invoices).where(db.invoices.c.id == row.invoice_id)).first()
        detail = dict(row.detail or {})
        if sent:
            values = {"status": "done", "detail": {**detail, "status": "sent", "settled_by": by}}
        else:
            last = conn.execute(select(func.max(a.id)).where(a.delivery_id == delivery_id)).scalar() or 0
            values = {"status": "pending", "attempts": 0, "detail": {**detail, "resend_after_attempt": last}}
        conn.execute(update(db.deliveries).where(d.id == delivery_id).values(updated_at=db.utcnow(),
                                                                             next_attempt_at=None, **values))
        audit(conn, inv.tenant, "review_settled", job_pk=inv.job_pk, invoice_id=inv.id, delivery_id=delivery_id,
              kind=row.kind, outcome="sent" if sent else "resend", by=by)
        return advance(conn, inv.id) if sent else [(row.kind, delivery_id)]


def replay(since: datetime, until: datetime, tenant: str | None = None
           ) -> tuple[list[int], list[tuple[str, int]], list[int]]:
    """What to re-drive among the events accepted between `since` and `until` that never finished:
    events not yet applied (or that failed on a bug since fixed), their jobs' deliveries that are
    waiting (pending, due retries, expired leases) and invoices whose stage is complete but did not
    move on. Dead letters stay dead (retry them by id). Every task claims before it works, so a
    replay of work already in flight does nothing twice."""
    e, d, i, j = db.events.c, db.deliveries.c, db.invoices.c, db.jobs.c
    now = db.utcnow()
    window = and_(e.received_at >= since, e.received_at < until, *([e.tenant == tenant] if tenant else []))
    with db.engine().begin() as conn:
        failed = conn.execute(select(e.id, e.tenant, j.id.label("job_pk")).outerjoin(
            db.jobs, and_(j.tenant == e.tenant, j.job_id == e.job_id)).where(window, e.status == "failed")).all()
        if failed:
            conn.execute(update(db.events).where(e.id.in_([r.id for r in failed])).values(status="accepted",
                                                                                          error=None))
            for r in failed:
                audit(conn, r.tenant, "event_replayed", event_pk=r.id, job_pk=r.job_pk)
        events = conn.execute(select(e.id).where(window, e.status == "accepted").order_by(e.id)).scalars().all()
        jobs = select(j.id).join(db.events, and_(e.tenant == j.tenant, e.job_id == j.job_id)).where(
            window, j.state != "done")
        deliveries = conn.execute(select(d.kind, d.id).join(db.invoices, i.id == d.invoice_id).where(
            i.job_pk.in_(jobs), or_(d.status == "pending", and_(d.status == "retry", d.next_attempt_at <= now),
                                    and_(d.status == "running", d.claimed_until < now)))
            .order_by(d.id)).all()
        open_invoices = select(d.invoice_id).where(d.status.not_in(TERMINAL))
        invoices = conn.execute(select(i.id).where(i.job_pk.in_(jobs), i.stage != "done",
                                                   i.id.not_in(open_invoices))).scalars().all()
    return list(events), [tuple(r) for r in deliveries], list(invoices)
