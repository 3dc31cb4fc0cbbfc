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
    pk = table.primary_key.columns.values()[0]
    row = conn.execute(_ignoring(conn, table, conflict).values(**values).returning(pk)).first()
    return row[0] if row else None


def insert_ignore_many(conn: Connection, table: Table, rows: list[dict], conflict: list[str]) -> dict[tuple, int]:
    """One multi-row INSERT ... ON CONFLICT DO NOTHING: {conflict key: new primary key} of the rows it
    made. Of two rows with one key, the first in `rows` is made and the other ignored."""
    pk = table.primary_key.columns.values()[0]
    if conn.dialect.name == "postgresql":
        # one short statement for any batch size: an array per column, sent in binary (%b; the text
        # form escapes every quote of a JSON body in Python, 6x the CPU of the whole insert)
        names = list(rows[0])
        arrays = ", ".join(f"%b::{table.c[k].type.compile(dialect=conn.dialect)}[]" for k in names)
        cols = ", ".join(names)
        sql = (f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM unnest({arrays}) WITH ORDINALITY "
               f"AS u({cols}, n) ORDER BY n "  # in the order given: the first of two copies is the one made
               f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {pk.name}, {', '.join(conflict)}")
        result = conn.exec_driver_sql(sql, tuple([r[k] for r in rows] for k in names))
    else:  # executemany: SQLAlchemy sends one INSERT of many VALUES
        result = conn.execute(_ignoring(conn, table, conflict).returning(pk, *(table.c[k] for k in conflict)), rows)
    return {tuple(r[1:]): r[0] for r in result}


def _ignoring(conn: Connection, table: Table, conflict: list[str]):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=conflict)


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
