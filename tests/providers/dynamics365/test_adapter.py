"""The Dynamics 365 Business Central adapter over real HTTP against BusinessCentralSimulator, with real
PostgreSQL (platform refs) and Redis (rate limiter); assertions on Business Central's side."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.dynamics365.simulator import BusinessCentralSimulator
from invoicer.providers.simulate import Running
from tests.providers.dynamics365 import bc_options, on_simulator
from tests.providers.xero import make_doc

Dynamics365 = registry.get("dynamics365")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(BusinessCentralSimulator()) as r:
        yield r


@pytest.fixture
def bc(clean, running, tmp_path, monkeypatch):
    return on_simulator(running, tmp_path, monkeypatch, lambda **extra: bc_options(running.sim, running.url, **extra))


def calls(sim, method=None, suffix=""):
    return [r for r in sim.received if "/api/v2.0/" in r.path and (method is None or r.method == method)
            and r.path.endswith(suffix)]


def only_invoice(sim) -> dict:
    [inv] = sim.invoices.values()
    return inv


def test_create_posts_an_invoice_with_our_total(bc):
    doc = make_doc()
    created = bc.provider().create_invoice(doc, KEY)
    inv = only_invoice(bc.sim)
    assert inv["status"] == "Open" and inv["number"].startswith("PS-INV") and created.number == inv["number"]
    assert created.external_id == inv["id"] and inv["externalDocumentNumber"] == "ACME-1001"
    assert inv["totalAmountIncludingTax"] == doc["total"] == Decimal("251.10") and created.detail["total"] == "251.10"
    assert len(inv["lines"]) == 5 and inv["currencyCode"] == "USD"
    post = calls(bc.sim, "POST", "/salesInvoices")[0]
    assert post.headers["authorization"].startswith("Bearer ") and post.headers["content-type"] == "application/json"
    assert b"e+" not in calls(bc.sim, "POST", "/salesInvoiceLines")[3].body.lower()
    assert bc.sim.sent == []  # send is the tenant's choice, not the default


def test_customer_is_created_once_and_remembered(bc):
    bc.provider().create_invoice(make_doc(), KEY)
    [customer] = bc.sim.customers.values()
    assert customer["displayName"] == "Nguyễn Thị Hương" and customer["email"] == "huong@example.com"
    bc.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), KEY + "2")
    assert len(bc.sim.customers) == 1 and len(calls(bc.sim, "POST", "/customers")) == 1
    assert {i["customerNumber"] for i in bc.sim.invoices.values()} == {customer["number"]}


def test_existing_customer_is_found_by_email(bc):
    existing = bc.sim.add_customer(displayName="Huong N.", email="huong@example.com")
    bc.provider().create_invoice(make_doc(), KEY)
    assert calls(bc.sim, "POST", "/customers") == [] and only_invoice(bc.sim)["customerNumber"] == existing["number"]


def test_a_repeated_create_returns_the_posted_invoice(bc):
    first = bc.provider().create_invoice(make_doc(), KEY)
    again = bc.provider(attempt=2).create_invoice(make_doc(), KEY)
    assert again.external_id == first.external_id and len(bc.sim.invoices) == 1
    assert len(calls(bc.sim, "POST", "/salesInvoices")) == 1


@pytest.mark.parametrize("where", ["header", "line 3", "post"])
def test_a_lost_answer_anywhere_is_finished_by_the_retry_never_doubled(bc, where):
    """The answer to one step never arrives (BC did the work); the retry looks up by externalDocumentNumber,
    finishes the draft where the first try stopped, and posts it once."""
    doc = make_doc()
    bc.sim.add_customer(displayName="Huong", email="huong@example.com")
    # requests before the dropped one: token, lookup, customer by email | header | lines GET, 5 line POSTs | GET
    before = {"header": 3, "line 3": 3 + 1 + 1 + 2, "post": 3 + 1 + 1 + 5 + 1}[where]
    bc.sim.inject(*([""] * before), "drop")
    with pytest.raises(OutcomeUnknown):
        bc.provider().create_invoice(doc, KEY)
    assert len(bc.sim.invoices) == 1
    found = bc.provider(attempt=2).find_invoice(doc, KEY)  # what the pipeline does on attempt 2
    inv = only_invoice(bc.sim)
    assert found.external_id == inv["id"] and inv["status"] == "Open" and len(inv["lines"]) == 5
    assert inv["totalAmountIncludingTax"] == doc["total"]
    assert len(calls(bc.sim, "POST", "/salesInvoices")) == 1
    assert len(calls(bc.sim, "POST", "/Microsoft.NAV.post")) == 1


def test_nothing_found_when_nothing_was_made(bc):
    assert bc.provider(attempt=2).find_invoice(make_doc(), KEY) is None


def test_a_draft_a_person_changed_is_not_touched(bc):
    doc = make_doc()
    bc.sim.add_customer(displayName="Huong", email="huong@example.com")
    bc.sim.inject("", "", "", "", "", "drop")  # header made, first line added, its answer lost
    with pytest.raises(OutcomeUnknown):
        bc.provider().create_invoice(doc, KEY)
    inv = only_invoice(bc.sim)
    inv["lines"][0]["unitPrice"] = Decimal("1.00")
    with pytest.raises(Rejected, match="did not add"):
        bc.provider(attempt=2).find_invoice(doc, KEY)
    assert inv["status"] == "Draft"


def test_tax_codes_mode_lets_bc_compute_tax_when_it_agrees(bc):
    doc = make_doc()
    bc.provider(tax_mode="tax_codes").create_invoice(doc, KEY)
    inv = only_invoice(bc.sim)
    assert inv["discountAmount"] == Decimal("27.50") and inv["totalTaxAmount"] == Decimal("3.60")
    assert inv["totalAmountIncludingTax"] == doc["total"] and inv["status"] == "Open"
    assert calls(bc.sim, "PATCH")[0].headers["if-match"].startswith('W/"')


def test_tax_codes_mode_refuses_to_post_a_total_that_is_not_ours(bc):
    bc.sim.tax_rates["TAXABLE"] = Decimal("0.0825")  # the company's rate is not the job's
    with pytest.raises(Rejected, match="ours is 251.10"):
        bc.provider(tax_mode="tax_codes").create_invoice(make_doc(), KEY)
    assert only_invoice(bc.sim)["status"] == "Draft" and calls(bc.sim, "POST", "/Microsoft.NAV.post") == []


def test_validation_error_is_rejected_with_bcs_message(bc):
    with pytest.raises(Rejected, match="Internal_RecordNotFound: The Item does not exist"):
        bc.provider(lines={"labor": "NOPE", "material": "MAT-GENERAL", "fee": "SVC-FEE"}).create_invoice(
            make_doc(), KEY)


def test_429_raises_rate_limited_with_retry_after(bc):
    bc.sim.inject("429")
    with pytest.raises(RateLimited) as caught:
        bc.provider().create_invoice(make_doc(), KEY)
    assert caught.value.retry_after == 5 and "Application_TooManyRequests" in str(caught.value)
    assert bc.sim.invoices == {}


def test_bcs_own_window_limit_answers_429(bc):
    bc.sim.limit = 3
    try:
        with pytest.raises(RateLimited):
            bc.provider().create_invoice(make_doc(), KEY)
    finally:
        bc.sim.limit = 6000


def test_token_is_cached_and_renewed_once_after_a_401(bc):
    p = bc.provider()
    p.create_invoice(make_doc(), KEY)
    assert bc.sim.token_requests == 1
    bc.sim.expire_tokens()  # revoked early: BC answers 401, a new token is fetched, the call repeated
    assert p.payment_status(only_invoice(bc.sim)["id"]).amount_due == Decimal("251.10")
    assert bc.sim.token_requests == 2


def test_wrong_secret_is_auth_failed(bc, monkeypatch):
    monkeypatch.setenv("INVOICER_DYNAMICS365_CLIENT_SECRET", "wrong")
    with pytest.raises(AuthFailed, match="invalid_client"):
        bc.provider().create_invoice(make_doc(), KEY)


def test_send_emails_once(bc):
    doc = make_doc()
    p = bc.provider(send=True)
    created = p.create_invoice(doc, KEY)
    p.send_invoice(created, doc, KEY)
    bc.provider(attempt=2, send=True).send_invoice(created, doc, KEY)
    assert bc.sim.sent == [{"id": created.external_id, "number": created.number, "to": "huong@example.com"}]


def test_payment_status_follows_payments(bc):
    created = bc.provider().create_invoice(make_doc(), KEY)
    bc.sim.pay(created.external_id, Decimal("251.10"))
    status = bc.provider().payment_status(created.external_id)
    assert status.paid and status.amount_paid == Decimal("251.10")


@pytest.mark.parametrize("currency,rate,price", [("JPY", "11875", "2"), ("KWD", "12.345", "1.005")])
def test_zero_and_three_decimal_currencies_post_to_the_minor_unit(bc, currency, rate, price):
    doc = make_doc(currency=currency, labor=[{"description": "Repair", "hours": "1.5", "rate": rate, "taxable": True}],
                   materials=[{"sku": "X", "description": "Part", "quantity": "3", "unit_price": price,
                               "taxable": True}], fees=[], discounts=[{"description": "Loyal", "percent": "7"}])
    bc.provider().create_invoice(doc, KEY)
    inv = only_invoice(bc.sim)
    assert inv["currencyCode"] == currency and inv["totalAmountIncludingTax"] == doc["total"]


def test_a_namesake_with_another_email_is_not_our_customer(bc):
    bc.sim.add_customer(displayName="Nguyễn Thị Hương", email="someone.else@example.com")
    bc.provider().create_invoice(make_doc(), KEY)
    assert len(bc.sim.customers) == 2
    assert bc.sim.customers[next(reversed(bc.sim.customers))]["email"] == "huong@example.com"
