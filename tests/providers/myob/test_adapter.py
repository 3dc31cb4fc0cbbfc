"""The MYOB adapter over real HTTP against MyobSimulator, with real PostgreSQL and Redis."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from invoicer import db
from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.myob.simulator import CF, MyobSimulator
from invoicer.providers.simulate import Running
from tests.providers.accounting import calls, harness, pipeline_step
from tests.providers.myob import make_doc, options

Myob = registry.get("myob")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(MyobSimulator()) as r:
        yield r


@pytest.fixture
def myob(clean, running, tmp_path, monkeypatch):
    h = harness(running, monkeypatch, tmp_path, Myob, options)
    h.cf = h.sim.company_file(CF)
    return h


def test_create_uses_the_location_uid_and_our_total(myob):
    doc = make_doc()
    created = myob.provider().create_invoice(doc, KEY)
    [stored] = myob.cf.invoices.values()
    assert created.external_id == stored["UID"] and created.number == "ACME-1001"
    assert stored["TotalAmount"] == doc["total"] == Decimal("252.00") and stored["TotalTax"] == Decimal("4.50")
    post = calls(myob.sim, "POST", "/Sale/Invoice/Service")[0]
    assert post.headers["x-myobapi-key"] == myob.sim.client_id and post.headers["x-myobapi-version"] == "v2"
    assert post.headers["authorization"].startswith("Bearer ")
    [customer] = myob.cf.customers.values()
    assert customer["DisplayID"] == "C-1" and myob.ctx.refs.get("customer", "C-1") == customer["UID"]


def test_existing_customer_is_found_by_card_id(myob):
    myob.provider().create_invoice(make_doc(), KEY)
    with db.engine().begin() as conn:  # forget what we remembered: the card is found by its Card ID
        conn.execute(db.platform_refs.delete())
    myob.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2")
    assert len(myob.cf.customers) == 1 and len(calls(myob.sim, "POST", "/Contact/Customer")) == 1


def test_per_line_tax_rounding_is_settled_with_a_rounding_line(myob):
    doc = make_doc(materials=[{"sku": "A", "description": "Part A", "quantity": "1", "unit_price": "10.05",
                               "taxable": True},
                              {"sku": "B", "description": "Part B", "quantity": "1", "unit_price": "10.05",
                               "taxable": True}], discounts=[])
    assert doc["tax"]["amount"] == Decimal("2.01")  # once on 20.10; MYOB: 1.00 + 1.00 per line (half-even)
    created = myob.provider().create_invoice(doc, KEY)
    stored = myob.cf.invoices[created.external_id]
    assert stored["TotalAmount"] == doc["total"] and stored["Lines"][-1]["Description"] == "Rounding"
    assert stored["Lines"][-1]["Total"] == Decimal("0.01") and stored["RowVersion"] == "2"


def test_lost_location_then_lookup_before_retry_creates_nothing_twice(myob, tmp_path):
    doc = make_doc()
    myob.sim.inject(None, None, None, "drop")  # tax code, customer lookup, customer create; then the sale's answer
    with pytest.raises(OutcomeUnknown):
        pipeline_step(options(myob.url), "myob", KEY, doc, tmp_path, 1)
    assert len(myob.cf.invoices) == 1
    result = pipeline_step(options(myob.url), "myob", KEY, doc, tmp_path, 2)
    assert result["detail"]["found_existing"] is True and len(myob.cf.invoices) == 1
    lookup = calls(myob.sim, "GET", "/Sale/Invoice")[0]
    assert lookup.query["$filter"] == ["Number eq 'ACME-1001'"]


def test_send_true_has_myob_email_it_once(myob):
    doc = make_doc()
    created = myob.provider(send=True).create_invoice(doc, KEY)
    assert myob.cf.invoices[created.external_id]["InvoiceDeliveryStatus"] == "Email"
    myob.provider(send=True).send_invoice(created, doc, KEY)
    myob.provider(send=True).send_invoice(created, doc, KEY)
    assert myob.cf.emails == [created.external_id]
    email = calls(myob.sim, "POST", "/Email")[0].json()
    assert email["To"] == [{"Name": "Nguyễn Thị Hương", "Email": "huong@example.com"}] and email["LayoutType"] == "Service"


def test_over_qps_403_is_sent_again_then_rate_limited_not_auth_failed(myob):
    myob.sim.inject("429")  # the simulator's injected limit answers as MYOB's gateway does: 403 Over Qps
    created = myob.provider().create_invoice(make_doc(), KEY)  # refused once, sent again a second later
    assert list(myob.cf.invoices) == [created.external_id]
    myob.sim.inject("429", "429", "429")
    with pytest.raises(RateLimited, match="OVER_QPS") as caught:
        myob.provider().payment_status(created.external_id)
    assert caught.value.retry_after == 1.0 and caught.value.status == 403


def test_daily_limit_403_waits_for_the_next_day(myob):
    myob.sim.key_quota.day = 0
    with pytest.raises(RateLimited, match="OVER_RATE") as caught:
        myob.provider().create_invoice(make_doc(), KEY)
    assert 0 < caught.value.retry_after <= 86400 and myob.cf.invoices == {}


def test_a_tax_code_at_another_rate_is_refused_before_anything_is_made(myob):
    with pytest.raises(Rejected, match="is 10 %, the job's tax is 8 %"):
        myob.provider().create_invoice(make_doc(tax={"rate": "0.08", "jurisdiction": "X"}), KEY)
    assert myob.cf.invoices == {} and myob.cf.customers == {}


def test_other_currencies_and_long_numbers_are_refused_before_any_call(myob):
    for doc in (make_doc(currency="JPY"), make_doc(currency="KWD"), make_doc(number="ACME-0000001001")):
        with pytest.raises(Rejected):
            myob.provider().create_invoice(doc, KEY)
    assert myob.sim.received == []


def test_validation_error_is_rejected_with_myob_errors(myob):
    myob.ctx.refs.put("customer", "C-1", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(Rejected, match=r"\[4101\] ValidationError: Customer was not found") as caught:
        myob.provider().create_invoice(make_doc(), KEY)
    assert caught.value.status == 400 and myob.cf.invoices == {}


def test_expired_token_is_renewed_once_and_the_rotated_refresh_token_stored(myob):
    before = myob.ctx.credentials.get()
    myob.sim.advance(1201)  # MYOB's 20-minute access token has expired, our clock has not noticed
    myob.provider().create_invoice(make_doc(), KEY)
    after = myob.ctx.credentials.get()
    assert after["refresh_token"] != before["refresh_token"] and len(myob.cf.invoices) == 1
    assert len([r for r in myob.sim.received if r.path == "/oauth2/v1/authorize"]) == 1


def test_spent_refresh_token_is_auth_failed(myob):
    myob.ctx.credentials.put({"access_token": "x", "refresh_token": "spent", "expires_at": 0})
    with pytest.raises(AuthFailed, match="invalid_grant"):
        myob.provider().create_invoice(make_doc(), KEY)


def test_payment_status_and_options(myob):
    created = myob.provider().create_invoice(make_doc(), KEY)
    myob.sim.pay(created.external_id, Decimal("252.00"))
    status = myob.provider().payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("252.00"), Decimal("0.00"), True)
    assert Myob.check_options(options(), "books") == []
    assert "platforms.books.company_file_id: the MYOB company file id is not set" in \
        Myob.check_options({"provider": "myob"}, "books")


def test_simulator_qps_limit_per_api_key(myob):
    token = myob.sim.grant()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "x-myobapi-key": myob.sim.client_id, "x-myobapi-version": "v2"}
    answers = [requests.get(f"{myob.url}/accountright/{CF}/Sale/Invoice", headers=headers, timeout=5)
               for _ in range(9)]
    assert [a.status_code for a in answers[:8]] == [200] * 8
    assert answers[8].status_code == 403 and answers[8].headers["X-Mashery-Error-Code"] == "ERR_403_DEVELOPER_OVER_QPS"
