"""Stripe provider tests, and the invoice they share.

These tests import the Stripe adapter directly; every provider package (at least `local`, which
tests/tenants.yaml uses) is registered first, whatever order the modules were collected in.
"""
from datetime import datetime, timezone
from importlib import import_module

from invoicer.config import Tenant
from invoicer.models import Event
from invoicer.pipeline import document
from invoicer.providers import registry

from ...conftest import make_event

try:
    registry.all_providers()
except Exception:  # noqa: BLE001 - another package failing to import is not this suite's business
    pass
import_module("invoicer.providers.local.adapter")

ISSUED = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
TENANT = Tenant(name="Acme Heating & Cooling", platforms={"payments": {"provider": "stripe"}},
                sources={"*": {"unsigned": True}})


def doc_for(number: str = "ACME-001001", terms: int = 30, customer: dict | None = None, **job) -> dict:
    """The canonical invoice of conftest.make_event(**job): 2 h x 100 + 50 + 25, 10% off, 8% FL tax = 251.10."""
    event = make_event(**job)
    if customer:
        event["customer"].update(customer)
    return document(Event.model_validate(event), "acme-hvac", TENANT, number, ISSUED, terms)
