"""The FreshBooks adapter over real HTTP against FreshBooksSimulator, with real PostgreSQL and Redis."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.freshbooks.simulator import FreshBooksSimulator
from invoicer.providers.simulate import Running
from tests.providers.accounting import calls, harness, pipeline_step
from tests.providers.freshbooks import ACCOUNT, make_doc, options

FreshBooks = registry.get("freshbooks")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(FreshBooksSimulator((ACCOUNT,))) as r:
        yield r


@pytest.fixture
def fb(clean, running, tmp_path, monkeypatch):
    h = harness(running, monkeypatch, tmp_path, FreshBooks, options)
    h.acct = h.sim.account(ACCOUNT)
    return h


def test_create_makes_one_invoice_with_our_total_marked_sent(fb):
    doc = make_doc()
    created = fb.provider().create_invoice(doc, KEY)
    [stored] = fb.acct.invoices.values()
    assert created.external_id == str(stored["id"]) and created.number == stored["invoice_number"] == "ACME-1001"
    assert stored["amount"] == {"amount": "251.10", "code": "USD"} and stored["v3_status"] == "sent"
    assert stored["taxes"] == [{"name": "FL", "percent": "8", "amount": "3.60"}] and fb.acct.emails == []
    post = calls(fb.sim, "POST", "/invoices/invoices")[0]
    assert post.path == f"/accounting/account/{ACCOUNT}/invoices/invoices"
    assert post.headers["authorization"].startswith("Bearer ")
    [client] = fb.acct.clients.values()
    assert client["email"] == "huong@example.com" and fb.ctx.refs.get("client", "C-1") == str(client["id"])


def test_existing_client_is_found_by_email_and_remembered(fb):
    fb.sim.account().clients["900"] = {"id": 900, "email": "HUONG@example.com", "vis_state": 0}
    fb.provider().create_invoice(make_doc(), KEY)
    fb.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2")
    assert {i["customerid"] for i in fb.acct.invoices.values()} == {900}
    assert len(calls(fb.sim, "GET", "/users/clients")) == 1 and calls(fb.sim, "POST", "/users/clients") == []


def test_dropped_create_then_lookup_before_retry_creates_nothing_twice(fb, tmp_path):
    doc = make_doc()
    fb.sim.inject(None, None, "drop")  # client lookup, client create, then the create's answer is lost
    with pytest.raises(OutcomeUnknown):
        pipeline_step(options(fb.url), "freshbooks", KEY, doc, tmp_path, 1)
    assert len(fb.acct.invoices) == 1
    result = pipeline_step(options(fb.url), "freshbooks", KEY, doc, tmp_path, 2)
    assert result["detail"]["found_existing"] is True and len(fb.acct.invoices) == 1
    assert next(iter(fb.acct.invoices.values()))["v3_status"] == "sent"  # marked now, as the lost answer would have
    assert len(calls(fb.sim, "POST", "/invoices/invoices")) == 1


def test_a_tax_rounding_difference_is_settled_with_a_rounding_line(fb):
    doc = make_doc(materials=[{"sku": "F", "description": "Filter", "quantity": "1", "unit_price": "10.05",
                               "taxable": True}], discounts=[], tax={"rate": "0.10", "jurisdiction": "X"})
    created = fb.provider().create_invoice(doc, KEY)
    stored = fb.acct.invoices[created.external_id]
    assert stored["amount"]["amount"] == str(doc["total"]) and stored["lines"][-1]["name"] == "Rounding"
    assert stored["lines"][-1]["unit_cost"]["amount"] == "0.01" and len(fb.acct.invoices) == 1


def test_kwd_and_jpy_totals_to_the_minor_unit(fb):
    for cur, rate, fee in (("KWD", "7.777", "12.345"), ("JPY", "8331", "2500")):
        doc = make_doc(number=f"N-{cur}", job_id=f"J-{cur}", currency=cur,
                       labor=[{"description": "Repair", "hours": "1.5", "rate": rate, "taxable": True}], materials=[],
                       fees=[{"description": "Trip", "amount": fee, "taxable": False}])
        created = fb.provider().create_invoice(doc, f"k-{cur}")
        assert fb.acct.invoices[created.external_id]["amount"] == {"amount": str(doc["total"]), "code": cur}


def test_send_true_has_freshbooks_email_it_once(fb):
    doc = make_doc()
    created = fb.provider(send=True).create_invoice(doc, KEY)
    assert fb.acct.invoices[created.external_id]["v3_status"] == "draft"
    fb.provider(send=True).send_invoice(created, doc, KEY)
    fb.provider(send=True).send_invoice(created, doc, KEY)
    assert fb.acct.emails == [created.external_id]
    put = [r for r in calls(fb.sim, "PUT", created.external_id) if b"action_email" in r.body][0]
    assert put.json()["invoice"]["email_recipients"] == ["huong@example.com"]


def test_refresh_rotates_and_the_old_refresh_token_is_dead(fb):
    before = fb.ctx.credentials.get()
    fb.sim.advance(12 * 3600 + 1)
    fb.provider().create_invoice(make_doc(), KEY)
    after = fb.ctx.credentials.get()
    assert after["refresh_token"] != before["refresh_token"] and after["access_token"] != before["access_token"]
    again = requests.post(f"{fb.url}/auth/oauth/token", timeout=5, json={
        "grant_type": "refresh_token", "refresh_token": before["refresh_token"],
        "client_id": fb.sim.client_id, "client_secret": fb.sim.client_secret})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_spent_refresh_token_is_auth_failed(fb):
    fb.ctx.credentials.put({"access_token": "old", "refresh_token": "spent", "expires_at": 0})
    with pytest.raises(AuthFailed, match="invalid_grant"):
        fb.provider().create_invoice(make_doc(), KEY)
    assert fb.acct.invoices == {}


def test_429_waits_a_minute_and_validation_errors_are_rejected(fb):
    fb.sim.inject("429")
    with pytest.raises(RateLimited) as caught:
        fb.provider().create_invoice(make_doc(), KEY)
    assert caught.value.retry_after == 60 and "Too Many Requests" in str(caught.value)
    fb.ctx.refs.put("client", "C-1", "4040")
    with pytest.raises(Rejected, match=r"\[1012\] Client not found\. \(customerid\)"):
        fb.provider().create_invoice(make_doc(), KEY)


def test_account_option_is_required_and_checked(fb):
    assert FreshBooks.check_options(options(), "books") == []
    assert FreshBooks.check_options({"provider": "freshbooks"}, "books") == [
        "platforms.books.account_id: the FreshBooks account id is not set"]
    with pytest.raises(MappingMissing, match="account_id"):
        fb.provider(account_id="").create_invoice(make_doc(), KEY)
    with pytest.raises(AuthFailed) as caught:
        fb.provider(account_id="other").create_invoice(make_doc(), KEY)
    assert caught.value.status == 403


def test_payment_status_follows_freshbooks(fb):
    created = fb.provider().create_invoice(make_doc(), KEY)
    fb.sim.pay(created.external_id, Decimal("251.10"))
    status = fb.provider().payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("251.10"), Decimal("0.00"), True)


def test_simulator_limits_per_account(fb):
    token = fb.sim.grant()["access_token"]
    url = f"{fb.url}/accounting/account/{ACCOUNT}/invoices/invoices"
    answers = [requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code
               for _ in range(61)]
    assert answers[:60] == [200] * 60 and answers[60] == 429
