"""Who is told about an invoice, over which channel, and what the message says."""
from __future__ import annotations

from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_currency

from . import documents
from .config import Tenant, settings
from .providers.base import Message


def plan(doc: dict, tenant: Tenant) -> list[tuple]:
    """(kind, target, provider, recipient, skipped_reason) for every message this invoice needs.

    A missing contact skips that channel with a recorded reason; it never fails the job."""
    customer = doc["customer"]
    out = []
    for kind in tenant.channels.customer:
        contact = customer.get("email" if kind == "email" else "phone")
        provider = getattr(tenant.channels, kind)
        out.append((kind, "customer", provider, contact,
                    None if contact else f"customer has no {'email address' if kind == 'email' else 'phone number'}"))
    for address in tenant.channels.finance_emails:
        out.append(("email", "finance", tenant.channels.email, address, None))
    return out


def link(pdf_row) -> str | None:
    cfg = settings()
    if pdf_row is None or not cfg.secret_key:
        return None
    return documents.sign_link(cfg.public_url, cfg.secret_key, pdf_row.id)


def compose(row, doc: dict, pdf_row, var_dir: Path) -> Message:
    locale = doc["locale"]
    total = format_currency(doc["total"], doc["currency"], locale=locale)
    due = format_date(doc["due_on"], "medium", locale=locale)
    seller, number = doc["seller"]["name"], doc["number"]
    url = link(pdf_row)
    if row.kind == "sms":
        target = doc.get("pay_url") or url
        text = f"{seller}: invoice {number} for {total} is due {due}." + (f" Pay or view: {target}" if target else "")
        return Message(key=row.idempotency_key, to=row.recipient, subject="", text=text, tenant=doc["tenant"])
    attachment = None
    if pdf_row is not None and pdf_row.detail:
        data = documents.LocalStorage(var_dir / "invoices").get(pdf_row.detail["path"])
        attachment = (f"{number}.pdf", data)
    if row.target == "finance":
        subject = f"[{doc['tenant']}] Invoice {number} issued: {total}"
        text = (f"Invoice {number} for job {doc['job']['number']} ({doc['customer']['name']}) was issued for "
                f"{total}, due {due}.")
    else:
        subject = f"Invoice {number} from {seller}"
        text = (f"Hello {doc['customer']['name']},\n\nThank you for your business. Your invoice {number} for "
                f"{total} is attached and is due {due}.")
    if url:
        text += f"\n\nView it online: {url}"
    if doc.get("pay_url") and row.target == "customer":
        text += f"\nPay online: {doc['pay_url']}"
    return Message(key=row.idempotency_key, to=row.recipient, subject=subject, text=text + "\n",
                   attachment=attachment, tenant=doc["tenant"])
