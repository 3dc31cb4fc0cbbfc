"""ServiceTitan's V2 webhooks at POST /v1/hooks/servicetitan/<tenant> (signature scheme ASSUMED, see
invoicer/providers/servicetitan/webhooks.py): valid, tampered, stale, wrong secret; a redelivery; the fetch
that maps the job and its invoice to a v1 event. Real PostgreSQL and Redis; ServiceTitanSimulator."""
from __future__ import annotations

import json

import pytest

from invoicer import db, hooks
from invoicer.providers.servicetitan.simulator import ServiceTitanSimulator
from invoicer.providers.simulate import Running
from tests.providers.dispatch import hook_api, rows
from tests.providers.servicetitan import use_tenants

URL = "/v1/hooks/servicetitan/acme-hvac"


@pytest.fixture(scope="module")
def running():
    with Running(ServiceTitanSimulator()) as r:
        yield r


@pytest.fixture
def api(clean, running, monkeypatch, tmp_path, published):
    with hook_api(running, monkeypatch, tmp_path, published,
                  lambda: use_tenants(monkeypatch, tmp_path, running.url, running.sim.hmac_key), "books") as c:
        yield c


@pytest.mark.parametrize("spoil", ["tampered", "wrong_secret", "stale"])
def test_a_bad_signature_is_refused_and_changes_nothing(api, spoil):
    ids = api.sim.add_job()
    body, headers = api.sim.webhook("job.completed", ids["job"],
                                    created_on="2026-01-01T00:00:00Z" if spoil == "stale" else None,
                                    secret="another-hmac-key-of-32-characters!!" if spoil == "wrong_secret" else None)
    if spoil == "tampered":
        body = body.replace(str(ids["job"]).encode(), b"999999")
    r = api.post(URL, content=body, headers=headers)
    assert r.status_code == 401 and rows(db.hook_deliveries) == [] and api.published == []


def test_a_signed_job_completed_is_stored_once_and_mapped_to_a_v1_event(api):
    ids = api.sim.add_job()
    body, headers = api.sim.webhook("job.completed", ids["job"], event_id="evt-77")
    assert [api.post(URL, content=body, headers=headers).status_code for _ in range(2)] == [202, 200]
    [hook] = rows(db.hook_deliveries)
    assert hook.delivery_key == "evt-77" and hook.item_id == str(ids["job"])
    event_pk = hooks.process(hook.id)
    [event] = rows(db.events)
    assert event.id == event_pk and event.type == "job.completed" and event.job_id == str(ids["job"])
    v1 = json.loads(event.body)
    assert v1["customer"]["external_ids"] == {"servicetitan": str(ids["customer"])}
    assert [m["description"] for m in v1["job"]["materials"]] == ["Blower motor"] and v1["job"]["tax"]["rate"] == "0.08"
