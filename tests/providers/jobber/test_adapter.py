"""The Jobber adapter over real HTTP against JobberSimulator (which executes every GraphQL request against
its schema), with real PostgreSQL (credentials) and Redis (limiter)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited
from invoicer.providers import registry
from invoicer.providers.jobber.adapter import API_VERSION
from invoicer.providers.simulate import Running
from invoicer.providers.jobber.simulator import JobberSimulator
from tests.providers.accounting import harness, pipeline_step
from tests.providers.jobber import doc_from_job, options

Jobber = registry.get("jobber")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(JobberSimulator()) as r:
        yield r


@pytest.fixture
def jobber(clean, running, tmp_path, monkeypatch):
    return harness(running, monkeypatch, tmp_path, Jobber, options)


def graphql(sim, name):
    return [r for r in sim.received if r.path == "/api/graphql" and f"{name}(" in r.json()["query"]]


def test_fetches_a_completed_visit_with_its_job_lines_and_client(jobber):
    ids = jobber.sim.add_job()
    jobber.sim.complete_visit(ids["visits"][0], "2026-11-20T15:00:00Z")
    job, visit = jobber.provider().fetch_visit(ids["visits"][0])
    assert job["id"] == ids["job"] and visit["completedAt"] == "2026-11-20T15:00:00Z"
    assert [i["unitPrice"] for i in job["lineItems"]["nodes"]] == [Decimal("90.00"), Decimal("45.50")]
    [request] = jobber.sim.received
    assert request.headers["x-jobber-graphql-version"] == API_VERSION
    assert request.headers["authorization"].startswith("Bearer ")


def test_creates_the_invoice_from_the_job_for_its_client_with_our_total(jobber):
    ids = jobber.sim.add_job()
    jobber.sim.complete_visit(ids["visits"][0])
    doc = doc_from_job(jobber.sim, ids)
    created = jobber.provider().create_invoice(doc, KEY)
    [inv] = jobber.sim.account.invoices.values()
    assert created.external_id == inv["id"] and created.number == "ACME-1001" and created.url == inv["jobberWebUri"]
    assert inv["total"] == doc["total"] == Decimal("184.14") and inv["invoiceStatus"] == "awaiting_payment"
    sent = graphql(jobber.sim, "invoiceCreate")[0].json()["variables"]["input"]
    assert sent["clientId"] == ids["client"] and sent["jobIds"] == [ids["job"]] and sent["markSent"] is True
    assert b'"unitPrice":45.50' in graphql(jobber.sim, "invoiceCreate")[0].body  # exact digits, never a float


def test_mark_sent_false_leaves_a_draft_for_the_tenant_to_send_from_jobber(jobber):
    ids = jobber.sim.add_job()
    jobber.provider(mark_sent=False).create_invoice(doc_from_job(jobber.sim, ids), KEY)
    [inv] = jobber.sim.account.invoices.values()
    assert inv["invoiceStatus"] == "draft"


def test_a_lost_answer_is_found_on_the_retry_not_made_twice(jobber, tmp_path):
    ids = jobber.sim.add_job()
    doc = doc_from_job(jobber.sim, ids)
    jobber.sim.fault_on("POST", "/api/graphql", None)  # the look-up before creating answers normally
    jobber.sim.fault_on("POST", "/api/graphql", "drop")  # invoiceCreate lands, its answer is lost
    with pytest.raises(OutcomeUnknown):
        pipeline_step(options(jobber.url), "jobber", KEY, doc, tmp_path, 1)
    result = pipeline_step(options(jobber.url), "jobber", KEY, doc, tmp_path, 2)
    assert result["detail"]["found_existing"] is True
    assert len(jobber.sim.account.invoices) == 1 and len(graphql(jobber.sim, "invoiceCreate")) == 1


def test_a_retried_create_looks_up_first_and_makes_nothing_new(jobber):
    ids = jobber.sim.add_job()
    doc = doc_from_job(jobber.sim, ids)
    first = jobber.provider().create_invoice(doc, KEY)
    again = jobber.provider().create_invoice(doc, KEY)
    assert again.external_id == first.external_id and len(jobber.sim.account.invoices) == 1


def test_a_customer_from_elsewhere_is_a_mapping_error_before_any_call(jobber):
    ids = jobber.sim.add_job()
    doc = doc_from_job(jobber.sim, ids)
    doc["customer"]["external_ids"] = {}
    with pytest.raises(MappingMissing):
        jobber.provider().create_invoice(doc, KEY)
    assert jobber.sim.received == []


def test_the_query_cost_bucket_throttles_with_the_wait_jobber_reports(jobber):
    ids = jobber.sim.add_job()
    bucket = jobber.sim.account.bucket
    bucket.maximum, bucket.available, bucket.restore = 100.0, 10.0, 5.0
    bucket.at = jobber.sim.now()
    with pytest.raises(RateLimited) as caught:
        jobber.provider().fetch_job(ids["job"])
    assert 10 <= caught.value.retry_after <= 14  # (75 requested - ~10 available) / 5 a second
    jobber.sim.advance(20)
    assert jobber.provider().fetch_job(ids["job"])["id"] == ids["job"]


def test_an_expired_token_is_renewed_once_and_the_rotated_pair_stored(jobber):
    ids = jobber.sim.add_job()
    before = jobber.ctx.credentials.get()
    jobber.sim.advance(3700)  # the access token is dead at Jobber
    with jobber.sim.state:
        jobber.sim.access[before["access_token"]]["expires"] = 0
    jobber.provider().fetch_job(ids["job"])
    after = jobber.ctx.credentials.get()
    assert after["refresh_token"] != before["refresh_token"] and before["refresh_token"] not in jobber.sim.refresh
    assert len(jobber.sim.requests_to("POST", "/api/oauth/token")) == 1


def test_a_spent_refresh_token_asks_a_person_to_reconnect(jobber):
    current = jobber.ctx.credentials.get()
    with jobber.sim.state:
        jobber.sim.refresh.clear()
    jobber.ctx.credentials.put({**current, "expires_at": 0})
    with pytest.raises(AuthFailed, match="connect the Jobber account again"):
        jobber.provider().fetch_job("nope")


def test_an_unpinned_version_is_refused(jobber):
    ids = jobber.sim.add_job()
    with pytest.raises(Exception):
        jobber.provider(api_version="2019-01-01").fetch_job(ids["job"])
