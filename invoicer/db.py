"""Tables and engine. SQLite is the embedded default, PostgreSQL by INVOICER_DATABASE_URL.

The database, not the broker, is the record: an event is accepted once its row is committed, and
every side effect (an invoice on a platform, the PDF, a message) is a `deliveries` row created under
a unique idempotency key before the external call, with one `attempts` row per try.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData,
                        Numeric, String, Table, Text, TypeDecorator, UniqueConstraint, create_engine, event)
from sqlalchemy.engine import Engine

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s"})

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only
Money = Numeric(20, 6, asdecimal=True)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no offset: store UTC, read it back as UTC)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and dialect.name == "sqlite":
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def _ts(name, **kw):
    return Column(name, UTCDateTime(), **kw)


events = Table(
    "events", metadata,
    Column("id", Id, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("source", String(64), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("type", String(32), nullable=False),
    Column("job_id", String(128), nullable=False),
    Column("body", Text, nullable=False),  # the raw JSON as received
    Column("status", String(16), nullable=False, default="accepted"),  # accepted | processed | failed
    Column("error", Text),
    _ts("received_at", nullable=False, default=utcnow),
    _ts("processed_at"),
    _ts("swept_at"),  # when the sweep last re-enqueued it
    UniqueConstraint("tenant", "source", "event_id", name="uq_events_identity"),
    Index("ix_events_status_received", "status", "received_at"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", Id, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("job_id", String(128), nullable=False),
    Column("state", String(24), nullable=False),  # draft | awaiting_signature | invoicing | done | failed
    Column("needs_review", Boolean, nullable=False, default=False),
    Column("event_pk", ForeignKey("events.id"), nullable=False),  # the event whose job data is current
    _ts("created_at", nullable=False, default=utcnow),
    _ts("updated_at", nullable=False, default=utcnow),
    _ts("finished_at"),
    UniqueConstraint("tenant", "job_id", name="uq_jobs_identity"),
)

invoices = Table(
    "invoices", metadata,
    Column("id", Id, primary_key=True),
    Column("job_pk", ForeignKey("jobs.id"), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("number", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    _ts("issued_on", nullable=False),
    Column("due_days", Integer, nullable=False),
    Column("subtotal", Money, nullable=False),
    Column("discount", Money, nullable=False),
    Column("tax", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("event_pk", ForeignKey("events.id"), nullable=False),  # the job data it was priced from
    Column("stage", String(16), nullable=False, default="platforms"),  # platforms | render | filing | notify | done
    Column("amount_paid", Money, nullable=False, default=0, server_default="0"),  # as payment platforms report it
    _ts("paid_at"),
    _ts("paused_at"),  # reminders paused by hand (invoicer invoices pause)
    _ts("voided_at"),  # voided by hand: no more reminders
    _ts("created_at", nullable=False, default=utcnow),
    UniqueConstraint("job_pk", "revision", name="uq_invoices_revision"),
    UniqueConstraint("tenant", "number", name="uq_invoices_number"),
)

invoice_lines = Table(
    "invoice_lines", metadata,
    Column("id", Id, primary_key=True),
    Column("invoice_id", ForeignKey("invoices.id"), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),  # labor | material | fee | discount
    Column("description", Text, nullable=False),
    Column("sku", String(64)),
    Column("quantity", Money, nullable=False),
    Column("unit_price", Money, nullable=False),
    Column("amount", Money, nullable=False),
    Column("taxable", Boolean, nullable=False),
    Column("percent", Money),  # percent discounts only
)

deliveries = Table(
    "deliveries", metadata,
    Column("id", Id, primary_key=True),
    Column("invoice_id", ForeignKey("invoices.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # invoice | pdf | email | sms
    Column("target", String(64), nullable=False),  # platform name, or recipient role (customer, finance)
    Column("recipient", String(320)),  # email address or E.164 phone, for messages
    Column("provider", String(32), nullable=False),  # registry slug
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False, default="pending"),  # pending|running|retry|done|skipped|dead
    Column("attempts", Integer, nullable=False, default=0),
    _ts("next_attempt_at"),
    _ts("claimed_until"),
    _ts("swept_at"),  # when the sweep last re-enqueued it
    Column("external_id", String(128)),
    Column("external_number", String(64)),
    Column("url", Text),
    Column("detail", JSON),  # what the provider answered (no secrets), or why it was skipped
    Column("last_error", Text),
    _ts("created_at", nullable=False, default=utcnow),
    _ts("updated_at", nullable=False, default=utcnow),
    Index("ix_deliveries_status_updated", "status", "updated_at"),
)

attempts = Table(
    "attempts", metadata,
    Column("id", Id, primary_key=True),
    Column("delivery_id", ForeignKey("deliveries.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),  # ok | retry | dead
    Column("error_type", String(64)),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    _ts("at", nullable=False, default=utcnow),
)

audit_log = Table(  # append-only: nothing updates or deletes a row
    "audit_log", metadata,
    Column("id", Id, primary_key=True),
    _ts("at", nullable=False, default=utcnow),
    Column("tenant", String(64), nullable=False),
    Column("job_pk", ForeignKey("jobs.id"), index=True),
    Column("event_pk", ForeignKey("events.id")),
    Column("invoice_id", ForeignKey("invoices.id")),
    Column("delivery_id", ForeignKey("deliveries.id")),
    Column("action", String(48), nullable=False),
    Column("detail", JSON),
)

reminders = Table(  # one row per (invoice, cadence step): a step can never be sent twice
    "reminders", metadata,
    Column("id", Id, primary_key=True),
    Column("invoice_id", ForeignKey("invoices.id"), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("step", String(32), nullable=False),
    _ts("due_at", nullable=False),  # when the step became due (UTC)
    Column("status", String(16), nullable=False),  # sent (its deliveries made) | skipped
    Column("reason", Text),  # why it was skipped
    _ts("created_at", nullable=False, default=utcnow),
    UniqueConstraint("invoice_id", "step", name="uq_reminders_step"),
)

reminder_optouts = Table(  # customers who asked for no reminders
    "reminder_optouts", metadata,
    Column("id", Id, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    _ts("created_at", nullable=False, default=utcnow),
    UniqueConstraint("tenant", "customer_id", name="uq_reminder_optouts_identity"),
)

payment_polls = Table(  # when a platform without payment webhooks was last asked about an invoice
    "payment_polls", metadata,
    Column("delivery_id", ForeignKey("deliveries.id"), primary_key=True),  # the invoice on that platform
    _ts("polled_at", nullable=False),
    Column("outcome", String(16)),  # unpaid | partial | paid | error
    Column("last_error", Text),
)

counters = Table(
    "counters", metadata,
    Column("tenant", String(64), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

credentials = Table(  # encrypted (Fernet) by invoicer.credentials; never logged
    "credentials", metadata,
    Column("id", Id, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("platform", String(64), nullable=False),  # the tenant's platform name
    Column("secret", Text, nullable=False),
    Column("version", Integer, nullable=False),
    _ts("updated_at", nullable=False, default=utcnow),
    UniqueConstraint("tenant", "platform", name="uq_credentials_identity"),
)

platform_refs = Table(  # our id -> the platform's id (customers found or created there, ...)
    "platform_refs", metadata,
    Column("id", Id, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ours", String(256), nullable=False),
    Column("theirs", String(256), nullable=False),
    _ts("created_at", nullable=False, default=utcnow),
    UniqueConstraint("tenant", "platform", "kind", "ours", name="uq_platform_refs_identity"),
)

local_ledger = Table(  # the built-in `local` platform's own books (it stands in for a vendor)
    "local_ledger", metadata,
    Column("id", Id, primary_key=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False),
    Column("reference", String(128), nullable=False),
    Column("number", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Money, nullable=False),
    Column("body", JSON, nullable=False),
    _ts("created_at", nullable=False, default=utcnow),
)


hook_deliveries = Table(  # a dispatch system's own webhook (Jobber, ServiceTitan, FieldEdge), raw as received
    "hook_deliveries", metadata,
    Column("id", Id, primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("source", String(32), nullable=False),  # the vendor's slug
    Column("delivery_key", String(256), nullable=False),  # the vendor's identity of the event: redeliveries share it
    Column("topic", String(64), nullable=False),
    Column("item_id", String(128), nullable=False),  # the vendor's id of what changed (visit, job, work order)
    Column("body", Text, nullable=False),  # the raw body, exactly as received and verified
    Column("status", String(16), nullable=False, default="received"),  # received | processed | ignored | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("event_pk", ForeignKey("events.id")),  # the v1 event it was mapped to
    Column("error", Text),
    _ts("received_at", nullable=False, default=utcnow),
    _ts("processed_at"),
    _ts("swept_at"),  # when the sweep last re-enqueued it
    UniqueConstraint("tenant", "source", "delivery_key", name="uq_hook_deliveries_identity"),
    Index("ix_hook_deliveries_status_received", "status", "received_at"),
)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


POOL_SIZE = 10  # connections kept per process; a threads-pool worker raises it to its thread count


def size_pool(threads: int) -> None:
    """One pooled connection per thread (plus the overflow), so no task waits for another's connection;
    call before the first engine() of the process."""
    global POOL_SIZE
    POOL_SIZE = max(POOL_SIZE, threads)
    engine_for.cache_clear()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    # no pre-ping: it cost a `SELECT 1` round trip per check-out (~5 per event). A connection PostgreSQL
    # dropped (a restart) fails its first statement instead; SQLAlchemy then recycles every connection of
    # the pool, and that one failure is a DBAPIError: a task retries it, the ingress answers 503
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=20, pool_pre_ping=False,
                         connect_args={"connect_timeout": 5})


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    return make_engine(url)


def engine() -> Engine:
    from .config import settings

    return engine_for(settings().database_url)
