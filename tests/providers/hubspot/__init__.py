"""Helpers for the HubSpot provider tests: canonical invoices without a database, tenant options."""
from __future__ import annotations

from datetime import datetime, timezone

from invoicer.config import load_tenants
from invoicer.models import Event
from invoicer.pipeline import document
from tests.conftest import make_event
from tests.providers import TENANTS

ISSUED = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
PORTAL = "24681357"


def make_doc(number: str = "ACME-1001", job_id: str = "J-1", customer: dict | None = None, pdf_link: str | None = None,
             **job_changes) -> dict:
    """The canonical invoice of tests.conftest.make_event: 200.00 labour + 50.00 material (taxed) + 25.00 fee,
    10 % off (27.50), 8 % tax on the discounted material (3.60): total 251.10 USD."""
    event = make_event(job_id=job_id, **job_changes)
    if customer:
        event["customer"].update(customer)
    tenants = load_tenants(str(TENANTS))
    doc = document(Event.model_validate(event), "acme-hvac", tenants["acme-hvac"], number, ISSUED,
                   event["job"]["payment_terms_days"])
    if pdf_link:
        doc["pdf"] = {"filename": f"{number}.pdf", "data": b"%PDF-1.4", "link": pdf_link, "sha256": "0" * 64}
    return doc


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "hubspot", "portal_id": PORTAL}
    if url:
        out.update(base_url=url, token_url=f"{url}/oauth/v1/token")
    out.update(extra)
    return out
