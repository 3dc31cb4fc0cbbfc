"""A tenant's invoice branding and layout options (the `branding:` block of the tenants file).

Checked when the tenants file loads, so a wrong colour, a missing logo, an unknown field in a
template or an unknown label fails at start with the key named, not later in a worker.
"""
from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .timezones import iana_zone

HEX = r"^#[0-9A-Fa-f]{6}$"

# What the footer and notes templates may say: {name} placeholders, nothing else.
TEMPLATE_FIELDS = frozenset({"tenant", "number", "issued", "due", "total", "amount_due", "customer", "job_number",
                             "terms", "pay_url"})

# Every printed caption, in English by default; a tenant may reword (or translate) any of them.
# A caption's own placeholders are listed after it; no other may be used.
LABELS: dict[str, tuple[str, frozenset[str]]] = {
    "title": ("INVOICE", frozenset()),
    "number": ("Invoice no.", frozenset()),
    "issued": ("Issued", frozenset()),
    "due": ("Due", frozenset()),
    "amount_due": ("Amount due", frozenset()),
    "tax_id": ("Tax ID", frozenset()),
    "bill_to": ("Bill to", frozenset()),
    "service_address": ("Service address", frozenset()),
    "job": ("Job", frozenset()),
    "job_number": ("Job no.", frozenset()),
    "technician": ("Technician", frozenset()),
    "po_number": ("PO", frozenset()),
    "completed": ("Completed", frozenset()),
    "work_performed": ("Work performed", frozenset()),
    "description": ("Description", frozenset()),
    "quantity": ("Qty", frozenset()),
    "unit_price": ("Unit price", frozenset()),
    "amount": ("Amount", frozenset()),
    "labor": ("Labour", frozenset()),
    "material": ("Materials", frozenset()),
    "fee": ("Fees", frozenset()),
    "hours": ("{hours} h", frozenset({"hours"})),
    "per_hour": ("{rate} / h", frozenset({"rate"})),
    "not_taxable": ("not taxable", frozenset()),
    "subtotal": ("Subtotal", frozenset()),
    "discount_total": ("Discount total", frozenset()),
    "tax": ("Tax {jurisdiction} ({rate})", frozenset({"jurisdiction", "rate"})),
    "total": ("Total", frozenset()),
    "payment_terms": ("Payment terms", frozenset()),
    "due_on_receipt": ("Due on receipt", frozenset()),
    "net": ("Net {days}", frozenset({"days"})),
    "pay_online": ("Pay online", frozenset()),
    "scan_to_pay": ("Scan to pay", frozenset()),
    "signed": ("Signed by {name} at {time}", frozenset({"name", "time"})),
    "notes": ("Notes", frozenset()),
    "page": ("Page {page} of {pages}", frozenset({"page", "pages"})),
}


def placeholders(template: str) -> set[str]:
    """The {names} a template uses; ValueError for a malformed one, a format spec or a conversion."""
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}}}: write placeholders plainly, without ':' or '!'")
        names.add(name)
    return names


def _check_template(template: str | None, allowed: frozenset[str]) -> str | None:
    if template is None:
        return None
    try:
        used = placeholders(template)
    except ValueError as exc:
        raise ValueError(f"not a valid template: {exc}") from None
    unknown = sorted(used - allowed)
    if unknown:
        choices = ", ".join(f"{{{n}}}" for n in sorted(allowed)) or "none"
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed here: {choices}")
    return template


class Show(BaseModel):
    """Which optional parts of the invoice are printed (all of them by default)."""
    model_config = ConfigDict(extra="forbid")
    logo: bool = True
    tax_id: bool = True
    customer_contact: bool = True  # the customer's email and phone under "Bill to"
    service_address: bool = True
    technician: bool = True
    po_number: bool = True
    completed_at: bool = True
    summary: bool = True
    sku: bool = True
    not_taxable: bool = True  # mark lines that carry no tax
    pay_link: bool = True
    qr_code: bool = True
    signature: bool = True
    notes: bool = True


class Branding(BaseModel):
    model_config = ConfigDict(extra="forbid")
    color: str | None = Field(None, pattern=HEX)  # the accent: rules, table header, amount-due band
    text_color: str = Field("#1F2937", pattern=HEX)
    muted_color: str = Field("#6B7280", pattern=HEX)
    logo: str | None = None  # PNG or JPEG; a relative path is taken from the tenants file's folder
    logo_width_mm: float = Field(38, ge=10, le=80)
    logo_max_height_mm: float = Field(20, ge=5, le=40)
    footer: str | None = Field(None, max_length=500)  # a template: {tenant}, {number}, ... see TEMPLATE_FIELDS
    notes: str | None = Field(None, max_length=2000)  # a template, printed under the totals
    timezone: str = "UTC"  # IANA name: completion and signature times are printed in it
    page_size: Literal["auto", "A4", "letter"] = "auto"  # auto: Letter in the US and Canada, A4 elsewhere
    labels: dict[str, str] = {}
    show: Show = Show()

    @field_validator("footer", "notes")
    @classmethod
    def _template(cls, v):
        return _check_template(v, TEMPLATE_FIELDS)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str):
        return iana_zone(v)

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str]):
        for key, text in v.items():
            if key not in LABELS:
                raise ValueError(f"unknown label {key!r}; labels are {', '.join(sorted(LABELS))}")
            try:
                _check_template(text, LABELS[key][1])
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return v

    def label(self, key: str) -> str:
        return self.labels.get(key) or LABELS[key][0]


def check_logo(branding: Branding, base: Path) -> str | None:
    """Resolve the logo path against the tenants file's folder (in place); a problem, or None."""
    if not branding.logo:
        return None
    path = Path(branding.logo).expanduser()
    path = path if path.is_absolute() else (base / path)
    try:
        from PIL import Image

        with Image.open(path) as img:
            if img.format not in ("PNG", "JPEG"):
                return f"branding.logo: {path} is {img.format}, not PNG or JPEG"
            img.verify()
    except FileNotFoundError:
        return f"branding.logo: no file {path}"
    except OSError as exc:
        return f"branding.logo: cannot read {path} as an image ({exc.__class__.__name__})"
    branding.logo = str(path.resolve())
    return None
