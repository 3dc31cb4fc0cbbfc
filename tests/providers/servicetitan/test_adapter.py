"""The ServiceTitan adapter over real HTTP against ServiceTitanSimulator (which checks every PATCH body against
ServiceTitan's InvoiceUpdateRequest definition), with real PostgreSQL (credentials) and Redis (limiter)."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from invoicer import config
from invoicer.errors import MappingMissing, RateLimited
from invoicer.models import Event
from invoicer.pipeline import document
from invoicer.providers import registry
from invoicer.providers.servicetitan import transform as t
from invoicer.providers.servicetitan.simulator import ServiceTitanSimulator
from invoicer.providers.simulate import Running
from tests.providers.accounting import harness
from tests.providers.servicetitan import options

ServiceTitan = registry.get("servicetitan")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(ServiceTitanSimulator()) as r:
        yield r


@pytest.fixture
def st(clean, running, tmp_path, monkeypatch):
    return harness(running, monkeypatch, tmp_path, ServiceTitan, options)


def doc_for(st, ids, **job_changes) -> dict:
    got = st.provider().fetch(str(ids["job"]))
    parts = t.event_parts(got["job"], got["invoice"], got["customer"], got["contacts"], got["location"], options())
    parts["job"].update(job_changes)
    event = Event.model_validate({"type": "job.completed", "id": "e", "source": "servicetitan", "tenant": "acme-hvac",
                                  "occurred_at": "2026-11-20T15:00:00Z", **parts})
    tenant = config.Tenant.model_validate({"name": "Acme", "platforms": {"books": options()}, "sources": {}})
    return document(event, "acme-hvac", tenant, "ACME-1001", datetime(2026, 11, 20, tzinfo=timezone.utc), 30)


def test_fetches_job_invoice_customer_contacts_and_location_with_app_key_and_token(st):
    ids = st.sim.add_job()
    got = st.provider().fetch(str(ids["job"]))
    assert got["invoice"]["id"] == ids["invoice"] and got["customer"]["name"] == "Kim Lee"
    parts = t.event_parts(got["job"], got["invoice"], got["customer"], got["contacts"], got["location"], options())
    assert parts["customer"]["email"] == "kim@example.com" and parts["customer"]["phone"] == "+18135550177"
    assert parts["job"]["labor"][0] == {"description": "Blower motor labour", "hours": "2", "rate": "95.00",
                                        "taxable": False}
    assert parts["job"]["service_address"]["country"] == "US"
    assert all(r.headers["st-app-key"] == st.sim.app_key for r in st.sim.received if r.path != "/connect/token")
    assert len([r for r in st.sim.received if r.path == "/connect/token"]) == 1  # the token is kept and reused


def test_sets_the_existing_invoices_items_to_ours_and_a_repeat_changes_nothing(st):
    ids = st.sim.add_job(tax="0")  # ServiceTitan had no tax on it; ours (8 % of the material) goes on
    doc = doc_for(st, ids, discounts=[{"description": "Member", "amount": "10.00"}])
    created = st.provider().create_invoice(doc, KEY)
    view = st.sim.view(st.sim.invoices[ids["invoice"]])
    assert created.external_id == str(ids["invoice"]) and Decimal(view["total"]) == doc["total"]
    assert [i["description"] for i in view["items"]] == ["Blower motor labour", "Blower motor", "Discount"]
    again = st.provider().create_invoice(doc, KEY)
    assert again.external_id == created.external_id
    assert len(st.sim.invoices[ids["invoice"]]["_items"]) == 3
    assert st.provider().find_invoice(doc, KEY).external_id == created.external_id


def test_a_job_from_elsewhere_has_no_servicetitan_invoice_to_update(st):
    ids = st.sim.add_job()
    doc = doc_for(st, ids)
    doc["customer"]["external_ids"] = {}
    with pytest.raises(MappingMissing):
        st.provider().create_invoice(doc, KEY)


def test_sixty_calls_a_second_per_app_and_tenant_then_429(st):
    ids = st.sim.add_job()
    st.sim.per_second = 1
    try:
        with pytest.raises(RateLimited):
            for _ in range(3):
                st.provider(rate_per_second=100).fetch(str(ids["job"]))
    finally:
        st.sim.per_second = 60


def test_without_the_app_key_nothing_is_called(st, monkeypatch):
    monkeypatch.delenv("INVOICER_SERVICETITAN_APP_KEY")
    with pytest.raises(MappingMissing, match="INVOICER_SERVICETITAN_APP_KEY"):
        st.provider().fetch("1")
    assert st.sim.received == []
