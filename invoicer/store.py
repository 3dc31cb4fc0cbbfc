"""Small database helpers shared by the ingress and the pipeline."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from . import db


def insert_ignore(conn: Connection, table: Table, values: dict, conflict: list[str]) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING; the new primary key, or None when the row existed."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    pk = table.primary_key.columns.values()[0]
    row = conn.execute(stmt.returning(pk)).first()
    return row[0] if row else None


def audit(conn: Connection, tenant: str, action: str, **fields) -> None:
    conn.execute(db.audit_log.insert().values(**audit_row(tenant, action, **fields)))


def audit_row(tenant: str, action: str, *, job_pk=None, event_pk=None, invoice_id=None, delivery_id=None,
              **detail) -> dict:
    """One audit_log row as values (many are inserted in one statement by the pipeline's batches)."""
    return dict(tenant=tenant, action=action, job_pk=job_pk, event_pk=event_pk, invoice_id=invoice_id,
                delivery_id=delivery_id, detail=detail or None, at=db.utcnow())


def idempotency_key(*parts) -> str:
    """A versioned hash of the business identity of one side effect."""
    return hashlib.sha256("|".join(["v1", *map(str, parts)]).encode()).hexdigest()[:48]


SWEEP_BACKOFF_CAP = 10  # grace periods: the longest wait between two re-drives of one row


def sweep(conn: Connection, table: Table, born, where: list, now, grace: float, limit: int,
          columns: tuple = ()) -> list:
    """The rows of `table` (with `swept_at`) matching `where` whose re-drive by the beat sweep is due,
    marked swept now: the first re-drive a grace period after the row stalled (`born`: when it began to
    wait), each later one after as long as the row had waited when it was last swept (the waits double,
    up to SWEEP_BACKOFF_CAP grace periods), rows never swept first. A backlog that takes longer than a
    grace period to drain is then not enqueued once more every period (the crash suite saw ten
    copies per event)."""
    c = table.c
    cutoff = now - timedelta(seconds=grace)
    rows = conn.execute(select(c.id, *columns, born.label("born"), c.swept_at)
                        .where(*where, or_(c.swept_at.is_(None), c.swept_at < cutoff))
                        .order_by(c.swept_at.is_not(None), c.swept_at, c.id).limit(limit * 4)).all()
    due = []
    for r in rows:
        if r.swept_at is not None:
            wait = min(max(grace, (r.swept_at - r.born).total_seconds()), SWEEP_BACKOFF_CAP * grace)
            if (now - r.swept_at).total_seconds() < wait:
                continue
        due.append(r)
        if len(due) == limit:
            break
    if due:
        conn.execute(update(table).where(c.id.in_([r.id for r in due])).values(swept_at=now))
    return due
