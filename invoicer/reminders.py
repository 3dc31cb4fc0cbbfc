"""Follow-up reminders for unpaid invoices: what is due, made into deliveries exactly once.

- The cadence is per tenant (`reminders:` in the tenants file, invoicer.cadence): steps relative to the
  due date, each becoming due at `send_at` in the customer's time zone (invoicer.timezones).
- `fan_out(now)` is all beat does: for every open invoice (its notifications done, not paid, voided or
  paused) it finds the steps due by `now`, and in one transaction per invoice inserts a `reminders`
  row per step (unique per invoice and step: a second beat, a retried fan-out or a crashed worker
  cannot make it twice) with one delivery per channel (idempotency key from invoice, step and
  channel). The deliveries are then run like every other message: attempts, retries, dead letters.
- A channel inside the customer's quiet hours gets its delivery scheduled for their end (status
  `retry` with `next_attempt_at`; the sweep starts it then). Just before sending, `gate()` looks again:
  paid, voided, paused or opted out -> skipped; inside quiet hours -> waits.
- Missed steps (beat down, invoice paused): `missed: catch_up` sends each once, late; `missed: skip`
  sends only the latest due step of each audience and records the earlier ones as skipped.

Every function that decides takes `now`; nothing here reads the clock on its own except `clock()`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update

from . import db, logs, money, notify, timezones
from .cadence import QuietHours, Reminders, Step
from .config import Tenant, tenants
from .errors import ProviderError
from .providers.ratelimit import Throttled
from .store import audit, idempotency_key, insert_ignore

log = logs.get("invoicer.reminders")
TARGET = "reminder:"  # a reminder delivery's target: reminder:<step>
PAGE = 500


class Conflict(ProviderError):
    """A manual action that contradicts the invoice's state (paying a voided invoice)."""


def clock() -> datetime:
    """The send-time check's clock (tests replace it; the selection functions take `now`)."""
    return db.utcnow()


def is_reminder(row) -> bool:
    return row.target.startswith(TARGET)


def check_tenant(tenant: Tenant) -> list[str]:
    """Cross-checks of the cadence against the rest of the tenant, for the startup check."""
    cfg = tenant.reminders
    if cfg is None:
        return []
    problems = []
    for step in cfg.steps:
        where = f"reminders.steps.{step.name}"
        if step.escalate and tenant.channels.slack is None:
            problems.append(f"{where}.channels: an escalation alerts finance on Slack, but channels.slack is not set")
        base = step.template.split("-", 1)[0]
        if base not in ("reminder", "escalation"):
            problems.append(f"{where}.template: {step.template!r} is not a reminder template (reminder, escalation, "
                            "reminder-<name> or escalation-<name>)")
        elif step.template not in notify.KINDS and step.template not in tenant.templates:
            problems.append(f"{where}.template: there is no templates.{step.template} in this tenant")
    return problems


# ---------------------------------------------------------------- when each step is due

@dataclass
class Invoice:
    """What the schedule needs of one invoice (from its row and its job's event)."""
    id: int
    tenant: str
    number: str
    issued_on: datetime
    due_on: date
    total: Decimal
    amount_paid: Decimal
    customer: dict
    service_address: dict
    zone: ZoneInfo
    done: dict = field(default_factory=dict)  # step -> status of the reminders rows made so far

    @property
    def doc(self) -> dict:  # what notify's recipient helpers read
        return {"customer": self.customer, "service_address": self.service_address}


def zone_of(tenant: Tenant, service_address: dict) -> ZoneInfo:
    cfg = tenant.reminders
    own = tenant.branding.timezone if tenant.branding.timezone != "UTC" else None
    fallback = (cfg.timezone if cfg else None) or own or timezones.locale_zone(tenant.locale)
    return timezones.customer_zone(service_address, fallback)


def step_at(step: Step, due_on: date, send_at: time, zone: ZoneInfo) -> datetime:
    """When a step becomes due: its day at `send_at` in the customer's zone, as UTC."""
    local = datetime.combine(due_on + timedelta(days=step.days), send_at, tzinfo=zone)
    return local.astimezone(timezone.utc)


def allowed_at(at: datetime, channel: str, quiet: QuietHours, zone: ZoneInfo) -> datetime:
    """`at`, or the end of the customer's quiet hours when `at` falls inside them for this channel."""
    if channel not in quiet.channels:
        return at
    local = at.astimezone(zone)
    if not quiet.contains(local.time()):
        return at
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
    return end.astimezone(timezone.utc)


def schedule(cfg: Reminders, inv: Invoice) -> list[tuple[Step, datetime]]:
    """Every step of the cadence with the time it becomes due; steps whose time fell before the invoice
    was issued (a `-3` step, or the due-date step of an invoice due on receipt issued after `send_at`)
    are not part of it: a reminder never arrives minutes after the invoice itself."""
    out = [(s, step_at(s, inv.due_on, cfg.send_at, inv.zone)) for s in cfg.steps]
    return [(s, at) for s, at in out if at >= inv.issued_on]


def due(cfg: Reminders, inv: Invoice, now: datetime) -> list[tuple[Step, datetime, str | None]]:
    """The steps to act on now: (step, due time, None to send or the reason to skip it)."""
    ready = [(s, at) for s, at in schedule(cfg, inv) if at <= now and s.name not in inv.done]
    out = []
    for s, at in ready:
        later = [o for o, _ in ready if o.role == s.role and (o.days, o.name) > (s.days, s.name)]
        if cfg.missed == "skip" and later:
            out.append((s, at, f"missed; a later step ({later[-1].name}) is due"))
        else:
            out.append((s, at, None))
    return out


# ---------------------------------------------------------------- selecting and fanning out

def _open(slug: str, steps: int, after: int, limit: int, only=None):
    """Open invoices of a tenant with fewer reminders rows than its cadence has steps, by id."""
    i, e, r = db.invoices.c, db.events.c, db.reminders.c
    made = select(func.count()).where(r.invoice_id == i.id).scalar_subquery()
    q = (select(i.id, i.tenant, i.number, i.issued_on, i.due_days, i.total, i.amount_paid, e.body)
         .join(db.events, e.id == i.event_pk)
         .where(i.tenant == slug, i.stage == "done", i.paid_at.is_(None), i.voided_at.is_(None),
                i.paused_at.is_(None), i.amount_paid < i.total, made < steps, i.id > after)
         .order_by(i.id).limit(limit))
    if only is not None:
        q = q.where(i.id.in_(only))
    return q


def _invoice(row, tenant: Tenant) -> Invoice:
    body = json.loads(row.body)
    address = body["job"].get("service_address") or {}
    return Invoice(id=row.id, tenant=row.tenant, number=row.number, issued_on=row.issued_on,
                   due_on=(row.issued_on + timedelta(days=row.due_days)).date(), total=row.total,
                   amount_paid=row.amount_paid, customer=body["customer"], service_address=address,
                   zone=zone_of(tenant, address))


def _done_steps(conn, invoice_id: int) -> dict[str, str]:
    r = db.reminders.c
    return dict(conn.execute(select(r.step, r.status).where(r.invoice_id == invoice_id)).all())


def _opted_out(conn, tenant: str, customer_id: str) -> bool:
    o = db.reminder_optouts.c
    return conn.execute(select(o.id).where(o.tenant == tenant, o.customer_id == customer_id)).first() is not None


def open_invoices(slug: str, tenant: Tenant, only=None):
    """Every open invoice of a tenant that still has steps to come (pages of PAGE, by id)."""
    after = 0
    while True:
        with db.engine().connect() as conn:
            rows = conn.execute(_open(slug, len(tenant.reminders.steps), after, PAGE, only)).all()
            for row in rows:
                inv = _invoice(row, tenant)
                inv.done = _done_steps(conn, row.id)
                yield inv
        if len(rows) < PAGE:
            return
        after = rows[-1].id


def fan_out(now: datetime | None = None, only: list[int] | None = None) -> list[tuple[str, int]]:
    """Beat's reminder job: make the deliveries of every step due by `now`; (kind, delivery id) to enqueue
    once this has returned (everything it made is committed)."""
    now = now or db.utcnow()
    follow: list[tuple[str, int]] = []
    for slug, tenant in tenants().items():
        if tenant.reminders is None:
            continue
        for inv in open_invoices(slug, tenant, only):
            if due(tenant.reminders, inv, now):
                follow += remind(inv.id, slug, tenant, now)
    if follow:
        log.info("reminders.fanned_out", deliveries=len(follow))
    return follow


def remind(invoice_id: int, slug: str, tenant: Tenant, now: datetime) -> list[tuple[str, int]]:
    """One invoice's due steps, in one transaction: the reminders rows, then their deliveries."""
    cfg = tenant.reminders
    i = db.invoices.c
    follow: list[tuple[str, int]] = []
    with db.engine().begin() as conn:
        # serialises two fan-outs of the same invoice (the unique row would stop the second anyway)
        row = conn.execute(select(db.invoices).where(i.id == invoice_id).with_for_update(key_share=True)).first()
        if row is None or row.paid_at or row.voided_at or row.paused_at or row.amount_paid >= row.total:
            return []
        body = conn.execute(select(db.events.c.body).where(db.events.c.id == row.event_pk)).scalar_one()
        inv = _invoice(_Row(row, body), tenant)
        inv.done = _done_steps(conn, invoice_id)
        opted_out = _opted_out(conn, slug, str(inv.customer.get("id")))
        for step, at, skip in due(cfg, inv, now):
            if skip is None and opted_out and step.role == "customer":
                skip = "the customer opted out of reminders"
            made = insert_ignore(conn, db.reminders, {
                "invoice_id": invoice_id, "tenant": slug, "step": step.name, "due_at": at,
                "status": "skipped" if skip else "sent", "reason": skip}, ["invoice_id", "step"])
            if made is None:  # another fan-out got there first
                continue
            if skip:
                audit(conn, slug, "reminder_skipped", job_pk=row.job_pk, invoice_id=invoice_id, step=step.name,
                      reason=skip)
                continue
            planned = []
            for channel in step.channels:
                new, info = _delivery(conn, inv, tenant, slug, step, channel, now)
                planned.append(info)
                if new:
                    follow.append((channel, new))
            audit(conn, slug, "reminder_due", job_pk=row.job_pk, invoice_id=invoice_id, step=step.name,
                  due_at=at.isoformat(), late_s=int((now - at).total_seconds()), channels=planned)
    return follow


class _Row:
    """An invoice row with its event's body, shaped like the selection's rows."""

    def __init__(self, row, body: str):
        self._row, self.body = row, body

    def __getattr__(self, name):
        return getattr(self._row, name)


def _delivery(conn, inv: Invoice, tenant: Tenant, slug: str, step: Step, channel: str, now: datetime):
    """One channel of one step: a delivery row, to run now, later (quiet hours) or skipped (no contact)."""
    if channel == "slack":
        provider, recipient, reason = tenant.channels.slack.provider, notify.slack_target(tenant), None
    else:
        provider = getattr(tenant.channels, channel).provider
        recipient, reason = notify.customer_contact(inv.doc, tenant, channel)
    when = now if step.escalate else allowed_at(now, channel, tenant.reminders.quiet_hours, inv.zone)
    values = dict(invoice_id=inv.id, kind=channel, target=f"{TARGET}{step.name}", provider=provider,
                  recipient=recipient, idempotency_key=idempotency_key(slug, "reminder", inv.id, step.name, channel))
    if reason:
        values.update(status="skipped", detail={"reason": reason})
    elif when > now:  # quiet hours: the sweep starts it when they end
        values.update(status="retry", next_attempt_at=when, detail={"deferred": "quiet hours", "until": when.isoformat()})
    new = insert_ignore(conn, db.deliveries, values, ["idempotency_key"])
    info = {"channel": channel, "delivery": new, **({"skipped": reason} if reason else {}),
            **({"deferred_until": when.isoformat()} if when > now and not reason else {})}
    if new and reason:
        audit(conn, slug, "delivery_skipped", invoice_id=inv.id, delivery_id=new, kind=channel, reason=reason)
    return (new if new and not reason and when <= now else None), info


# ---------------------------------------------------------------- just before sending

def gate(row, doc: dict, tenant: Tenant, now: datetime | None = None) -> tuple[dict | None, str | None, dict]:
    """Look again just before a reminder is sent: (a result that ends the delivery without sending, or
    None; the template kind; the invoice document with the reminder's fields). Inside quiet hours it
    raises Throttled (no attempt spent), so the delivery waits and looks again."""
    now = now or clock()
    name = row.target[len(TARGET):]
    cfg = tenant.reminders
    step = next((s for s in cfg.steps if s.name == name), None) if cfg else None
    if step is None:
        return _skip(f"step {name} is no longer in the tenant's cadence"), None, doc
    i = db.invoices.c
    with db.engine().connect() as conn:
        inv = conn.execute(select(i.paid_at, i.voided_at, i.paused_at, i.amount_paid, i.total)
                           .where(i.id == row.invoice_id)).first()
        opted_out = step.role == "customer" and _opted_out(conn, doc["tenant"], str(doc["customer"].get("id")))
    if inv.paid_at is not None or inv.amount_paid >= inv.total:
        return _skip("the invoice is paid"), None, doc
    if inv.voided_at is not None:
        return _skip("the invoice was voided"), None, doc
    if inv.paused_at is not None:
        return _skip("reminders are paused for this invoice"), None, doc
    if opted_out:
        return _skip("the customer opted out of reminders"), None, doc
    zone = zone_of(tenant, doc.get("service_address") or {})
    if not step.escalate:
        until = allowed_at(now, row.kind, cfg.quiet_hours, zone)
        if until > now:
            raise Throttled(f"quiet hours for the customer ({zone.key}) until {until.isoformat()}",
                            retry_after=(until - now).total_seconds())
    overdue = (now.astimezone(zone).date() - doc["due_on"]).days
    reminder = {"step": step.name, "days": step.days, "days_overdue": max(0, overdue)}
    return None, step.template, {**doc, "amount_paid": inv.amount_paid, "reminder": reminder}


def _skip(reason: str) -> dict:
    return {"status": "skipped", "detail": {"reason": reason}}


# ---------------------------------------------------------------- by hand: pay, pause, resume, void, opt-out

ACTIONS = {"pay": "invoice_marked_paid", "pause": "reminders_paused", "resume": "reminders_resumed",
           "void": "invoice_voided"}


def find_invoice(ref: str, tenant: str | None = None) -> int | None:
    """An invoice by id, or by number within a tenant."""
    i = db.invoices.c
    with db.engine().connect() as conn:
        if ref.isdigit() and tenant is None:
            return conn.execute(select(i.id).where(i.id == int(ref))).scalar()
        q = select(i.id).where(i.number == ref)
        if tenant:
            q = q.where(i.tenant == tenant)
        found = conn.execute(q.limit(2)).scalars().all()
        return found[0] if len(found) == 1 else None


def act(invoice_id: int, action: str, by: str, reason: str | None = None, now: datetime | None = None) -> dict | None:
    """Mark an invoice paid, pause or resume its reminders, or void it; recorded in the audit trail.
    None when there is no such invoice; Conflict when the action contradicts its state."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    now = now or db.utcnow()
    i = db.invoices.c
    with db.engine().begin() as conn:
        inv = conn.execute(select(db.invoices).where(i.id == invoice_id).with_for_update()).first()
        if inv is None:
            return None
        if action == "pay" and inv.voided_at is not None:
            raise Conflict("the invoice is voided; it cannot be marked paid")
        if action == "void" and inv.paid_at is not None:
            raise Conflict("the invoice is paid; it cannot be voided")
        values = {"pay": {"amount_paid": inv.total, "paid_at": now} if inv.paid_at is None else {},
                  "pause": {"paused_at": now} if inv.paused_at is None else {},
                  "resume": {"paused_at": None} if inv.paused_at is not None else {},
                  "void": {"voided_at": now} if inv.voided_at is None else {}}[action]
        if values:
            conn.execute(update(db.invoices).where(i.id == invoice_id).values(**values))
            audit(conn, inv.tenant, ACTIONS[action], job_pk=inv.job_pk, invoice_id=invoice_id, by=by,
                  **({"reason": reason[:500]} if reason else {}),
                  **({"amount_paid": str(inv.total.quantize(money.quantum(inv.currency)))} if action == "pay" else {}))
    log.info(f"invoice.{action}", tenant=inv.tenant, invoice=inv.number, by=by, changed=bool(values))
    return {"invoice_id": invoice_id, "number": inv.number, "tenant": inv.tenant, "action": action,
            "changed": bool(values)}


def opt_out(tenant: str, customer_id: str, by: str, back_in: bool = False) -> bool:
    """A customer asks for no reminders (or asks for them again); True when that changed anything."""
    o = db.reminder_optouts.c
    with db.engine().begin() as conn:
        if back_in:
            changed = conn.execute(db.reminder_optouts.delete().where(
                and_(o.tenant == tenant, o.customer_id == customer_id))).rowcount > 0
        else:
            changed = insert_ignore(conn, db.reminder_optouts, {"tenant": tenant, "customer_id": customer_id},
                                    ["tenant", "customer_id"]) is not None
        if changed:
            audit(conn, tenant, "reminders_opt_in" if back_in else "reminders_opt_out", customer_id=customer_id,
                  by=by)
    return changed


# ---------------------------------------------------------------- what would be sent

def preview(slug: str, days: int, now: datetime | None = None) -> list[dict]:
    """Every reminder the tenant's open invoices would get between now and `days` ahead, with the
    recipients (masked) and the time each channel would go (quiet hours applied)."""
    from .status import mask

    now = now or db.utcnow()
    tenant = tenants()[slug]
    cfg = tenant.reminders
    if cfg is None:
        return []
    horizon = now + timedelta(days=days)
    out = []
    with db.engine().connect() as conn:
        opted = set(conn.execute(select(db.reminder_optouts.c.customer_id)
                                 .where(db.reminder_optouts.c.tenant == slug)).scalars())
    for inv in open_invoices(slug, tenant):
        now_due = {s.name: skip for s, _, skip in due(cfg, inv, now)}
        for step, at in schedule(cfg, inv):
            if step.name in inv.done or at > horizon or (at <= now and step.name not in now_due):
                continue
            skip = now_due.get(step.name)
            if skip is None and step.role == "customer" and str(inv.customer.get("id")) in opted:
                skip = "the customer opted out of reminders"
            when = max(at, now)
            channels = []
            for channel in step.channels:
                if channel == "slack":
                    to, reason = notify.slack_target(tenant), None
                else:
                    to, reason = notify.customer_contact(inv.doc, tenant, channel)
                go = when if step.escalate else allowed_at(when, channel, cfg.quiet_hours, inv.zone)
                channels.append({"channel": channel, "to": to if channel == "slack" else mask(to),
                                 "at": go.isoformat(), "local": go.astimezone(inv.zone).isoformat(),
                                 **({"skipped": reason} if reason else {})})
            out.append({"invoice": inv.number, "invoice_id": inv.id, "customer": inv.customer.get("name"),
                        "step": step.name, "days": step.days, "due_at": at.isoformat(), "zone": inv.zone.key,
                        "template": step.template, **({"skipped": skip} if skip else {"channels": channels})})
    return sorted(out, key=lambda e: (e["due_at"], e["invoice_id"], e["step"]))
