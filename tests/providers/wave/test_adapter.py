"""The Wave adapter over real HTTP against WaveSimulator (which executes every GraphQL request against its
schema), with real PostgreSQL and Redis."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.simulate import Running
from invoicer.providers.wave.simulator import BUSINESS, WaveSimulator
from tests.providers.accounting import harness, pipeline_step
from tests.providers.wave import make_doc, options

Wave = registry.get("wave")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(WaveSimulator()) as r:
        yield r


@pytest.fixture
def wave(clean, running, tmp_path, monkeypatch):
    h = harness(running, monkeypatch, tmp_path, Wave, options)
    h.biz = h.sim.business(BUSINESS)
    return h


def ops(sim, name):
    return [r for r in sim.received if r.path == "/graphql/public" and f"{name}(" in r.json()["query"]]


def test_create_approves_and_marks_sent_with_our_total(wave):
    doc = make_doc()
    created = wave.provider().create_invoice(doc, KEY)
    [stored] = wave.biz.invoices.values()
    assert created.external_id == stored["id"] and created.number == "ACME-1001" == stored["invoiceNumber"]
    assert stored["_total"] == doc["total"] and stored["_tax"] == Decimal("3.60") and stored["status"] == "SENT"
    assert stored["lastSentVia"] == "MARKED_SENT" and wave.biz.emails == [] and created.url == stored["viewUrl"]
    create = ops(wave.sim, "invoiceCreate")[0]
    assert create.headers["authorization"].startswith("Bearer ")
    assert create.json()["variables"]["input"]["items"][1]["unitPrice"] == "50.00"  # decimal strings
    assert wave.ctx.refs.get("sales_tax", "8") == "SalesTax:0.08"


def test_customer_made_once_then_remembered(wave):
    wave.provider().create_invoice(make_doc(), KEY)
    wave.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2")
    [customer] = wave.biz.customers.values()
    assert customer["email"] == "huong@example.com" and len(ops(wave.sim, "customerCreate")) == 1
    assert len(ops(wave.sim, "salesTaxes")) == 1


def test_send_true_has_wave_email_it_once(wave):
    doc = make_doc()
    created = wave.provider(send=True).create_invoice(doc, KEY)
    assert wave.biz.invoices[created.external_id]["status"] == "SAVED"
    wave.provider(send=True).send_invoice(created, doc, KEY)
    wave.provider(send=True).send_invoice(created, doc, KEY)
    assert wave.biz.emails == [created.external_id]
    assert ops(wave.sim, "invoiceSend")[0].json()["variables"]["input"]["to"] == ["huong@example.com"]


def test_a_lost_answer_leaves_a_draft_that_the_retry_finishes_without_a_second_invoice(wave, tmp_path):
    doc = make_doc()
    wave.sim.inject(None, None, None, "drop")  # customers, customerCreate, salesTaxes, then invoiceCreate's answer
    with pytest.raises(OutcomeUnknown):
        pipeline_step(options(wave.url), "wave", KEY, doc, tmp_path, 1)
    [draft] = wave.biz.invoices.values()
    assert draft["status"] == "DRAFT"
    result = pipeline_step(options(wave.url), "wave", KEY, doc, tmp_path, 2)
    assert result["detail"]["found_existing"] is True and len(wave.biz.invoices) == 1
    assert draft["status"] == "SENT" and len(ops(wave.sim, "invoiceCreate")) == 1


def test_repeated_create_resolves_to_the_invoice_already_there(wave):
    first = wave.provider().create_invoice(make_doc(), KEY)
    again = wave.provider().create_invoice(make_doc(), KEY)
    assert again.external_id == first.external_id and len(wave.biz.invoices) == 1


def test_a_tax_tie_is_remade_once_with_a_rounding_item(wave):
    doc = make_doc(materials=[{"sku": "F", "description": "Filter", "quantity": "1", "unit_price": "10.05",
                               "taxable": True}], discounts=[], tax={"rate": "0.10", "jurisdiction": "X"})
    created = wave.provider().create_invoice(doc, KEY)
    [stored] = wave.biz.invoices.values()
    assert stored["id"] == created.external_id and stored["_total"] == doc["total"]
    assert stored["_items"][-1]["description"] == "Rounding" and len(ops(wave.sim, "invoiceDelete")) == 1


def test_jpy_and_kwd_totals(wave):
    for cur, rate, fee in (("JPY", "8331", "2500"), ("KWD", "7.777", "12.345")):
        doc = make_doc(number=f"N-{cur}", job_id=f"J-{cur}", currency=cur,
                       labor=[{"description": "Repair", "hours": "1.5", "rate": rate, "taxable": True}], materials=[],
                       fees=[{"description": "Trip", "amount": fee, "taxable": False}],
                       customer={"id": f"C-{cur}", "email": f"{cur}@example.com"})
        created = wave.provider().create_invoice(doc, f"k-{cur}")
        stored = wave.biz.invoices[created.external_id]
        assert stored["_total"] == doc["total"] and stored["currency"]["code"] == cur


def test_missing_mappings_fail_before_any_call(wave):
    with pytest.raises(MappingMissing, match=r"products\.fee"):
        wave.provider(products={"labor": "Product:labor", "material": "Product:material"}).create_invoice(
            make_doc(), KEY)
    assert wave.sim.received == []
    with pytest.raises(MappingMissing, match="no sales tax at 7.5 %"):
        wave.provider().create_invoice(make_doc(tax={"rate": "0.075", "jurisdiction": "X"}), KEY)
    assert Wave.check_options({"provider": "wave"}, "books")[0] == \
        "platforms.books.business_id: the Wave business id is not set"


def test_expired_token_is_renewed_and_the_rotated_refresh_token_stored(wave):
    before = wave.ctx.credentials.get()
    wave.sim.advance(7201)
    wave.provider().create_invoice(make_doc(), KEY)
    after = wave.ctx.credentials.get()
    assert after["refresh_token"] != before["refresh_token"] and len(wave.biz.invoices) == 1


def test_unauthenticated_graphql_answer_is_auth_failed(wave):
    wave.ctx.credentials.put({"access_token": "nope", "refresh_token": "gone", "expires_at": 9e9})
    with pytest.raises(AuthFailed):
        wave.provider().create_invoice(make_doc(), KEY)


def test_a_float_where_wave_wants_a_decimal_string_is_refused_by_the_schema(wave):
    token = wave.sim.grant()["access_token"]
    body = {"query": "mutation($input: InvoiceCreateInput!) { invoiceCreate(input: $input) { didSucceed } }",
            "variables": {"input": {"businessId": BUSINESS, "customerId": "x", "items": [
                {"productId": "Product:fee", "unitPrice": 1.1}]}}}
    answer = requests.post(f"{wave.url}/graphql/public", json=body, timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad_field = {"query": "{ business(id: \"%s\") { invoices { edges { node { totl } } } } }" % BUSINESS}
    answer = requests.post(f"{wave.url}/graphql/public", json=bad_field, timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_429_and_didsucceed_false(wave):
    wave.sim.inject("429")
    with pytest.raises(RateLimited):
        wave.provider().create_invoice(make_doc(), KEY)
    wave.ctx.refs.put("customer", "C-1", "Customer:missing")
    with pytest.raises(Rejected, match=r"input\.customerId: Customer not found \[NOT_FOUND\]"):
        wave.provider().create_invoice(make_doc(), KEY)


def test_payment_status_follows_wave(wave):
    created = wave.provider().create_invoice(make_doc(), KEY)
    wave.sim.pay(created.external_id, Decimal("51.10"))
    status = wave.provider().payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("51.10"), Decimal("200.00"), False)
