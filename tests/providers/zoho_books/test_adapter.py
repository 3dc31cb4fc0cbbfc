"""The Zoho Books adapter over real HTTP against ZohoBooksSimulator, with real PostgreSQL (credentials,
refs) and Redis (rate limiter); assertions on Zoho's side (what the simulator stored)."""
from __future__ import annotations

from decimal import Decimal
import pytest
import requests

from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.simulate import Running
from invoicer.providers.zoho_books.simulator import ZohoBooksSimulator
from tests.providers.accounting import calls, harness, pipeline_step
from tests.providers.zoho_books import ORG, make_doc, options

ZohoBooks = registry.get("zoho_books")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(ZohoBooksSimulator((ORG,))) as r:
        yield r


@pytest.fixture
def zoho(clean, running, tmp_path, monkeypatch):
    h = harness(running, monkeypatch, tmp_path, ZohoBooks, options)
    h.org = h.sim.org(ORG)
    return h


def test_create_makes_one_invoice_with_our_total_and_marks_it_sent(zoho):
    doc = make_doc()
    created = zoho.provider().create_invoice(doc, KEY)
    [stored] = zoho.org.invoices.values()
    assert created.external_id == stored["invoice_id"] and created.number == "INV-000001"
    assert stored["total"] == doc["total"] == Decimal("251.10") and stored["tax_total"] == Decimal("3.60")
    assert stored["reference_number"] == "ACME-1001" and stored["status"] == "sent" and not stored["is_emailed"]
    post = calls(zoho.sim, "POST", "/books/v3/invoices")[0]
    assert post.headers["authorization"].startswith("Zoho-oauthtoken ") and post.query["organization_id"] == [ORG]
    assert b"251" not in post.body and b"e+" not in post.body.lower()  # amounts, never a float's total
    [tax] = zoho.org.taxes.values()
    assert tax["tax_percentage"] == Decimal("8") and zoho.ctx.refs.get("tax", "8") == tax["tax_id"]


def test_customer_is_made_once_in_the_invoice_currency_and_remembered(zoho):
    zoho.provider().create_invoice(make_doc(), KEY)
    zoho.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2")
    [contact] = zoho.org.contacts.values()
    assert contact["contact_name"] == "Nguyễn Thị Hương" and contact["currency_code"] == "USD"
    assert contact["email"] == "huong@example.com"
    assert len(calls(zoho.sim, "POST", "/contacts")) == 1 and len(calls(zoho.sim, "GET", "/contacts")) == 1
    assert len(calls(zoho.sim, "GET", "/settings/taxes")) == 1 and len(zoho.org.invoices) == 2


def test_existing_contact_found_by_email_and_a_taken_name_gets_our_id(zoho):
    existing = zoho.sim.add_contact(ORG, contact_name="Huong N", contact_persons=[
        {"email": "HUONG@example.com", "is_primary_contact": True}])
    zoho.provider().create_invoice(make_doc(), KEY)
    assert next(iter(zoho.org.invoices.values()))["customer_id"] == existing["contact_id"]
    zoho.sim.add_contact(ORG, contact_name="Ana Lima")
    zoho.provider().create_invoice(make_doc(number="ACME-2", job_id="J-2",
                                            customer={"id": "C-2", "name": "Ana Lima", "email": None}), "k2")
    assert "Ana Lima (C-2)" in [c["contact_name"] for c in zoho.org.contacts.values()]


def test_jpy_and_kwd_totals_to_the_minor_unit(zoho):
    for cur, number, fees in (("JPY", "J-100", [{"description": "Trip", "amount": "2500", "taxable": True}]),
                              ("KWD", "K-100", [{"description": "Trip", "amount": "12.345", "taxable": True}])):
        doc = make_doc(number=number, job_id=number, currency=cur, fees=fees,
                       labor=[{"description": "Repair", "hours": "1.5", "rate": "8331" if cur == "JPY" else "7.777",
                               "taxable": True}], materials=[],
                       customer={"id": f"C-{cur}", "email": f"{cur.lower()}@example.com", "name": f"Client {cur}"})
        created = zoho.provider().create_invoice(doc, f"key-{cur}")
        stored = zoho.org.invoices[created.external_id]
        assert stored["currency_code"] == cur and stored["total"] == doc["total"], (cur, stored["total"])


def test_dropped_connection_then_lookup_before_retry_creates_nothing_twice(zoho):
    doc = make_doc()
    provider = zoho.provider()
    provider._tax_id(doc)  # customer and tax made first, so the drop hits the invoice create
    provider._contact(doc)
    zoho.sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        provider.create_invoice(doc, KEY)
    assert len(zoho.org.invoices) == 1
    found = zoho.provider(attempt=2).find_invoice(doc, KEY)
    assert found is not None and found.external_id == next(iter(zoho.org.invoices))
    assert zoho.org.invoices[found.external_id]["status"] == "sent"  # the lost answer's mark-as-sent is done now
    assert len(calls(zoho.sim, "POST", "/books/v3/invoices")) == 1


def test_pipeline_step_retried_after_a_lost_answer_makes_one_invoice(zoho, tmp_path):
    doc = make_doc()
    zoho.sim.inject(*[None] * 6, "drop")  # contacts, currencies, contact, taxes, tax, invoice -> mark-sent lost
    with pytest.raises(OutcomeUnknown):
        pipeline_step(options(zoho.url), "zoho_books", KEY, doc, tmp_path, 1)
    result = pipeline_step(options(zoho.url), "zoho_books", KEY, doc, tmp_path, 2)
    assert result["detail"]["found_existing"] is True and len(zoho.org.invoices) == 1


def test_use_our_number_duplicate_resolves_to_the_invoice_already_there(zoho):
    doc = make_doc()
    first = zoho.provider(use_our_number=True).create_invoice(doc, KEY)
    assert first.number == "ACME-1001"
    again = zoho.provider(use_our_number=True).create_invoice(doc, KEY)
    assert again.external_id == first.external_id and len(zoho.org.invoices) == 1


def test_someone_elses_invoice_with_our_number_is_refused(zoho):
    zoho.provider(use_our_number=True).create_invoice(make_doc(), KEY)
    zoho.org.invoices[next(iter(zoho.org.invoices))]["reference_number"] = "theirs"
    with pytest.raises(Rejected, match=r"\[1001\]"):
        zoho.provider(use_our_number=True).create_invoice(make_doc(job_id="J-2"), "k2")


def test_send_true_has_zoho_email_it_once(zoho):
    doc = make_doc()
    created = zoho.provider(send=True).create_invoice(doc, KEY)
    assert zoho.org.invoices[created.external_id]["status"] == "draft"  # not marked: the email sends it
    zoho.provider(send=True).send_invoice(created, doc, KEY)
    zoho.provider(send=True).send_invoice(created, doc, KEY)
    assert zoho.org.emails == [created.external_id] and zoho.org.invoices[created.external_id]["status"] == "sent"
    assert calls(zoho.sim, "POST", "/email")[0].json()["to_mail_ids"] == ["huong@example.com"]


def test_429_is_rate_limited_with_a_minute_wait_and_zoho_error_text(zoho):
    provider = zoho.provider()
    provider._contact(make_doc())
    provider._tax_id(make_doc())
    zoho.sim.inject("429")
    with pytest.raises(RateLimited, match=r"\[44\]") as caught:
        provider.create_invoice(make_doc(), KEY)
    assert caught.value.retry_after == 60 and zoho.org.invoices == {}


def test_daily_cap_is_rate_limited_not_a_failure(zoho):
    zoho.org.quota.day = 1
    with pytest.raises(RateLimited, match=r"\[45\].*per day"):
        zoho.provider().create_invoice(make_doc(), KEY)


def test_expired_token_is_renewed_once_with_the_same_refresh_token(zoho):
    before = zoho.ctx.credentials.get()
    zoho.sim.advance(3601)
    zoho.provider().create_invoice(make_doc(), KEY)
    after = zoho.ctx.credentials.get()
    assert after["access_token"] != before["access_token"] and after["refresh_token"] == before["refresh_token"]
    assert len([r for r in zoho.sim.received if r.path == "/oauth/v2/token"]) == 1


def test_refused_refresh_token_is_auth_failed(zoho):
    zoho.ctx.credentials.put({"access_token": "x", "refresh_token": "revoked", "expires_at": 0})
    with pytest.raises(AuthFailed, match="invalid_code"):
        zoho.provider().create_invoice(make_doc(), KEY)
    assert zoho.org.invoices == {}


def test_validation_error_is_rejected_with_zoho_code(zoho):
    with pytest.raises(Rejected, match=r"\[4\] Invalid value passed for tax_id"):
        zoho.provider(taxes={"8": "no-such-tax"}).create_invoice(make_doc(), KEY)


def test_options_are_checked(zoho):
    assert ZohoBooks.check_options(options(), "books") == []
    assert ZohoBooks.check_options({"provider": "zoho_books", "data_center": "mars"}, "books") == [
        "platforms.books.organization_id: the Zoho Books organisation id is not set",
        "platforms.books.data_center: 'mars' is not one of com, eu, in, com.au, jp, ca, com.cn, sa"]
    with pytest.raises(MappingMissing, match="organization_id"):
        zoho.provider(organization_id="").create_invoice(make_doc(), KEY)
    eu = ZohoBooks({"organization_id": "1", "data_center": "eu"}, None)
    assert eu.api == "https://www.zohoapis.eu/books/v3" and eu.token_url == "https://accounts.zoho.eu/oauth/v2/token"


def test_payment_status_follows_zoho(zoho):
    created = zoho.provider().create_invoice(make_doc(), KEY)
    zoho.sim.pay(created.external_id, Decimal("100.00"))
    status = zoho.provider().payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("100.00"), Decimal("151.10"), False)


def test_simulator_minute_limit_and_auth(zoho):
    token = zoho.sim.grant()["access_token"]
    get = lambda t=token, org=ORG: requests.get(  # noqa: E731
        f"{zoho.url}/books/v3/contacts", params={"organization_id": org},
        headers={"Authorization": f"Zoho-oauthtoken {t}"}, timeout=5)
    assert [get().status_code for _ in range(100)] == [200] * 100
    over = get()
    assert over.status_code == 429 and over.json()["code"] == 44
    zoho.sim.advance(61)
    assert get().status_code == 200
    assert get("nope").json() == {"code": 57, "message": "You are not authorized to perform this operation"}
    assert get(org="other").status_code == 400


def test_a_half_cent_tax_tie_is_settled_with_a_rounding_adjustment(zoho):
    doc = make_doc(materials=[{"sku": "F", "description": "Filter", "quantity": "1", "unit_price": "10.05",
                               "taxable": True}], discounts=[], tax={"rate": "0.10", "jurisdiction": "X"})
    assert doc["tax"]["amount"] == Decimal("1.01")  # 1.005 rounded half-up; the simulator rounds half-even
    created = zoho.provider().create_invoice(doc, KEY)
    stored = zoho.org.invoices[created.external_id]
    assert stored["total"] == doc["total"] and stored["adjustment"] == Decimal("0.01")
    assert stored["tax_total"] == Decimal("1.00")
    assert calls(zoho.sim, "PUT", created.external_id)[0].json()["adjustment_description"] == "Rounding"
    assert len(calls(zoho.sim, "PUT", created.external_id)) == 1 and len(zoho.org.invoices) == 1


def test_send_without_a_customer_email_leaves_the_invoice_standing(zoho):
    doc = make_doc(customer={"email": None})
    created = zoho.provider(send=True).create_invoice(doc, KEY)
    zoho.provider(send=True).send_invoice(created, doc, KEY)  # as QuickBooks: warned, not failed
    assert zoho.org.emails == [] and list(zoho.org.invoices) == [created.external_id]
