"""Helpers for the DocuSign provider tests: the canonical invoice with a rendered PDF, tenant options."""
from __future__ import annotations

from functools import lru_cache

from invoicer.config import load_tenants
from invoicer.models import Event
from invoicer.pipeline import document
from tests.conftest import make_event
from tests.providers import TENANTS
from tests.providers.hubspot import ISSUED

PDF = b"%PDF-1.7\n% an invoice\n%%EOF\n"


@lru_cache(maxsize=1)
def _tenant():
    return load_tenants(str(TENANTS))["acme-hvac"]  # checked once: loading the file takes most of a second


def make_doc(number: str = "ACME-1001", customer: dict | None = None) -> dict:
    """The canonical invoice of tests.conftest.make_event (251.10 USD, customer huong@example.com), as
    tests.providers.hubspot.make_doc makes it, with its rendered PDF."""
    event = make_event()
    event["customer"].update(customer or {})
    doc = document(Event.model_validate(event), "acme-hvac", _tenant(), number, ISSUED,
                   event["job"]["payment_terms_days"])
    doc["pdf"] = {"filename": f"{number}.pdf", "data": PDF, "link": None, "sha256": "0" * 64}
    return doc


def options(sim, **extra) -> dict:
    return {**sim.platform(sim.url), **extra}


def signing_tenant(monkeypatch, tmp_path, sim) -> None:
    """acme-hvac invoicing on the local ledger and asking its customer to sign on DocuSign (no messages)."""
    from tests.providers.channels import use_tenants

    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {
        "name": "Acme Heating & Cooling", "platforms": {"books": {"provider": "local"},
                                                        "sign": sim.platform(sim.url)},
        "channels": {"customer": [], "finance_emails": []}}})
