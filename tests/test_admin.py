"""The operators' side of the ingress: nothing served without credentials but health checks, the
dead-letter admin API, replay, and the Prometheus endpoint."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from invoicer import db
from invoicer.ingress import create_app

from .conftest import ADMIN, make_event, post, wait_for

OPEN = {"/healthz", "/readyz"}
OWN_AUTH = {"/v1/events", "/v1/webhooks/{provider}/{tenant}", "/v1/webhooks/{provider}",  # signatures
            "/v1/hooks/{source}/{tenant}",  # the dispatch systems' own signatures
            "/v1/invoices/{invoice_id}.pdf"}  # signed links


@pytest.fixture
def anonymous(clean):
    with TestClient(create_app()) as c:
        yield c


def test_nothing_but_health_checks_answers_without_credentials(anonymous):
    routes = [(m, r.path) for r in anonymous.app.routes for m in getattr(r, "methods", ()) or ()
              if m in ("GET", "POST") and r.path not in OPEN | OWN_AUTH]
    assert {p for _, p in routes} >= {"/v1/jobs/{tenant}/{job_id}", "/v1/admin/dlq", "/v1/admin/dlq/{delivery_id}",
                                      "/v1/admin/dlq/{delivery_id}/retry", "/v1/admin/dlq/{delivery_id}/discard",
                                      "/v1/admin/review", "/v1/admin/review/{delivery_id}/settle",
                                      "/v1/admin/replay", "/metrics", "/openapi.json"}
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", "1", path)
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = anonymous.request(method, url, headers=headers)
            assert r.status_code == 401, (method, path, r.status_code)
            assert "WWW-Authenticate" in r.headers
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/docs").status_code == 404 and anonymous.get("/redoc").status_code == 404
    # the metrics token and the admin token are not interchangeable
    assert anonymous.get("/metrics", headers=ADMIN).status_code == 401
    assert anonymous.get("/v1/admin/dlq", headers={"Authorization": "Bearer test-metrics-token"}).status_code == 401


def test_without_an_admin_token_configured_the_admin_api_is_closed(clean, monkeypatch):
    monkeypatch.delenv("INVOICER_API_TOKEN")
    from invoicer import config

    config.reset()
    try:
        with TestClient(create_app()) as c:
            r = c.get("/v1/admin/dlq", headers={"Authorization": "Bearer "})
            assert r.status_code == 401 and "INVOICER_API_TOKEN" in r.json()["detail"]
    finally:
        monkeypatch.setenv("INVOICER_API_TOKEN", "test-admin-token")
        config.reset()


def test_openapi_needs_the_token_and_lists_the_admin_api(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/admin/dlq", "/v1/admin/replay"} <= set(spec["paths"])


def test_dead_letters_over_the_api(client, worker):
    post(client, make_event(tenant="broken-co"))
    wait_for(lambda: client.get("/v1/admin/dlq").json()["dead_letters"], 60, what="a dead letter")
    [dead] = client.get("/v1/admin/dlq", params={"tenant": "broken-co"}).json()["dead_letters"]
    assert dead["target"] == "erp" and "does not exist" in dead["last_error"]
    assert client.get("/v1/admin/dlq", params={"tenant": "acme-hvac"}).json()["dead_letters"] == []
    shown = client.get(f"/v1/admin/dlq/{dead['id']}").json()
    assert shown["status"] == "dead" and shown["attempts_made"][0]["error_type"] == "Rejected"
    assert client.get("/v1/admin/dlq/999999").status_code == 404

    r = client.post(f"/v1/admin/dlq/{dead['id']}/retry")
    assert r.status_code == 200 and r.json() == {"retried": dead["id"], "kind": "invoice"}
    wait_for(lambda: client.get("/v1/admin/dlq").json()["dead_letters"], 60, what="dead again")
    audit = client.get("/v1/jobs/broken-co/J-1").json()["audit"]
    assert [a["action"] for a in audit].count("dlq_retry") == 1
    bad = client.post(f"/v1/admin/dlq/{dead['id']}/discard", json={"reason": "  "})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "reason"


def test_replay_redrives_a_failed_event_once_and_checks_its_window(client, worker):
    post(client, make_event())
    wait_for(lambda: client.get("/v1/jobs/acme-hvac/J-1").json().get("state") == "done", 60, what="job")
    # an event that failed on a bug (since fixed): replay applies it again; a finished one stays as it is
    post(client, make_event("evt-2", job_id="J-2"))
    with db.engine().begin() as conn:
        e = db.events.c
        wait_for(lambda: conn.execute(select(e.status).where(e.event_id == "evt-2")).scalar() == "processed", 30,
                 what="evt-2 applied")
        conn.execute(update(db.events).where(e.event_id == "evt-2").values(status="failed", error="KeyError: x"))
    window = {"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    r = client.post("/v1/admin/replay", json=window)
    assert r.status_code == 200, r.text
    assert r.json()["redriven"]["events"] == 1
    with db.engine().connect() as conn:
        wait_for(lambda: conn.execute(select(e.status).where(e.event_id == "evt-2")).scalar() == "processed", 30,
                 what="evt-2 applied again")
    wait_for(lambda: client.get("/v1/jobs/acme-hvac/J-2").json().get("state") == "done", 60, what="J-2 done")
    again = client.post("/v1/admin/replay", json=window).json()["redriven"]
    assert again == {"events": 0, "deliveries": 0, "invoices": 0}
    audit = [a["action"] for a in client.get("/v1/jobs/acme-hvac/J-2").json()["audit"]]
    assert audit.count("event_replayed") == 1 and audit.count("trigger_after_invoicing") == 1
    with db.engine().connect() as conn:
        assert len(conn.execute(select(db.invoices.c.id).join(db.jobs).where(db.jobs.c.job_id == "J-2")).all()) == 1
    bad = client.post("/v1/admin/replay", json={"from": "yesterday", "to": "2020-01-01T00:00:00Z"})
    assert bad.status_code == 422 and [p["field"] for p in bad.json()["detail"]] == ["from"]
    backwards = client.post("/v1/admin/replay", json={"from": window["to"], "to": window["from"]})
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["field"] == "to"


def test_metrics_count_events_by_outcome_and_read_the_queues(client):
    def value(text, name, **labels):
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        m = re.search(rf"^{name}{{{re.escape(want)}}} ([0-9.e+]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    auth = {"Authorization": "Bearer test-metrics-token"}
    before = client.get("/metrics", headers=auth).text
    assert post(client, make_event("evt-m1")).status_code == 202
    assert post(client, make_event("evt-m1")).status_code == 200
    bad = make_event("evt-m2")
    del bad["job"]["currency"]
    assert post(client, bad).status_code == 422
    text = client.get("/metrics", headers=auth).text
    for outcome, reason in (("accepted", ""), ("duplicate", ""), ("rejected", "validation_failed")):
        name = "invoicer_events_total"
        assert value(text, name, outcome=outcome, reason=reason) == value(before, name, outcome=outcome,
                                                                          reason=reason) + 1
    assert value(text, "invoicer_queue_depth", queue="ingest") >= 1  # no worker runs: the event waits
    assert "# TYPE invoicer_event_to_invoice_seconds histogram" in text


def test_a_worker_serves_the_metrics_of_all_its_pool_processes(client, procs):
    import requests

    from .conftest import free_port

    port = free_port()
    procs.worker("--metrics-port", str(port), "--hostname", "metrics@%h", concurrency=2)

    def status():
        try:
            return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code
        except requests.ConnectionError:
            return None

    assert wait_for(status, 30, what="the worker's metrics port") == 401
    for i in range(4):
        assert post(client, make_event(f"evt-w{i}", job_id=f"J-w{i}")).status_code == 202

    def scraped():
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5,
                            headers={"Authorization": "Bearer test-metrics-token"}).text
        m = re.search(r'^invoicer_invoices_created_total\{platform="local"\} ([0-9.]+)$', text, re.M)
        done = re.search(r"^invoicer_event_to_notified_seconds_count ([0-9.]+)$", text, re.M)
        return text if m and done and float(done.group(1)) == 4 else None

    # acme-hvac invoices on two platforms (both the local provider): 8 invoices for 4 jobs
    try:
        text = wait_for(scraped, 90, what="4 jobs done, counted across the pool")
    except AssertionError:
        print(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5,
                           headers={"Authorization": "Bearer test-metrics-token"}).text)
        print([client.get(f"/v1/jobs/acme-hvac/J-w{i}").json().get("state") for i in range(4)])
        raise
    assert re.search(r'^invoicer_invoices_created_total\{platform="local"\} 8\.0$', text, re.M)
    assert re.search(r'^invoicer_event_to_invoice_seconds_count\{platform="local"\} 8\.0$', text, re.M)
