"""A job's state as one document: steps, invoices per platform, the PDF, messages, the audit trail."""
from __future__ import annotations

from sqlalchemy import select

from . import db
from .config import settings
from .documents import sign_link
from .money import quantum


def mask(contact: str | None) -> str | None:
    """Enough of an email address or phone number to recognise it, not enough to use it."""
    if not contact:
        return contact
    if "@" in contact:
        local, _, domain = contact.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{contact[:3]}***{contact[-2:]}"


def message_status(d) -> str:
    """queued, sent, delivered, bounced, failed (as the vendor last said), skipped, or unknown (review)."""
    if d.status in ("pending", "running", "retry"):
        return "queued"
    if d.status == "dead":
        return "failed"
    if d.status == "skipped":
        return "skipped"
    return (d.detail or {}).get("status") or ("unknown" if d.status == "review" else "sent")


def _iso(value):
    return value.isoformat() if value else None


def job_status(tenant: str, job_id: str) -> dict | None:
    cfg = settings()
    with db.engine().connect() as conn:
        job = conn.execute(select(db.jobs).where(db.jobs.c.tenant == tenant, db.jobs.c.job_id == job_id)).first()
        if job is None:
            return None
        events = conn.execute(select(db.events).where(db.events.c.tenant == tenant, db.events.c.job_id == job_id)
                              .order_by(db.events.c.id)).all()
        invoices = conn.execute(select(db.invoices).where(db.invoices.c.job_pk == job.id)
                                .order_by(db.invoices.c.revision)).all()
        deliveries = conn.execute(select(db.deliveries).where(
            db.deliveries.c.invoice_id.in_([i.id for i in invoices])).order_by(db.deliveries.c.id)).all()
        trail = conn.execute(select(db.audit_log).where(db.audit_log.c.job_pk == job.id)
                             .order_by(db.audit_log.c.id)).all()

    def step(d):
        out = {"id": d.id, "status": d.status, "attempts": d.attempts, "last_error": d.last_error,
               "updated_at": _iso(d.updated_at)}
        if d.status == "retry":
            out["next_attempt_at"] = _iso(d.next_attempt_at)
        return out

    def invoice(inv):
        mine = [d for d in deliveries if d.invoice_id == inv.id]
        pdf = next((d for d in mine if d.kind == "pdf"), None)
        return {
            "number": inv.number, "revision": inv.revision, "stage": inv.stage, "currency": inv.currency,
            **{name: str(getattr(inv, name).quantize(quantum(inv.currency)))
               for name in ("subtotal", "discount", "tax", "total")},
            "issued_at": _iso(inv.issued_on),
            "amount_paid": str(inv.amount_paid.quantize(quantum(inv.currency))), "paid_at": _iso(inv.paid_at),
            "platforms": [{"platform": d.target, "provider": d.provider, "external_id": d.external_id,
                           "number": d.external_number, "url": d.url, **step(d)}
                          for d in mine if d.kind == "invoice"],
            "pdf": None if pdf is None else {
                **step(pdf), "sha256": (pdf.detail or {}).get("sha256"),
                "url": sign_link(cfg.public_url, cfg.secret_key, pdf.invoice_id, cfg.pdf_link_ttl)
                if pdf.status == "done" and cfg.secret_key else None},
            "notifications": [{"channel": d.kind, "to": d.target, "recipient": mask(d.recipient),
                               "provider": d.provider, "message_id": d.external_id,
                               "message_status": message_status(d),
                               "reason": (d.detail or {}).get("reason")
                               if d.status in ("skipped", "review") else None, **step(d)}
                              for d in mine if d.kind in ("email", "sms", "slack")],
        }

    return {
        "tenant": tenant, "job_id": job_id, "state": job.state, "needs_review": job.needs_review,
        "created_at": _iso(job.created_at), "finished_at": _iso(job.finished_at),
        "events": [{"event_id": e.event_id, "type": e.type, "source": e.source, "status": e.status,
                    "received_at": _iso(e.received_at)} for e in events],
        "invoices": [invoice(i) for i in invoices],
        "audit": [{"at": _iso(a.at), "action": a.action, "invoice_id": a.invoice_id, "delivery_id": a.delivery_id,
                   "detail": a.detail} for a in trail],
    }
