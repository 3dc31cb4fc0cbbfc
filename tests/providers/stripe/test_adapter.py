"""The Stripe adapter over real HTTP against StripeSimulator, with the real database (refs) and Redis (limits)."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.simulate import Running
from invoicer.providers.stripe.adapter import Stripe
from invoicer.providers.stripe.simulator import StripeSimulator

from . import doc_for

KEY = "sk_test_51SimulatedKeyForInvoicerTests"
LIVE_KEY = "sk_live_51SimulatedLiveKeyForInvoicer"


@pytest.fixture
def env(monkeypatch, clean):
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY)


@pytest.fixture(scope="module")
def served():
    with Running(StripeSimulator(api_keys=(KEY, LIVE_KEY))) as running:
        yield running


@pytest.fixture
def sim(env, served):
    served.sim.reset()  # one server for the module (stopping one takes a poll interval), fresh state per test
    return served


def provider(running, tmp_path, attempt: int = 1, **options) -> Stripe:
    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="payments")
    return Stripe({"provider": "stripe", "api_key_env": "STRIPE_SECRET_KEY", "base_url": running.url, **options}, ctx)


def posts(running, path: str) -> list:
    return [r for r in running.sim.received if r.method == "POST" and r.path == path]


def test_registered_with_its_capabilities():
    cls = registry.get("stripe")
    assert cls is Stripe
    assert {"create_invoice", "find_invoice", "send_invoice", "payment_status", "parse_webhook",
            "payment_link"} <= cls.capabilities


def test_create_makes_an_open_invoice_whose_total_is_ours(sim, tmp_path):
    doc = doc_for()
    assert doc["total"] == Decimal("251.10")
    created = provider(sim, tmp_path).create_invoice(doc, "k" * 48)
    sent = list(sim.sim.received)

    inv = sim.sim.invoices[created.external_id]
    assert created.external_id.startswith("in_")
    assert inv["status"] == "open" and inv["collection_method"] == "send_invoice"
    assert created.url == inv["hosted_invoice_url"] and created.url.startswith(sim.url)
    assert created.number == inv["number"] and inv["number"].endswith("-0001")
    assert created.detail["our_number"] == "ACME-001001"
    view = requests.get(f"{sim.url}/v1/invoices/{created.external_id}",
                        headers={"Authorization": f"Bearer {KEY}"}, timeout=5).json()
    assert view["total"] == 25110 and view["amount_due"] == 25110 and view["currency"] == "usd"
    assert view["metadata"] == {"invoicer_key": "k" * 48, "invoicer_number": "ACME-001001",
                                "invoicer_tenant": "acme-hvac", "invoicer_job": "J-1"}
    assert [(line["description"], line["amount"]) for line in view["lines"]["data"]] == [
        ("Diagnosis and repair", 20000), ("Run capacitor", 5000), ("Trip charge", 2500),
        ("Member discount (10%)", -2750), ("Tax (FL 8%)", 360)]
    assert requests.get(created.url, timeout=5).status_code == 200  # the pay link works

    customer = sim.sim.customers[inv["customer"]]
    assert customer["metadata"]["invoicer_customer"] == "C-1" and customer["email"] == "huong@example.com"
    ctx = provider(sim, tmp_path).ctx
    assert ctx.refs.get("customer", "C-1") == customer["id"]

    for r in sent:
        assert r.headers["authorization"] == f"Bearer {KEY}"
        assert r.headers["stripe-version"] == "2026-10-28.endive"
        if r.method == "POST":
            assert r.headers["content-type"] == "application/x-www-form-urlencoded"
            assert r.headers["idempotency-key"]
    keys = [r.headers["idempotency-key"] for r in sent if r.method == "POST" and r.path != "/v1/customers"]
    assert keys == ["k" * 48 + ":invoice"] + [f"{'k' * 48}:item:{i}" for i in range(5)] + ["k" * 48 + ":finalize"]
    body = posts(sim, "/v1/invoices")[0].body.decode()
    assert "metadata%5Binvoicer_key%5D=" + "k" * 48 in body and "pending_invoice_items_behavior=exclude" in body


def test_known_customer_is_reused_not_created_again(sim, tmp_path):
    p = provider(sim, tmp_path)
    first = p.create_invoice(doc_for("ACME-001001"), "a" * 48)
    second = p.create_invoice(doc_for("ACME-001002", job_id="J-2"), "b" * 48)
    assert len(posts(sim, "/v1/customers")) == 1
    assert sim.sim.invoices[first.external_id]["customer"] == sim.sim.invoices[second.external_id]["customer"]


def test_customer_found_on_stripe_by_our_id_or_by_email(sim, tmp_path):
    auth = {"Authorization": f"Bearer {KEY}"}
    mine = requests.post(f"{sim.url}/v1/customers", data={"name": "Huong", "metadata[invoicer_customer]": "C-1"},
                         headers=auth, timeout=5).json()
    created = provider(sim, tmp_path).create_invoice(doc_for(), "c" * 48)
    assert sim.sim.invoices[created.external_id]["customer"] == mine["id"]
    assert len(posts(sim, "/v1/customers")) == 1  # only ours above

    by_mail = requests.post(f"{sim.url}/v1/customers", data={"name": "Nine", "email": "nine@example.com"},
                            headers=auth, timeout=5).json()
    doc = doc_for("ACME-001009", job_id="J-9", customer={"id": "C-9", "email": "nine@example.com"})
    created = provider(sim, tmp_path).create_invoice(doc, "d" * 48)
    assert sim.sim.invoices[created.external_id]["customer"] == by_mail["id"]


def test_same_key_twice_returns_the_first_invoice(sim, tmp_path):
    p = provider(sim, tmp_path)
    first = p.create_invoice(doc_for(), "e" * 48)
    again = p.create_invoice(doc_for(), "e" * 48)
    assert again.external_id == first.external_id and again.url == first.url
    assert len(sim.sim.invoices) == 1 and len(sim.sim.items) == 5
    assert any(r.path == "/v1/invoices" and r.method == "POST" for r in sim.sim.received)


def test_dropped_item_then_lookup_continues_the_draft(sim, tmp_path):
    doc, key = doc_for(), "f" * 48
    sim.sim.fault_on("POST", "/v1/invoiceitems", "drop")  # the first item lands, its answer is lost
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, key)
    (draft,) = sim.sim.invoices.values()
    assert draft["status"] == "draft" and len(sim.sim.items) == 1

    retry = provider(sim, tmp_path, attempt=2)
    found = retry.find_invoice(doc, key)  # what the pipeline does first on attempt 2
    assert found is not None and found.external_id == draft["id"]
    assert len(sim.sim.invoices) == 1 and len(sim.sim.items) == 5  # item 0 not added twice
    assert draft["status"] == "open" and found.url == draft["hosted_invoice_url"]


def test_dropped_invoice_create_is_found_even_when_search_lags(sim, tmp_path):
    doc, key = doc_for(), "g" * 48
    sim.sim.search_lag = 3600  # Stripe's search does not see the new invoice yet
    sim.sim.fault_on("POST", "/v1/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, key)
    assert len(sim.sim.invoices) == 1 and not sim.sim.items

    found = provider(sim, tmp_path, attempt=2).find_invoice(doc, key)
    assert found is not None and len(sim.sim.invoices) == 1 and len(sim.sim.items) == 5
    assert sim.sim.invoices[found.external_id]["status"] == "open"


def test_dropped_finalize_then_create_again_replays_without_duplicates(sim, tmp_path):
    doc, key = doc_for(), "h" * 48
    sim.sim.fault_on("POST", r"/v1/invoices/[^/]+/finalize", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, key)
    created = provider(sim, tmp_path, attempt=2).create_invoice(doc, key)  # no lookup: keys replay
    assert len(sim.sim.invoices) == 1 and len(sim.sim.items) == 5
    assert sim.sim.invoices[created.external_id]["status"] == "open"


def test_find_returns_none_when_nothing_was_made(sim, tmp_path):
    assert provider(sim, tmp_path, attempt=2).find_invoice(doc_for(), "i" * 48) is None


def test_429_with_retry_after_raises_rate_limited(sim, tmp_path):
    sim.sim.retry_after = "7"
    sim.sim.inject("429")
    with pytest.raises(RateLimited) as err:
        provider(sim, tmp_path).create_invoice(doc_for(), "j" * 48)
    assert err.value.retry_after == 7.0 and "rate_limit" in str(err.value)
    assert not sim.sim.invoices


def test_429_without_retry_after_leaves_the_backoff_to_us(sim, tmp_path):
    sim.sim.inject("429")
    with pytest.raises(RateLimited) as err:
        provider(sim, tmp_path).payment_status("in_missing")
    assert err.value.retry_after is None


def test_5xx_is_unavailable_and_a_retry_succeeds(sim, tmp_path):
    doc, key = doc_for(), "k" * 48
    sim.sim.fault_on("POST", r"/v1/invoices/[^/]+/finalize", "500")
    with pytest.raises(Unavailable):
        provider(sim, tmp_path).create_invoice(doc, key)
    created = provider(sim, tmp_path, attempt=2).create_invoice(doc, key)
    assert sim.sim.invoices[created.external_id]["status"] == "open" and len(sim.sim.invoices) == 1


def test_api_error_is_unavailable_but_should_retry_false_is_not(sim, tmp_path):
    sim.sim.fail_with(500, "An unknown error occurred", type="api_error")
    with pytest.raises(Unavailable) as err:
        provider(sim, tmp_path).payment_status("in_x")
    assert "api_error" in str(err.value)

    sim.sim.fail_with(500, "Replayed error", type="api_error", should_retry="false")
    with pytest.raises(Rejected) as err:
        provider(sim, tmp_path).payment_status("in_x")
    assert "Stripe-Should-Retry: false" in str(err.value)


def test_old_style_400_rate_limit_is_rate_limited(sim, tmp_path):
    sim.sim.fail_with(400, "Too many requests", type="invalid_request_error", code="rate_limit")
    with pytest.raises(RateLimited):
        provider(sim, tmp_path).payment_status("in_x")


def test_bad_key_missing_key_and_missing_option(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_wrong0000000000")
    with pytest.raises(AuthFailed) as err:
        provider(sim, tmp_path).create_invoice(doc_for(), "l" * 48)
    assert "Invalid API Key provided" in str(err.value) and "wrong0000000000" not in str(err.value)
    monkeypatch.delenv("STRIPE_SECRET_KEY")
    with pytest.raises(AuthFailed, match="STRIPE_SECRET_KEY"):
        provider(sim, tmp_path).create_invoice(doc_for(), "l" * 48)
    with pytest.raises(MappingMissing, match="api_key_env"):
        provider(sim, tmp_path, api_key_env=None).create_invoice(doc_for(), "l" * 48)
    assert not sim.sim.invoices


def test_permanent_400_is_rejected(sim, tmp_path):
    p = provider(sim, tmp_path)
    p.ctx.refs.put("customer", "C-1", "cus_deleted_on_stripe")
    with pytest.raises(Rejected) as err:
        p.create_invoice(doc_for(), "m" * 48)
    assert "resource_missing" in str(err.value) and "No such customer" in str(err.value)


def test_same_key_with_other_parameters_is_rejected(sim, tmp_path):
    p = provider(sim, tmp_path)
    p.create_invoice(doc_for(), "n" * 48)
    with pytest.raises(Rejected) as err:
        p.create_invoice(doc_for(summary="Something else entirely."), "n" * 48)
    assert "idempotency_error" in str(err.value)
    assert len(sim.sim.invoices) == 1


def test_a_total_that_differs_on_stripe_is_rejected_with_both_figures(sim, tmp_path):
    doc, key = doc_for(), "o" * 48
    sim.sim.fault_on("POST", "/v1/invoiceitems", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, key)
    (draft,) = sim.sim.invoices.values()
    requests.post(f"{sim.url}/v1/invoiceitems", headers={"Authorization": f"Bearer {KEY}"}, timeout=5,
                  data={"customer": draft["customer"], "invoice": draft["id"], "amount": "100",
                        "description": "Added by hand on Stripe"}).raise_for_status()
    with pytest.raises(Rejected) as err:
        provider(sim, tmp_path, attempt=2).find_invoice(doc, key)
    assert "25210" in str(err.value) and "25110" in str(err.value)
    assert draft["status"] == "draft"  # never finalised with the wrong total


def test_send_posts_send_once(sim, tmp_path):
    p = provider(sim, tmp_path, send=True)
    created = p.create_invoice(doc_for(), "p" * 48)
    p.send_invoice(created, doc_for(), "p" * 48)
    p.send_invoice(created, doc_for(), "p" * 48)  # a retry: the key replays, Stripe does not send twice
    assert sim.sim.sent == [created.external_id]
    assert posts(sim, f"/v1/invoices/{created.external_id}/send")[0].headers["idempotency-key"] == "p" * 48 + ":send"


def test_zero_total_is_paid_at_finalisation_and_not_sent(sim, tmp_path):
    doc = doc_for(discounts=[{"description": "On the house", "percent": "100"}])
    assert doc["total"] == 0
    p = provider(sim, tmp_path)
    created = p.create_invoice(doc, "q" * 48)
    assert created.detail["status"] == "paid"
    p.send_invoice(created, doc, "q" * 48)
    assert sim.sim.sent == []


def test_payment_status_partial_then_paid(sim, tmp_path):
    p = provider(sim, tmp_path)
    created = p.create_invoice(doc_for(), "r" * 48)
    status = p.payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("0.00"), Decimal("251.10"), False)
    sim.sim.pay(created.external_id, amount=10000)
    status = p.payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("100.00"), Decimal("151.10"), False)
    sim.sim.pay(created.external_id)
    status = p.payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("251.10"), Decimal("0.00"), True)


def test_due_on_receipt_is_one_day_and_said_in_the_memo(sim, tmp_path):
    created = provider(sim, tmp_path).create_invoice(doc_for(terms=0), "s" * 48)
    body = posts(sim, "/v1/invoices")[0].body.decode()
    assert "days_until_due=1" in body
    assert "Payment is due on receipt." in sim.sim.invoices[created.external_id]["description"]


def test_custom_number_when_the_account_allows_it(sim, tmp_path):
    created = provider(sim, tmp_path, custom_number=True).create_invoice(doc_for(), "t" * 48)
    assert created.number == "ACME-001001" == sim.sim.invoices[created.external_id]["number"]


def test_zero_decimal_currency_end_to_end(sim, tmp_path):
    doc = doc_for(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8000",
                                          "taxable": True}],
                  materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"})
    created = provider(sim, tmp_path).create_invoice(doc, "u" * 48)
    view = requests.get(f"{sim.url}/v1/invoices/{created.external_id}",
                        headers={"Authorization": f"Bearer {KEY}"}, timeout=5).json()
    assert doc["total"] == Decimal("13200") and view["total"] == 13200 and view["currency"] == "jpy"


def test_three_decimal_total_not_ending_in_zero_is_rejected_before_any_request(sim, tmp_path):
    doc = doc_for(currency="KWD", labor=[], materials=[], discounts=[],
                  fees=[{"description": "Visit", "amount": "10.005", "taxable": False}])
    with pytest.raises(Rejected, match="multiple of 0.010"):
        provider(sim, tmp_path).create_invoice(doc, "v" * 48)
    assert sim.sim.received == []


def test_limits_follow_the_key_mode_and_account(sim, tmp_path):
    [test], [live] = Stripe.rates(KEY), Stripe.rates(LIVE_KEY)
    assert test.count + test.burst == 25 and live.count + live.burst == 100
    p = provider(sim, tmp_path, stripe_account="acct_123")
    assert p._rate_key(KEY) == provider(sim, tmp_path)._rate_key(KEY)  # the platform key's bucket
    assert provider(sim, tmp_path, account="acme-main")._rate_key(KEY) == "stripe:acme-main"
    p.payment_status(p.create_invoice(doc_for(), "w" * 48).external_id)
    assert all(r.headers.get("stripe-account") == "acct_123" for r in sim.sim.received)
    assert provider(sim, tmp_path)._rate_key(KEY).startswith("stripe:key-") and KEY not in \
        provider(sim, tmp_path)._rate_key(KEY)


def test_simulator_enforces_test_mode_rate_limit_with_stripes_body(sim):
    sim.sim.clock = lambda: 1_800_000_000.0  # every request in the same second
    auth = {"Authorization": f"Bearer {KEY}"}
    answers = [requests.get(f"{sim.url}/v1/invoices", headers=auth, timeout=5) for _ in range(26)]
    assert [a.status_code for a in answers[:25]] == [200] * 25
    assert answers[25].status_code == 429
    assert answers[25].json()["error"]["code"] == "rate_limit"
    assert answers[25].json()["error"]["type"] == "invalid_request_error"
    live = {"Authorization": f"Bearer {LIVE_KEY}"}
    assert requests.get(f"{sim.url}/v1/invoices", headers=live, timeout=5).status_code == 200  # its own bucket


def test_simulator_401_bodies(sim):
    missing = requests.get(f"{sim.url}/v1/invoices", timeout=5)
    assert missing.status_code == 401 and "did not provide an API key" in missing.json()["error"]["message"]
    wrong = requests.get(f"{sim.url}/v1/invoices", headers={"Authorization": "Bearer sk_test_nope12345678"},
                         timeout=5)
    assert wrong.status_code == 401
    assert wrong.json() == {"error": {"message": "Invalid API Key provided: sk_test_************5678",
                                      "type": "invalid_request_error"}}


def test_simulator_idempotency_replay_and_mismatch(sim):
    auth = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "cust-1"}
    first = requests.post(f"{sim.url}/v1/customers", data={"name": "A"}, headers=auth, timeout=5)
    again = requests.post(f"{sim.url}/v1/customers", data={"name": "A"}, headers=auth, timeout=5)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"] != again.headers["Request-Id"]
    sim.sim.in_flight.add((KEY, "cust-2"))  # as if the first request with this key were still running
    busy = requests.post(f"{sim.url}/v1/customers", data={"name": "C"}, timeout=5,
                         headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": "cust-2"})
    assert busy.status_code == 409 and busy.json()["error"]["type"] == "idempotency_error"
    other = requests.post(f"{sim.url}/v1/customers", data={"name": "B"}, headers=auth, timeout=5)
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    unknown = requests.post(f"{sim.url}/v1/customers", data={"nickname": "x"},
                            headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Received unknown parameter: nickname"
    assert len(sim.sim.customers) == 1


def test_pipeline_records_the_pay_link(sim, tmp_path):
    """What pipeline._invoice does with a Stripe platform: find (attempt > 1), create, send."""
    from invoicer.pipeline import _invoice

    class Row:
        target, provider, idempotency_key = "payments", "stripe", "x" * 48

    class Platform:
        def model_dump(self):
            return {"provider": "stripe", "api_key_env": "STRIPE_SECRET_KEY", "base_url": sim.url, "send": True}

    class Tenant:
        platforms = {"payments": Platform()}

    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=2, tenant="acme-hvac", platform="payments")
    result = _invoice(Row, doc_for(), Tenant, ctx)
    inv = sim.sim.invoices[result["external_id"]]
    assert result["url"] == inv["hosted_invoice_url"] and sim.sim.sent == [inv["id"]]
    assert result["detail"]["found_existing"] is False
    json.dumps(result)  # storable as the delivery's detail
