"""Helpers for the Xero provider tests: canonical invoices without a database, tenant options."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from invoicer.config import load_tenants
from invoicer.models import Event
from invoicer.pipeline import document
from tests.conftest import make_event
from tests.providers import TENANTS

TENANT_ID = "6f1d6b1c-3a52-4f0e-9a63-0c5b8e7a1d01"
ACCOUNTS = {"labor": "200", "material": "260", "fee": "270"}
TAX_TYPES = {"taxable": "OUTPUT", "exempt": "NONE"}
ORG_ACCOUNTS = {"200", "260", "270"}
ORG_TAX_RATES = {"OUTPUT": Decimal("0.08"), "NONE": Decimal("0")}
ISSUED = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)


def make_doc(number: str = "ACME-1001", job_id: str = "J-1", customer: dict | None = None, **job_changes) -> dict:
    """The canonical invoice of tests.conftest.make_event: 200.00 labour + 50.00 material (taxed) + 25.00 fee,
    10 % off (27.50), 8 % tax on the discounted material (3.60): total 251.10 USD."""
    event = make_event(job_id=job_id, **job_changes)
    if customer:
        event["customer"].update(customer)
    tenants = load_tenants(str(TENANTS))
    return document(Event.model_validate(event), "acme-hvac", tenants["acme-hvac"], number, ISSUED,
                    event["job"]["payment_terms_days"])


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "xero", "tenant_id": TENANT_ID, "accounts": dict(ACCOUNTS), "tax_types": dict(TAX_TYPES)}
    if url:
        out.update(base_url=url, token_url=f"{url}/connect/token")
    out.update(extra)
    return out
