"""Who is told about an invoice, over which channel, and what the message says.

- Recipients: the customer by email and/or SMS (what the tenant enables, what the customer has), the
  finance team by email (`channels.finance_emails`) and Slack (`channels.slack`). Addresses are checked
  with email-validator, phone numbers with phonenumbers and sent in E.164 (region: the customer's
  billing, else service address country, else the tenant's locale). A missing or invalid contact skips
  that channel with a recorded reason; it never fails the job.
- Templates: Jinja2 in a sandbox (tenants write them), per tenant and per message kind (`invoice`,
  `reminder`, `finance`) with `subject`, `text`, `html` (autoescaped), `sms` and `slack` (mrkdwn,
  escaped) fields; a field a tenant leaves out uses DEFAULTS. Every template is rendered against a
  sample invoice when the tenants file is loaded, so a broken one is a ConfigError at start.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import phonenumbers
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency
from email_validator import EmailNotValidError, validate_email
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import documents
from .config import Tenant, settings
from .providers.base import Message

KINDS = ("invoice", "reminder", "finance", "escalation")
FIELDS = ("subject", "text", "html", "sms", "slack")
_LINKS = ("{% if invoice.pdf_url %}\nView it online: {{ invoice.pdf_url }}{% endif %}"
          "{% if invoice.pay_url %}\nPay online: {{ invoice.pay_url }}{% endif %}")
_HTML_LINKS = ('{% if invoice.pdf_url %}<p><a href="{{ invoice.pdf_url }}">View the invoice</a></p>{% endif %}'
               '{% if invoice.pay_url %}<p><a href="{{ invoice.pay_url }}">Pay online</a></p>{% endif %}')
_SMS = ("{{ seller.name }}: invoice {{ invoice.number }} for {{ invoice.total }} is due {{ invoice.due }}."
        "{% if invoice.pay_url or invoice.pdf_url %} Pay or view: {{ invoice.pay_url or invoice.pdf_url }}{% endif %}")
_WHEN = ("{% if reminder.days_overdue > 0 %}was due {{ invoice.due }}{% else %}is due {{ invoice.due }}"
         "{% endif %}")
DEFAULTS: dict[str, dict[str, str]] = {
    "invoice": {
        "subject": "Invoice {{ invoice.number }} from {{ seller.name }}",
        "text": "Hello {{ customer.name }},\n\nThank you for your business. Your invoice {{ invoice.number }} for "
                "{{ invoice.total }}{% if invoice.attached %} is attached and{% endif %} is due {{ invoice.due }}.\n"
                + _LINKS + "\n",
        "html": "<p>Hello {{ customer.name }},</p><p>Thank you for your business. Your invoice "
                "<strong>{{ invoice.number }}</strong> for {{ invoice.total }}{% if invoice.attached %} is attached "
                "and{% endif %} is due {{ invoice.due }}.</p>" + _HTML_LINKS,
        "sms": _SMS,
        "slack": "Invoice *{{ invoice.number }}* for {{ customer.name }}: {{ invoice.total }}, due {{ invoice.due }}",
    },
    "reminder": {
        "subject": "Reminder: invoice {{ invoice.number }} from {{ seller.name }} " + _WHEN,
        "text": "Hello {{ customer.name }},\n\nThis is a reminder that invoice {{ invoice.number }} for "
                "{{ invoice.total }} " + _WHEN + ".{% if invoice.paid_so_far %} {{ invoice.balance }} remains "
                "to pay.{% endif %}\n" + _LINKS + "\n",
        "html": "<p>Hello {{ customer.name }},</p><p>This is a reminder that invoice <strong>{{ invoice.number }}"
                "</strong> for {{ invoice.total }} " + _WHEN + ".{% if invoice.paid_so_far %} {{ invoice.balance }} "
                "remains to pay.{% endif %}</p>" + _HTML_LINKS,
        "sms": "Reminder from " + _SMS,
        "slack": "Reminder sent for invoice *{{ invoice.number }}* ({{ customer.name }}, {{ invoice.total }})",
    },
    "escalation": {
        "subject": "[{{ tenant }}] Invoice {{ invoice.number }} is {{ reminder.days_overdue }} days overdue",
        "text": "Invoice {{ invoice.number }} for job {{ job.number }} ({{ customer.name }}) was due {{ invoice.due }} "
                "and is {{ reminder.days_overdue }} days overdue: {{ invoice.balance }} unpaid.\n" + _LINKS + "\n",
        "html": "<p>Invoice <strong>{{ invoice.number }}</strong> for job {{ job.number }} ({{ customer.name }}) was "
                "due {{ invoice.due }} and is {{ reminder.days_overdue }} days overdue: {{ invoice.balance }} "
                "unpaid.</p>" + _HTML_LINKS,
        "sms": "{{ tenant }}: invoice {{ invoice.number }} is {{ reminder.days_overdue }} days overdue, "
               "{{ invoice.balance }} unpaid",
        "slack": "Overdue: invoice *{{ invoice.number }}* ({{ customer.name }}) was due {{ invoice.due }}, "
                 "{{ reminder.days_overdue }} days ago: {{ invoice.balance }} unpaid of {{ invoice.total }}",
    },
    "finance": {
        "subject": "[{{ tenant }}] Invoice {{ invoice.number }} issued: {{ invoice.total }}",
        "text": "Invoice {{ invoice.number }} for job {{ job.number }} ({{ customer.name }}) was issued for "
                "{{ invoice.total }}, due {{ invoice.due }}.\n" + _LINKS + "\n",
        "html": "<p>Invoice <strong>{{ invoice.number }}</strong> for job {{ job.number }} ({{ customer.name }}) "
                "was issued for {{ invoice.total }}, due {{ invoice.due }}.</p>" + _HTML_LINKS,
        "sms": "{{ tenant }}: invoice {{ invoice.number }} issued, {{ invoice.total }}",
        "slack": "Invoice *{{ invoice.number }}* issued for {{ customer.name }}: {{ invoice.total }}, "
                 "due {{ invoice.due }}",
    },
}


def slack_escape(value):
    """Slack mrkdwn: &, < and > are control characters in text (https://api.slack.com/reference/surfaces/formatting)."""
    if value is None:
        return ""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PLAIN = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_HTML = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
_SLACK = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined, finalize=slack_escape)
_ENV = {"html": _HTML, "slack": _SLACK}


def source(tenant: Tenant, kind: str, field: str) -> str:
    """The tenant's wording for a kind, else the default; a step's own kind (`reminder-final`) falls back
    to its base kind's wording (`reminder`)."""
    own = tenant.templates.get(kind)
    value = getattr(own, field) if own is not None else None
    return value if value is not None else DEFAULTS[kind.split("-", 1)[0]][field]


@lru_cache(maxsize=1024)
def _compiled(field: str, text: str):
    """A template is compiled once per process, not per message (compiling costs ~100x rendering)."""
    return _ENV.get(field, _PLAIN).from_string(text)


def render(tenant: Tenant, kind: str, field: str, context: dict) -> str:
    text = _compiled(field, source(tenant, kind, field)).render(context)
    if field == "sms":  # locale formats use (narrow) no-break spaces, which would make a text UCS-2
        text = text.replace("\u00a0", " ").replace("\u202f", " ")
    return " ".join(text.split()) if field == "subject" else text  # no header injection by a newline


# ---------------------------------------------------------------- the template context

def context(doc: dict, pdf_url: str | None = None, attached: bool = False) -> dict:
    """What a template sees: plain values only (formatted in the tenant's locale), no objects."""
    locale = doc["locale"]
    paid = Decimal(doc.get("amount_paid") or 0)
    return {
        "tenant": doc["tenant"],
        "seller": {"name": doc["seller"]["name"], "address": list(doc["seller"].get("address") or []),
                   "tax_id": doc["seller"].get("tax_id")},
        "customer": {"name": doc["customer"]["name"]},
        "reminder": doc.get("reminder") or {"step": "", "days": 0, "days_overdue": 0},
        "job": {"number": doc["job"]["number"], "summary": doc["job"].get("summary"),
                "technician": doc["job"].get("technician"), "po_number": doc["job"].get("po_number")},
        "invoice": {"number": doc["number"], "currency": doc["currency"], "amount": str(doc["total"]),
                    "total": format_currency(doc["total"], doc["currency"], locale=locale),
                    "issued": format_date(doc["issued_on"], "medium", locale=locale),
                    "due": format_date(doc["due_on"], "medium", locale=locale),
                    "pdf_url": pdf_url, "pay_url": doc.get("pay_url"), "attached": attached,
                    "paid_so_far": bool(paid), "paid": format_currency(paid, doc["currency"], locale=locale),
                    "balance": format_currency(doc["total"] - paid, doc["currency"], locale=locale)},
    }


def sample_doc(slug: str, tenant: Tenant) -> dict:
    """A small invoice for previews and the startup check (the same shape pipeline.document makes)."""
    return {
        "tenant": slug, "number": f"{tenant.numbering.prefix}{tenant.numbering.start:0{tenant.numbering.width}d}",
        "currency": "USD", "locale": tenant.locale, "issued_on": date(2026, 11, 2), "due_on": date(2026, 12, 2),
        "seller": {"name": tenant.name, "address": tenant.address, "tax_id": tenant.tax_id},
        "customer": {"id": "C-1", "name": "Jordan Example", "email": "jordan@example.com", "phone": "+14075550100"},
        "job": {"id": "J-1", "number": "1001", "summary": "Replaced capacitor.", "technician": "Sam Tech",
                "po_number": None},
        "total": Decimal("251.10"), "pay_url": "https://pay.example.com/i/sample",
    }


def check_tenant(tenant: Tenant, slug: str = "sample") -> list[str]:
    """Problems with a tenant's templates and finance addresses, for the startup check."""
    problems = []
    ctx = context(sample_doc(slug, tenant), "https://invoicer.example.com/v1/invoices/1.pdf?signature=x", True)
    for kind in (*KINDS, *sorted(set(tenant.templates) - set(KINDS))):
        for field in FIELDS:
            try:
                render(tenant, kind, field, ctx)
            except TemplateError as exc:
                problems.append(f"templates.{kind}.{field}: does not render: {type(exc).__name__}: {exc}")
    for i, address in enumerate(tenant.channels.finance_emails):
        if email_address(address)[1]:
            problems.append(f"channels.finance_emails.{i}: not a valid email address")
    return problems


# ---------------------------------------------------------------- recipients

def email_address(value: str | None) -> tuple[str | None, str | None]:
    """(normalised address, None) or (None, why it cannot be used). No DNS look-up."""
    if not value or not str(value).strip():
        return None, "customer has no email address"
    try:
        return validate_email(str(value).strip(), check_deliverability=False).normalized, None
    except EmailNotValidError as exc:
        return None, f"invalid email address: {exc}"


def phone_number(value: str | None, region: str | None) -> tuple[str | None, str | None]:
    """(E.164 number, None) or (None, why it cannot be used)."""
    if not value or not str(value).strip():
        return None, "customer has no phone number"
    try:
        number = phonenumbers.parse(str(value), region)
    except phonenumbers.NumberParseException as exc:
        return None, f"invalid phone number: {exc}"
    if not phonenumbers.is_valid_number(number):
        return None, f"invalid phone number for region {region or 'unknown'}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def region(doc: dict, tenant: Tenant) -> str | None:
    """Where a phone number without a country code is from."""
    customer = doc["customer"]
    for address in (customer.get("billing_address"), doc.get("service_address")):
        if address and address.get("country"):
            return address["country"]
    try:
        return Locale.parse(tenant.locale).territory
    except (ValueError, TypeError):
        return None


def customer_contact(doc: dict, tenant: Tenant, kind: str) -> tuple[str | None, str | None]:
    """The customer's address for `kind` (email, sms), or (what was given, why it cannot be used)."""
    raw = doc["customer"].get("email" if kind == "email" else "phone")
    if kind == "email":
        recipient, reason = email_address(raw)
    else:
        recipient, reason = phone_number(raw, region(doc, tenant))
    return recipient or (str(raw)[:320] if raw else None), reason


def slack_target(tenant: Tenant) -> str:
    return str(tenant.channels.slack.model_dump().get("channel") or "webhook")


def plan(doc: dict, tenant: Tenant) -> list[tuple]:
    """(kind, target, provider, recipient, skipped_reason) for every message this invoice needs.

    A missing or invalid contact skips that channel with a recorded reason; it never fails the job."""
    channels = tenant.channels
    out = []
    for kind in channels.customer:
        out.append((kind, "customer", getattr(channels, kind).provider, *customer_contact(doc, tenant, kind)))
    for address in channels.finance_emails:
        out.append(("email", "finance", channels.email.provider, email_address(address)[0] or address, None))
    if channels.slack is not None:
        out.append(("slack", "finance", channels.slack.provider, slack_target(tenant), None))
    return out


def channel_options(tenant: Tenant, kind: str) -> dict:
    channel = getattr(tenant.channels, kind)
    return channel.model_dump() if channel is not None else {}


# ---------------------------------------------------------------- SMS segments

_GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXT = set("^{}\\[~]|€\f")  # two septets each (escape + char)


def segments(text: str) -> dict:
    """How an SMS of this text is sent: GSM-7 (160 a message, 153 a part) when every character is in
    the GSM 03.38 alphabet, else UCS-2 (70, 67 a part; characters outside the BMP take two units)."""
    if all(c in _GSM7 or c in _GSM7_EXT for c in text):
        units = sum(2 if c in _GSM7_EXT else 1 for c in text)
        single, part, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "UCS-2"
    count = 1 if units <= single else math.ceil(units / part)
    return {"encoding": encoding, "units": units, "segments": count}


# ---------------------------------------------------------------- one message

def link(pdf_row) -> str | None:
    """The signed link to the stored PDF, valid INVOICER_PDF_LINK_TTL (30 days) from when it was rendered; the same on every
    retry (so a resent text is the same text, and a vendor look-up can match it)."""
    cfg = settings()
    if pdf_row is None or pdf_row.status != "done" or not cfg.secret_key:
        return None
    rendered = pdf_row.updated_at or datetime.now(timezone.utc)
    return documents.sign_link(cfg.public_url, cfg.secret_key, pdf_row.invoice_id, cfg.pdf_link_ttl,
                               now=rendered.timestamp())


def compose(row, doc: dict, tenant: Tenant, pdf_row, var_dir: Path, kind: str | None = None,
            pdf_url: str | None = None) -> Message:
    """The message for one delivery row: its template rendered, the PDF attached where it should be;
    `pdf_url` stands in for our signed link (a filing platform's own link, Drive `link_in_messages`)."""
    kind = kind or ("invoice" if row.target == "customer" else "finance")
    url = pdf_url or link(pdf_row)
    attachment = None
    if row.kind == "email" and pdf_row is not None and (pdf_row.detail or {}).get("path") \
            and kind in ("invoice", "finance") and (row.target == "finance" or tenant.channels.pdf == "attach"):
        attachment = (f"{doc['number']}.pdf", documents.storage().get(doc["tenant"], pdf_row.detail["path"]))
    ctx = context(doc, url, attached=attachment is not None)
    data = {"tenant": doc["tenant"], "customer": doc["customer"]["name"], "job": doc["job"]["number"],
            "number": doc["number"], "total": ctx["invoice"]["total"], "due": ctx["invoice"]["due"],
            "pdf_url": url, "pay_url": doc.get("pay_url"), "kind": kind}
    common = dict(key=row.idempotency_key, to=row.recipient or "", tenant=doc["tenant"], data=data,
                  delivery_id=row.id)
    if row.kind == "sms":
        return Message(subject="", text=render(tenant, kind, "sms", ctx), **common)
    if row.kind == "slack":
        return Message(subject=render(tenant, kind, "subject", ctx), text=render(tenant, kind, "slack", ctx),
                       **common)
    return Message(subject=render(tenant, kind, "subject", ctx), text=render(tenant, kind, "text", ctx),
                   html=render(tenant, kind, "html", ctx), attachment=attachment, **common)


def preview(slug: str, tenant: Tenant, kind: str, doc: dict | None = None) -> dict:
    """Every field of one message kind rendered for a sample (or given) invoice, with SMS segments."""
    doc = doc or sample_doc(slug, tenant)
    ctx = context(doc, "https://invoicer.example.com/v1/invoices/1.pdf?expires=1767225600&signature=sample",
                  attached=kind != "reminder")
    out = {field: render(tenant, kind, field, ctx) for field in FIELDS}
    out["sms_segments"] = segments(out["sms"])
    return out
