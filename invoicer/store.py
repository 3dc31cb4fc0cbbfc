"""Small database helpers shared by the ingress and the pipeline."""
from __future__ import annotations

import hashlib

from sqlalchemy import Table
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


def audit(conn: Connection, tenant: str, action: str, *, job_pk=None, event_pk=None, invoice_id=None,
          delivery_id=None, **detail) -> None:
    conn.execute(db.audit_log.insert().values(
        tenant=tenant, action=action, job_pk=job_pk, event_pk=event_pk, invoice_id=invoice_id,
        delivery_id=delivery_id, detail=detail or None))


def idempotency_key(*parts) -> str:
    """A versioned hash of the business identity of one side effect."""
    return hashlib.sha256("|".join(["v1", *map(str, parts)]).encode()).hexdigest()[:48]
