"""PayPal provider tests, and the invoice they share (conftest.make_event: 251.10 USD)."""
from datetime import datetime, timezone

from invoicer.config import Tenant
from invoicer.models import Event
from invoicer.pipeline import document
from invoicer.providers import registry

from ...conftest import make_event

registry.all_providers()  # every package registered, whatever order the modules were collected in

TENANT = Tenant(name="Acme Heating & Cooling", platforms={"payments": {"provider": "paypal"}},
                sources={"*": {"unsigned": True}})


def paypal_doc(number: str = "ACME-001001", terms: int = 30, customer: dict | None = None, **job) -> dict:
    """2 h x 100 + 50 + 25, 10% off, 8% FL tax on the capacitor = 251.10 USD, issued 2026-11-02."""
    event = make_event(**job)
    if customer:
        event["customer"].update(customer)
    issued = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
    return document(Event.model_validate(event), "acme-hvac", TENANT, number, issued, terms)
