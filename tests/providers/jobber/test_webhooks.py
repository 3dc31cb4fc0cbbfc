"""Jobber's webhooks at POST /v1/hooks/jobber/<tenant>: the signature (valid, tampered, stale, wrong secret),
the raw delivery stored once however often Jobber sends it, and the task's fetch that turns it into a v1
event exactly as POST /v1/events would store it. Real PostgreSQL and Redis; Jobber is JobberSimulator."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from invoicer import db, hooks
from invoicer.providers.jobber.simulator import JobberSimulator
from invoicer.providers.simulate import Running
from tests.providers.dispatch import hook_api, rows
from tests.providers.jobber import use_tenants

URL = "/v1/hooks/jobber/acme-hvac"


@pytest.fixture(scope="module")
def running():
    with Running(JobberSimulator()) as r:
        yield r


@pytest.fixture
def api(clean, running, monkeypatch, tmp_path, published):
    with hook_api(running, monkeypatch, tmp_path, published,
                  lambda: use_tenants(monkeypatch, tmp_path, running.url), "jobs") as c:
        yield c


def completed_visit(sim, **kw):
    ids = sim.add_job(**kw)
    sim.complete_visit(ids["visits"][0], "2026-11-20T15:00:00Z")
    return ids


def test_a_signed_visit_complete_is_stored_and_enqueued_once_however_often_it_comes(api):
    ids = completed_visit(api.sim)
    body, headers = api.sim.webhook("VISIT_COMPLETE", ids["visits"][0])
    answers = [api.post(URL, content=body, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 200, 200]
    assert answers[1].json()["duplicate"] is True and answers[1].json()["hook_id"] == answers[0].json()["hook_id"]
    [row] = rows(db.hook_deliveries)
    assert row.body == body.decode() and row.status == "received" and row.topic == "VISIT_COMPLETE"
    assert [name for name, _ in api.published] == ["invoicer.ingest.hook"]
    assert api.sim.received == []  # the answer does not wait for Jobber: the task fetches


@pytest.mark.parametrize("spoil", ["tampered", "wrong_secret", "stale", "missing"])
def test_a_bad_signature_is_refused_and_changes_nothing(api, spoil):
    ids = completed_visit(api.sim)
    occurred = "2026-01-01T00:00:00Z" if spoil == "stale" else None
    body, headers = api.sim.webhook("VISIT_COMPLETE", ids["visits"][0], occurred_at=occurred,
                                    secret="not-the-client-secret" if spoil == "wrong_secret" else None)
    if spoil == "tampered":
        body = body.replace(ids["visits"][0].encode(), b"Z2lkOi8vSm9iYmVyL1Zpc2l0LzE=")
    if spoil == "missing":
        del headers["X-Jobber-Hmac-SHA256"]
    r = api.post(URL, content=body, headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "bad_signature"
    assert rows(db.hook_deliveries) == [] and api.published == []


def test_a_source_the_tenant_does_not_take_is_not_found(api):
    body, headers = api.sim.webhook("VISIT_COMPLETE", "x")
    assert api.post("/v1/hooks/fieldedge/acme-hvac", content=body, headers=headers).status_code == 404
    assert api.post("/v1/hooks/jobber/nobody", content=body, headers=headers).status_code == 404
    assert api.post("/v1/hooks/nosuch/acme-hvac", content=body, headers=headers).status_code == 404
    assert rows(db.hook_deliveries) == []


def test_a_topic_we_do_not_act_on_is_kept_and_not_enqueued(api):
    body, headers = api.sim.webhook("CLIENT_CREATE", "client-1")
    r = api.post(URL, content=body, headers=headers)
    assert r.status_code == 202 and r.json()["ignored"] is True
    [row] = rows(db.hook_deliveries)
    assert row.status == "ignored" and api.published == []


def test_a_signed_body_without_the_event_fields_is_422_naming_the_field(api):
    from invoicer.providers.inbound import sign

    body = json.dumps({"data": {"webHookEvent": {"topic": "VISIT_COMPLETE", "occurredAt": "2026-11-20T15:00:00Z"}}})
    headers = {"X-Jobber-Hmac-SHA256": sign(api.sim.client_secret, body.encode(), "base64")}
    r = api.post(URL, content=body, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "data.webHookEvent.itemId"


def test_the_task_fetches_the_job_and_stores_the_v1_event_linked_to_the_raw_delivery(api):
    ids = completed_visit(api.sim)
    body, headers = api.sim.webhook("VISIT_COMPLETE", ids["visits"][0])
    hook_id = api.post(URL, content=body, headers=headers).json()["hook_id"]
    event_pk = hooks.process(hook_id)
    assert hooks.process(hook_id) is None  # done: a second run of the task does nothing
    [event] = rows(db.events)
    assert event.id == event_pk and event.source == "jobber" and event.type == "job.completed"
    assert event.job_id == ids["job"] and event.status == "accepted"
    v1 = json.loads(event.body)
    assert v1["customer"]["email"] == "pat@example.com" and v1["customer"]["external_ids"] == {"jobber": ids["client"]}
    assert v1["job"]["labor"] == [{"description": "Diagnosis", "hours": "1.5", "rate": "90.00", "taxable": False}]
    assert Decimal(v1["job"]["materials"][0]["unit_price"]) == Decimal("45.50")
    assert v1["job"]["technician"]["name"] == "Sam Ortiz" and v1["job"]["service_address"]["country"] == "US"
    [hook] = rows(db.hook_deliveries)
    assert hook.status == "processed" and hook.event_pk == event_pk
    with db.engine().connect() as conn:
        audit = conn.execute(select(db.audit_log).where(db.audit_log.c.action == "hook_mapped")).one()
    assert audit.event_pk == event_pk and audit.detail["hook_id"] == hook_id
    # the event is the same as one posted to /v1/events: the pipeline maps it like any other
    from invoicer import pipeline

    assert pipeline.process_event(event_pk)  # platform deliveries to start
    with db.engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(db.invoices)).scalar() == 1


def test_one_visit_of_several_keeps_the_draft_current_without_invoicing(api):
    ids = api.sim.add_job(visits=2)
    api.sim.complete_visit(ids["visits"][0], "2026-11-20T15:00:00Z")
    body, headers = api.sim.webhook("VISIT_COMPLETE", ids["visits"][0])
    hooks.process(api.post(URL, content=body, headers=headers).json()["hook_id"])
    [event] = rows(db.events)
    assert event.type == "job.updated"


def test_a_job_jobber_no_longer_has_fails_the_hook_with_the_reason(api):
    body, headers = api.sim.webhook("VISIT_COMPLETE", "Z2lkOi8vSm9iYmVyL1Zpc2l0L2dvbmU=")
    hook_id = api.post(URL, content=body, headers=headers).json()["hook_id"]
    from invoicer.errors import Rejected

    with pytest.raises(Rejected) as caught:
        hooks.process(hook_id)
    hooks.fail(hook_id, caught.value)
    [hook] = rows(db.hook_deliveries)
    assert hook.status == "failed" and "no visit" in hook.error and rows(db.events) == []


def test_the_task_publishes_the_event_or_records_why_it_cannot(api):
    from invoicer.tasks.hooks import process_hook

    ids = completed_visit(api.sim)
    body, headers = api.sim.webhook("VISIT_COMPLETE", ids["visits"][0])
    good = api.post(URL, content=body, headers=headers).json()["hook_id"]
    body, headers = api.sim.webhook("VISIT_COMPLETE", "Z2lkOi8vSm9iYmVyL1Zpc2l0LzQwNA==")
    gone = api.post(URL, content=body, headers=headers).json()["hook_id"]
    process_hook.apply((good,))
    process_hook.apply((gone,))
    assert [name for name, _ in api.published][-1] == "invoicer.ingest.process"
    status = {r.id: r.status for r in rows(db.hook_deliveries)}
    assert status == {good: "processed", gone: "failed"}
    with db.engine().connect() as conn:
        failed = conn.execute(select(db.audit_log).where(db.audit_log.c.action == "hook_failed")).one()
    assert failed.detail["hook_id"] == gone and "Rejected" in failed.detail["error"]


def test_a_hook_whose_task_was_lost_is_found_for_the_sweep(api):
    from datetime import timedelta

    from sqlalchemy import update

    ids = completed_visit(api.sim)
    body, headers = api.sim.webhook("VISIT_COMPLETE", ids["visits"][0])
    hook_id = api.post(URL, content=body, headers=headers).json()["hook_id"]
    assert hooks.stalled(60) == []
    with db.engine().begin() as conn:
        conn.execute(update(db.hook_deliveries).values(received_at=db.utcnow() - timedelta(minutes=5)))
    assert hooks.stalled(60) == [hook_id]
    assert hooks.stalled(60) == []  # just re-driven: not again before its back-off (store.sweep)
    hooks.process(hook_id)
    assert hooks.stalled(60) == []


def test_a_signed_body_that_is_not_an_object_is_422(api):
    from invoicer.providers.inbound import sign

    body = b'["not", "an", "object"]'
    r = api.post(URL, content=body, headers={"X-Jobber-Hmac-SHA256": sign(api.sim.client_secret, body, "base64")})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "body" and rows(db.hook_deliveries) == []
