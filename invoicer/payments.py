"""Payment status by polling, for the platforms that can tell (`payment_status`) but send no webhooks
(QuickBooks here, Wave, MYOB, NetSuite, Sage Intacct, Dynamics 365, Odoo).

Beat only selects (`due()`): open invoices on such a platform not asked about for
INVOICER_PAYMENT_POLL_INTERVAL, at most INVOICER_PAYMENT_POLL_BATCH per platform per run, each claimed
by writing its `payment_polls.polled_at` (a second beat claims nothing). One task per invoice then
asks the platform (`poll()`) through the adapter, whose calls go through the shared rate limiter, and
records what it says exactly as a payment webhook would (`pipeline.apply_webhook`): a paid invoice
stops its reminders.

A platform whose webhooks carry ids only (QuickBooks) has its notices turned into the same polls at once
(tasks.reminders.payment_notice): an invoice changed -> its poll task now (`open_deliveries()`); a payment
changed -> a task that fetches the payment, finds the invoices it pays and polls each (`follow()`).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from . import db, logs, pipeline
from .config import settings, tenants
from .errors import ProviderError
from .providers import registry
from .providers.base import WebhookEvent

log = logs.get("invoicer.payments")


def pollable() -> list[str]:
    """Provider slugs that can report payment status and send no webhooks to tell it (or only best-effort
    ones, `poll_payments`: the poll is the backstop)."""
    return sorted(slug for slug, cls in registry.all_providers().items() if registry.has(slug, "payment_status")
                  and (not registry.has(slug, "parse_webhook") or cls.poll_payments))


def _claim(conn, delivery_id: int, now: datetime, cutoff: datetime) -> bool:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    p = db.payment_polls
    stmt = dialect.insert(p).values(delivery_id=delivery_id, polled_at=now)
    stmt = stmt.on_conflict_do_update(index_elements=["delivery_id"], set_={"polled_at": now},
                                      where=p.c.polled_at < cutoff)
    return conn.execute(stmt.returning(p.c.delivery_id)).first() is not None


def due(now: datetime | None = None) -> list[int]:
    """The invoice deliveries (one per invoice and platform) to ask about now, claimed."""
    cfg = settings()
    now = now or db.utcnow()
    cutoff = now - timedelta(seconds=cfg.payment_poll_interval)
    d, i, p = db.deliveries.c, db.invoices.c, db.payment_polls.c
    slugs = pollable()
    out: list[int] = []
    with db.engine().begin() as conn:
        for slug in slugs:
            ids = conn.execute(
                select(d.id).join(db.invoices, i.id == d.invoice_id)
                .outerjoin(db.payment_polls, p.delivery_id == d.id)
                .where(d.kind == "invoice", d.status == "done", d.provider == slug, d.external_id.is_not(None),
                       i.paid_at.is_(None), i.voided_at.is_(None), i.amount_paid < i.total,
                       i.tenant.in_(list(tenants())), or_(p.polled_at.is_(None), p.polled_at < cutoff))
                .order_by(p.polled_at.nulls_first(), d.id).limit(cfg.payment_poll_batch)).scalars().all()
            out += [delivery_id for delivery_id in ids if _claim(conn, delivery_id, now, cutoff)]
    return out


def poll(delivery_id: int) -> str:
    """Ask the platform about one invoice and record it as a webhook would: paid, partial, unchanged,
    unpaid, settled (nothing to ask: paid or voided meanwhile) or error (asked again next time)."""
    cfg = settings()
    d, i = db.deliveries.c, db.invoices.c
    with db.engine().connect() as conn:
        row = conn.execute(select(d.target, d.provider, d.external_id, i.tenant, i.paid_at, i.voided_at)
                           .join(db.invoices, i.id == d.invoice_id).where(d.id == delivery_id)).first()
    if row is None or row.paid_at is not None or row.voided_at is not None:
        return "settled"
    tenant = tenants().get(row.tenant)
    platform = tenant.platforms.get(row.target) if tenant else None
    if platform is None:
        return "settled"
    ctx = pipeline.Ctx(engine=db.engine(), var_dir=cfg.var_dir, tenant=row.tenant, platform=row.target)
    try:
        status = registry.get(row.provider)(platform.model_dump(), ctx).payment_status(row.external_id)
    except ProviderError as exc:  # rate limited, unavailable, refused: the next selection asks again
        _record(delivery_id, "error", f"{type(exc).__name__}: {exc}"[:500])
        log.warning("payment.poll_failed", tenant=row.tenant, platform=row.target, provider=row.provider,
                    delivery=delivery_id, error=type(exc).__name__)
        return "error"
    if not status.paid and status.amount_paid <= 0:
        _record(delivery_id, "unpaid")
        return "unpaid"
    event = WebhookEvent(type="invoice.paid" if status.paid else "invoice.payment_partial",
                         external_id=row.external_id, amount_paid=None if status.paid else status.amount_paid,
                         raw={"polled": True})
    outcome = pipeline.apply_webhook(row.tenant, row.provider, event)
    _record(delivery_id, "paid" if status.paid else "partial")
    log.info("payment.polled", tenant=row.tenant, platform=row.target, provider=row.provider, delivery=delivery_id,
             outcome=outcome)
    return outcome


def _record(delivery_id: int, outcome: str, error: str | None = None) -> None:
    p = db.payment_polls.c
    with db.engine().begin() as conn:
        conn.execute(db.payment_polls.update().where(and_(p.delivery_id == delivery_id)).values(
            outcome=outcome, last_error=error))


def open_deliveries(tenant: str, provider: str, external_ids: list[str] | None,
                    target: str | None = None) -> list[int]:
    """Our invoice deliveries on that platform (for these vendor ids; None: any), made there and still open
    (not paid, not voided)."""
    d, i = db.deliveries.c, db.invoices.c
    q = (select(d.id).join(db.invoices, i.id == d.invoice_id)
         .where(i.tenant == tenant, d.provider == provider, d.kind == "invoice", d.external_id.is_not(None),
                i.paid_at.is_(None), i.voided_at.is_(None)).order_by(d.id))
    if external_ids is not None:
        q = q.where(d.external_id.in_(external_ids))
    if target is not None:
        q = q.where(d.target == target)
    with db.engine().connect() as conn:
        return list(conn.execute(q).scalars())


def anchors(tenant: str, provider: str, account: str | None) -> list[int]:
    """For a payment notice: one open invoice delivery of ours on each of the tenant's entries of that provider
    that stands for `account` (the entry's `webhook_account()`). The task that follows the payment starts from
    it (the entry to ask; its messages carry ids only). None open there: nothing the payment could settle."""
    conf = tenants().get(tenant)
    cls = registry.get(provider)
    names = [name for name, p in (conf.platforms.items() if conf else []) if p.provider == provider
             and cls(p.model_dump(), None).webhook_account() in (None, account)]
    out = []
    for name in names:
        ids = open_deliveries(tenant, provider, None, target=name)
        out += ids[:1]
    return out


def follow(delivery_id: int, payment_id: str) -> list[str]:
    """Fetch a payment the platform says changed, on the entry of our invoice `delivery_id`, and poll each of
    our open invoices there it is applied to; the poll's outcome per invoice. A payment that cannot be
    fetched (gone, refused, rate limited) is left to the hourly poll."""
    cfg = settings()
    d, i = db.deliveries.c, db.invoices.c
    with db.engine().connect() as conn:
        row = conn.execute(select(d.target, d.provider, i.tenant).join(db.invoices, i.id == d.invoice_id)
                           .where(d.id == delivery_id)).first()
    conf = tenants().get(row.tenant) if row else None
    platform = conf.platforms.get(row.target) if conf else None
    if platform is None:
        return []
    ctx = pipeline.Ctx(engine=db.engine(), var_dir=cfg.var_dir, tenant=row.tenant, platform=row.target)
    try:
        linked = registry.get(row.provider)(platform.model_dump(), ctx).payment_invoices(payment_id)
    except ProviderError as exc:
        log.warning("payment.follow_failed", tenant=row.tenant, platform=row.target, provider=row.provider,
                    error=type(exc).__name__)
        return []
    ids = open_deliveries(row.tenant, row.provider, linked, target=row.target) if linked else []
    log.info("payment.followed", tenant=row.tenant, platform=row.target, provider=row.provider,
             invoices=len(linked), open=len(ids))
    return [poll(delivery) for delivery in ids]
