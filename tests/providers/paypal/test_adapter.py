"""The PayPal adapter over real HTTP against PayPalSimulator, with the real Redis (limits)."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.paypal import adapter as paypal_adapter
from invoicer.providers.paypal.adapter import PayPal
from invoicer.providers.paypal.simulator import PayPalSimulator
from invoicer.providers.simulate import Running

from . import paypal_doc


@pytest.fixture(scope="module")
def served():
    with Running(PayPalSimulator()) as running:
        yield running


@pytest.fixture
def sim(clean, served, monkeypatch):
    for name, value in served.sim.env().items():
        monkeypatch.setenv(name, value)
    served.sim.reset()  # forgets its tokens too
    paypal_adapter._tokens.clear()  # and so do we (test_the_token_is... covers a token PayPal refuses)
    return served


def provider(running, tmp_path, attempt: int = 1, **options) -> PayPal:
    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="payments")
    return PayPal({**running.sim.platform(running.url), **options}, ctx)


def calls(running, method: str, path: str) -> list:
    return [r for r in running.sim.received if r.method == method and r.path == path]


def test_registered_with_its_capabilities_and_options_checked():
    assert registry.get("paypal") is PayPal
    assert {"create_invoice", "find_invoice", "payment_status", "parse_webhook", "payment_link"} <= PayPal.capabilities
    problems = PayPal.check_options({"provider": "paypal", "send": True}, "payments")
    assert len(problems) == 3 and any("client_secret_env" in p for p in problems)
    assert PayPal.check_options({"client_id_env": "A", "client_secret_env": "B"}, "payments") == []


def test_create_sends_and_returns_the_payer_link(sim, tmp_path):
    created = provider(sim, tmp_path).create_invoice(paypal_doc(), "a" * 48)
    inv = sim.sim.invoices[created.external_id]
    assert inv["status"] == "SENT" and inv["amount"]["value"] == "251.10"
    assert inv["amount"]["breakdown"]["item_total"]["value"] == "275.00"
    assert created.url == inv["detail"]["metadata"]["recipient_view_url"] and created.url.startswith(sim.url)
    assert requests.get(created.url, timeout=5).status_code == 200
    assert created.number == "ACME-001001" and created.detail["status"] == "SENT"
    assert sim.sim.emailed == []  # made payable; our own messages carry the link
    [token] = calls(sim, "POST", "/v1/oauth2/token")
    assert token.headers["authorization"].startswith("Basic ") and token.body == b"grant_type=client_credentials"
    [create] = calls(sim, "POST", "/v2/invoicing/invoices")
    assert create.headers["prefer"] == "return=representation"
    assert create.headers["authorization"].startswith("Bearer A21AA")
    assert calls(sim, "POST", f"/v2/invoicing/invoices/{created.external_id}/send")[0].json() == {
        "send_to_recipient": False, "send_to_invoicer": False}


def test_the_token_is_cached_until_it_expires_and_renewed_when_refused(sim, tmp_path):
    p = provider(sim, tmp_path)
    p.create_invoice(paypal_doc(), "b" * 48)
    p.payment_status(next(iter(sim.sim.invoices)))
    assert len(calls(sim, "POST", "/v1/oauth2/token")) == 1
    sim.sim.expire_tokens()  # PayPal refuses the cached one: renewed once, the call goes through
    assert p.payment_status(next(iter(sim.sim.invoices))).amount_due == Decimal("251.10")
    assert len(calls(sim, "POST", "/v1/oauth2/token")) == 2


def test_wrong_client_secret_is_auth_failed(sim, tmp_path, monkeypatch):
    paypal_adapter._tokens.clear()
    monkeypatch.setenv("INVOICER_SANDBOX_PAYPAL_CLIENT_SECRET", "wrong")
    with pytest.raises(AuthFailed, match="invalid_client"):
        provider(sim, tmp_path).create_invoice(paypal_doc(), "c" * 48)
    monkeypatch.delenv("INVOICER_SANDBOX_PAYPAL_CLIENT_SECRET")
    with pytest.raises(AuthFailed, match="INVOICER_SANDBOX_PAYPAL_CLIENT_SECRET"):
        provider(sim, tmp_path).create_invoice(paypal_doc(), "c" * 48)
    with pytest.raises(MappingMissing, match="client_id_env"):
        provider(sim, tmp_path, client_id_env=None).create_invoice(paypal_doc(), "c" * 48)
    assert not sim.sim.invoices


def test_dropped_create_is_found_by_number_and_sent_not_duplicated(sim, tmp_path):
    doc = paypal_doc()
    sim.sim.fault_on("POST", "/v2/invoicing/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, "d" * 48)
    (draft,) = sim.sim.invoices.values()
    assert draft["status"] == "DRAFT"
    found = provider(sim, tmp_path, attempt=2).find_invoice(doc, "d" * 48)
    assert found.external_id == draft["id"] and draft["status"] == "SENT" and len(sim.sim.invoices) == 1
    assert calls(sim, "POST", "/v2/invoicing/search-invoices")[0].json() == {"invoice_number": "ACME-001001"}


def test_create_again_after_a_lost_answer_treats_the_duplicate_number_as_look_it_up(sim, tmp_path):
    doc = paypal_doc()
    sim.sim.fault_on("POST", "/v2/invoicing/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, "e" * 48)
    created = provider(sim, tmp_path, attempt=2).create_invoice(doc, "e" * 48)  # no lookup first
    assert len(sim.sim.invoices) == 1 and sim.sim.invoices[created.external_id]["status"] == "SENT"


def test_dropped_send_then_retry_sends_once(sim, tmp_path):
    doc = paypal_doc()
    sim.sim.fault_on("POST", r"/v2/invoicing/invoices/[^/]+/send", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, "f" * 48)
    (inv,) = sim.sim.invoices.values()
    assert inv["status"] == "SENT"
    found = provider(sim, tmp_path, attempt=2).find_invoice(doc, "f" * 48)
    assert found.url == inv["detail"]["metadata"]["recipient_view_url"]
    assert len(calls(sim, "POST", f"/v2/invoicing/invoices/{inv['id']}/send")) == 1


def test_find_returns_none_when_nothing_was_made(sim, tmp_path):
    assert provider(sim, tmp_path, attempt=2).find_invoice(paypal_doc(), "g" * 48) is None


def test_a_cancelled_invoice_is_not_made_again(sim, tmp_path):
    p = provider(sim, tmp_path)
    created = p.create_invoice(paypal_doc(), "h" * 48)
    sim.sim.cancel(created.external_id)
    with pytest.raises(Rejected, match="cancelled on PayPal"):
        provider(sim, tmp_path, attempt=2).find_invoice(paypal_doc(), "h" * 48)


def test_rate_limit_reached_is_rate_limited(sim, tmp_path):
    p = provider(sim, tmp_path)
    created = p.create_invoice(paypal_doc(), "i" * 48)
    sim.sim.inject("429")
    with pytest.raises(RateLimited, match="RATE_LIMIT_REACHED"):
        p.payment_status(created.external_id)


def test_simulator_enforces_its_rate_with_paypals_body(sim, tmp_path):
    provider(sim, tmp_path).payment_status  # noqa: B018 - a provider needs no call to exist
    token = requests.post(f"{sim.url}/v1/oauth2/token", auth=(sim.sim.client_id, sim.sim.client_secret),
                          data={"grant_type": "client_credentials"}, timeout=5).json()["access_token"]
    sim.sim.clock = lambda: 1_800_000_000.0
    sim.sim.access_tokens[token] = 1_800_000_000.0 + 60
    auth = {"Authorization": f"Bearer {token}"}
    answers = [requests.get(f"{sim.url}/v2/invoicing/invoices/none", headers=auth, timeout=5) for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [404] * 20 and answers[20].status_code == 429
    assert answers[20].json()["name"] == "RATE_LIMIT_REACHED"


def test_a_total_that_differs_on_paypal_is_rejected_and_not_sent(sim, tmp_path):
    doc = paypal_doc()
    sim.sim.fault_on("POST", "/v2/invoicing/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, "j" * 48)
    (draft,) = sim.sim.invoices.values()
    draft["amount"]["value"] = "252.10"  # edited by hand on PayPal
    with pytest.raises(Rejected, match="252.10 USD on PayPal but 251.10"):
        provider(sim, tmp_path, attempt=2).find_invoice(doc, "j" * 48)
    assert draft["status"] == "DRAFT"


def test_email_recipient_makes_paypal_email_it(sim, tmp_path):
    created = provider(sim, tmp_path, email_recipient=True).create_invoice(paypal_doc(), "k" * 48)
    assert sim.sim.emailed == [created.external_id]


def test_payment_status_partial_then_paid(sim, tmp_path):
    p = provider(sim, tmp_path)
    created = p.create_invoice(paypal_doc(), "l" * 48)
    sim.sim.pay(created.external_id, "100.00")
    s = p.payment_status(created.external_id)
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("100.00"), Decimal("151.10"), False)
    sim.sim.pay(created.external_id)
    s = p.payment_status(created.external_id)
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("251.10"), Decimal("0.00"), True)


def test_zero_decimal_currency_end_to_end(sim, tmp_path):
    doc = paypal_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8000",
                                             "taxable": True}],
                     materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"})
    created = provider(sim, tmp_path).create_invoice(doc, "m" * 48)
    assert sim.sim.invoices[created.external_id]["amount"] == {
        "currency_code": "JPY", "value": "13200",
        "breakdown": sim.sim.invoices[created.external_id]["amount"]["breakdown"]}


def test_kwd_is_refused_before_any_request(sim, tmp_path):
    doc = paypal_doc(currency="KWD", labor=[], materials=[], discounts=[],
                     fees=[{"description": "Visit", "amount": "10.005", "taxable": False}])
    with pytest.raises(Rejected, match="KWD"):
        provider(sim, tmp_path).check_invoice(doc)
    with pytest.raises(Rejected, match="KWD"):
        provider(sim, tmp_path).create_invoice(doc, "n" * 48)
    assert sim.sim.received == []


def test_a_create_answered_with_a_link_only_is_read_back(sim, tmp_path):
    sim.sim.honour_prefer = False
    created = provider(sim, tmp_path).create_invoice(paypal_doc(), "o" * 48)
    assert sim.sim.invoices[created.external_id]["status"] == "SENT" and created.url
