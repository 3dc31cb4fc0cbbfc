"""FieldEdge as a trigger only (its webhook scheme and API fields are MODELLED, see
invoicer/providers/fieldedge): the signature (valid, tampered, stale, wrong secret), and a closed work order
invoiced on the tenant's other platform. Real PostgreSQL and Redis; FieldEdgeSimulator."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from invoicer import config, db, hooks, pipeline
from invoicer.providers import registry
from invoicer.providers.fieldedge.simulator import FieldEdgeSimulator
from invoicer.providers.simulate import Running
from tests.providers.dispatch import hook_api, rows

URL = "/v1/hooks/fieldedge/acme-hvac"


@pytest.fixture(scope="module")
def running():
    with Running(FieldEdgeSimulator()) as r:
        yield r


@pytest.fixture
def api(clean, running, monkeypatch, tmp_path, published):
    def tenants():
        monkeypatch.setenv("INVOICER_TEST_FE_SECRET", running.sim.secret)
        tenant = {"name": "Acme", "platforms": {"books": {"provider": "local"}}, "channels": {"customer": ["email"]},
                  "sources": {"fieldedge": {"secret_env": "INVOICER_TEST_FE_SECRET",
                                            "fetch": {"base_url": running.url, "currency": "USD"}}}}
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump({"tenants": {"acme-hvac": tenant}}))
        monkeypatch.setenv("INVOICER_CONFIG", str(path))
        config.reset()

    with hook_api(running, monkeypatch, tmp_path, published, tenants, "fieldedge") as c:
        yield c


def test_fieldedge_is_no_invoice_platform(tmp_path):
    assert registry.get("fieldedge").capabilities == frozenset()
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"tenants": {"x": {"name": "X", "platforms": {"fe": {"provider": "fieldedge"}},
                                                      "sources": {"*": {"unsigned": True}}}}}))
    with pytest.raises(config.ConfigError, match="no invoice platform named 'fieldedge'"):
        config.load_tenants(str(path))


@pytest.mark.parametrize("spoil", ["tampered", "wrong_secret", "stale", "missing"])
def test_a_bad_signature_is_refused_and_changes_nothing(api, spoil):
    wid = api.sim.add_work_order()
    body, headers = api.sim.webhook("WorkOrderClosed", wid,
                                    timestamp="2026-01-01T00:00:00Z" if spoil == "stale" else None,
                                    secret="wrong" if spoil == "wrong_secret" else None)
    if spoil == "tampered":
        body = body.replace(wid.encode(), b"1")
    if spoil == "missing":
        headers.pop("X-FieldEdge-Signature")
    assert api.post(URL, content=body, headers=headers).status_code == 401
    assert rows(db.hook_deliveries) == [] and api.published == []


def test_a_closed_work_order_is_invoiced_on_the_tenants_other_platform(api):
    wid = api.sim.add_work_order()
    body, headers = api.sim.webhook("WorkOrderClosed", wid)
    hook_id = api.post(URL, content=body, headers=headers).json()["hook_id"]
    event_pk = hooks.process(hook_id)
    [event] = rows(db.events)
    v1 = json.loads(event.body)
    assert event.id == event_pk and v1["job"]["tax"]["rate"] == "0.0825" and v1["job"]["technician"]["name"] == "Ana Ruiz"
    assert v1["customer"]["phone"] == "+15125550123"
    assert [kind for kind, _ in pipeline.process_event(event_pk)] == ["invoice"]  # on `books`, the local platform
    [invoice] = rows(db.invoices)
    assert invoice.total == Decimal("156.06")  # 129.00 + 2 x 12.50 + 8.25 % of 25.00
