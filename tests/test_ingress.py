"""POST /v1/events: verify, validate, persist, enqueue; every rejection stores and enqueues nothing."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from invoicer import db

from .conftest import answers, free_port, make_event, post, sign, wait_for


def stored() -> int:
    with db.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(db.events)).scalar_one()


def test_accepts_persists_and_enqueues_once(client, published):
    r = post(client, make_event())
    assert r.status_code == 202
    assert r.json() == {"event_id": "evt-1", "job_id": "J-1", "status_url": "/v1/jobs/acme-hvac/J-1"}
    assert stored() == 1
    assert [s for s, _ in published] == ["invoicer.ingest.process_many"]


def test_same_event_again_is_a_duplicate_and_enqueues_nothing(client, published):
    first = post(client, make_event()).json()
    again = post(client, make_event())
    assert again.status_code == 200
    assert again.json() == {**first, "duplicate": True}
    assert stored() == 1
    assert len(published) == 1


def test_twenty_concurrent_copies_store_one_event(client, published):
    answers = []

    def send():
        answers.append(post(client, make_event()).status_code)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200] * 19 + [202]
    assert stored() == 1
    assert len(published) == 1


def test_same_id_from_another_source_is_another_event(client):
    assert post(client, make_event()).status_code == 202
    other = make_event()
    other["source"] = "portal"
    assert post(client, other).status_code == 202
    assert stored() == 2


def _fields(r):
    return {d["field"]: d["reason"] for d in r.json()["detail"]}


@pytest.mark.parametrize("change, field, reason", [
    (lambda e: e["job"]["labor"][0].update(hours=2.5), "job.labor.0.hours", "not a JSON number with a fraction"),
    (lambda e: e["job"]["materials"][0].update(unit_price="12,50"), "job.materials.0.unit_price", "decimal string"),
    (lambda e: e["job"].pop("currency"), "job.currency", "Field required"),
    (lambda e: e["job"].update(currency="ZZZ"), "job.currency", "not an ISO 4217 currency"),
    (lambda e: e["job"]["fees"][0].update(amount="25.005"), "job.fees.0.amount", "more decimals than USD allows"),
    (lambda e: e["job"]["discounts"][0].update(amount="5"), "job.discounts.0", "exactly one of percent or amount"),
    (lambda e: e.update(type="job.deleted"), "type", "Input should be"),
    (lambda e: e["job"].update(payment_terms_days="30"), "job.payment_terms_days", "valid integer"),
    (lambda e: e["customer"].update(phone="407-555-0100"), "customer.phone", "should match pattern"),
    (lambda e: e.update(occurred_at="yesterday"), "occurred_at", "datetime"),
    (lambda e: e["job"]["labor"][0].update(rate="-5"), "job.labor.0.rate", "greater than or equal to 0"),
])
def test_bad_fields_are_named_with_a_reason(client, published, change, field, reason):
    event = make_event()
    change(event)
    r = post(client, event)
    assert r.status_code == 422, r.text
    fields = _fields(r)
    assert field in fields, fields
    assert reason in fields[field]
    assert stored() == 0 and published == []


def test_several_bad_fields_are_all_reported(client):
    event = make_event()
    event["job"]["labor"][0]["hours"] = 1.5
    event["customer"].pop("name")
    assert set(_fields(post(client, event))) >= {"job.labor.0.hours", "customer.name"}


def test_signed_event_needs_its_signature(client):
    event = make_event(type="job.signed")
    event["job"].pop("signature")
    r = post(client, event)
    assert r.status_code == 422 and "job.signature" in _fields(r)


def test_malformed_json(client, published):
    body = '{"type": "job.completed", "id": '
    r = client.post("/v1/events", content=body, headers=sign(body))
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "body"
    assert stored() == 0 and published == []


def test_not_json_is_415(client, published):
    r = client.post("/v1/events", content="type=job.completed", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert stored() == 0 and published == []


def test_oversized_body_is_413(client, published):
    event = make_event()
    event["job"]["summary"] = "x" * (300 * 1024)
    body = json.dumps(event)
    r = client.post("/v1/events", content=body, headers=sign(body))
    assert r.status_code == 413
    assert stored() == 0 and published == []


def test_unknown_tenant(client):
    r = post(client, make_event(tenant="nobody"))
    assert r.status_code == 422 and "tenant" in _fields(r)


@pytest.mark.parametrize("headers", [
    lambda body: {"content-type": "application/json"},  # unsigned
    lambda body: sign(body, secret="whsec_" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZw=="),  # wrong secret
    lambda body: sign(body, at=time.time() - 6 * 60),  # stale: outside the 5-minute tolerance
    lambda body: sign(body, at=time.time() + 6 * 60),  # from the future
    lambda body: {**sign(body), "webhook-signature": "v1,not-base64!"},  # malformed
    lambda body: sign(body.replace("Orlando", "Tampa")),  # signed another body
])
def test_bad_signature_is_401(client, published, headers):
    body = json.dumps(make_event())
    r = client.post("/v1/events", content=body, headers=headers(body))
    assert r.status_code == 401
    assert stored() == 0 and published == []


def test_replayed_signature_after_tolerance_is_401_and_within_it_a_duplicate(client, published):
    body = json.dumps(make_event())
    headers = sign(body, at=time.time() - 60)
    assert client.post("/v1/events", content=body, headers=headers).status_code == 202
    assert client.post("/v1/events", content=body, headers=headers).status_code == 200  # replay: no new work
    old = sign(body, at=time.time() - 301)
    assert client.post("/v1/events", content=body, headers=old).status_code == 401
    assert stored() == 1 and len(published) == 1


def test_rotated_secrets_any_valid_signature_passes(client):
    body = json.dumps(make_event())
    good = sign(body)
    bad = sign(body, secret="whsec_" + "b2xkIHNlY3JldCBvbGQgc2VjcmV0IG9sZCBzZWNyZXQ=")
    good["webhook-signature"] = f'{bad["webhook-signature"]} {good["webhook-signature"]}'
    assert client.post("/v1/events", content=body, headers=good).status_code == 202


def test_unsigned_only_where_the_config_says_so(client):
    event = make_event(tenant="open-co")
    event["source"] = "portal"
    r = client.post("/v1/events", content=json.dumps(event), headers={"content-type": "application/json"})
    assert r.status_code == 202
    event["source"] = "mobile-app"  # not configured for open-co at all
    r = client.post("/v1/events", content=json.dumps(event), headers={"content-type": "application/json"})
    assert r.status_code == 401


def test_health_ready_and_openapi(client):
    assert client.get("/healthz").json() == {"ok": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "database": "ok", "broker": "ok"}
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"] and "/v1/jobs/{tenant}/{job_id}" in spec["paths"]


def test_unknown_job_is_404(client):
    assert client.get("/v1/jobs/acme-hvac/nope").status_code == 404


def _serve(procs, **env) -> str:
    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    wait_for(lambda: answers(port, "/healthz"), 20, what="ingress")
    return f"http://127.0.0.1:{port}"


def test_event_stays_accepted_when_the_broker_is_down(procs):
    """A broker that does not answer must not lose an accepted event: it is stored and left for the sweep."""
    base = _serve(procs, INVOICER_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    body = json.dumps(make_event())
    r = requests.post(f"{base}/v1/events", data=body, headers=sign(body), timeout=30)
    assert r.status_code == 202
    with db.engine().connect() as conn:
        assert conn.execute(select(db.events.c.status)).scalar_one() == "accepted"
    assert requests.get(f"{base}/readyz", timeout=30).status_code == 503


def test_database_down_is_503_and_nothing_enqueued(procs, redis_client):
    base = _serve(procs, INVOICER_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    body = json.dumps(make_event())
    r = requests.post(f"{base}/v1/events", data=body, headers=sign(body), timeout=30)
    assert r.status_code == 503 and r.headers["retry-after"]
    assert redis_client.llen("ingest") == 0
