"""The pure Stripe mapping, over the whole sample corpus and the currency edge cases."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoicer import money
from invoicer.errors import Rejected
from invoicer.providers.stripe import transform as t

from .. import corpus_docs, spec
from . import doc_for

KEY = "0123456789abcdef" * 3


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_corpus_invoice_adds_up_to_its_total_in_minor_units(docs):
    assert len(docs) == 300
    for doc in docs:
        plan = t.plan(doc, KEY)
        total = money.to_minor(doc["total"], doc["currency"])
        assert plan.total == total
        assert sum(t.item_amount(p) for p in plan.items) == total, doc["number"]
        lines = plan.items[:len(doc["lines"])]
        assert [t.item_amount(p) for p in lines] == [money.to_minor(line["amount"], doc["currency"])
                                                     for line in doc["lines"]]
        discounts = [p for p in plan.items if p["metadata"]["invoicer_kind"] == "discount"]
        assert -sum(p["amount"] for p in discounts) == money.to_minor(doc["discount_total"], doc["currency"])
        assert all(p["amount"] < 0 for p in discounts)
        taxes = [p for p in plan.items if p["metadata"]["invoicer_kind"] == "tax"]
        if doc["tax"]["amount"]:
            (tax,) = taxes
            assert tax["amount"] == money.to_minor(doc["tax"]["amount"], doc["currency"])
            assert tax["description"] == f"Tax ({doc['tax']['jurisdiction']} " \
                                         f"{(doc['tax']['rate'] * 100).normalize():f}%)"
        else:
            assert taxes == []


def test_every_item_is_either_an_exact_quantity_times_price_or_an_amount(docs):
    for doc in docs:
        for p in t.plan(doc, KEY).items:
            assert ("amount" in p) != ("unit_amount_decimal" in p)
            if "unit_amount_decimal" in p:
                assert isinstance(p["quantity"], int) and p["quantity"] >= 1
                assert p["unit_amount_decimal"] == p["unit_amount_decimal"].to_integral_value()
            else:
                assert "quantity" not in p and isinstance(p["amount"], int)
            assert p["currency"] == doc["currency"].lower()


def test_invoice_parameters(docs):
    for doc in docs:
        params = t.plan(doc, KEY).invoice
        assert params["collection_method"] == "send_invoice"
        assert params["days_until_due"] == max(1, doc["payment_terms_days"])
        assert params["currency"] == doc["currency"].lower()
        assert params["pending_invoice_items_behavior"] == "exclude"
        assert params["discounts"] == "" and params["automatic_tax"] == {"enabled": False}
        assert params["auto_advance"] is False
        assert params["metadata"]["invoicer_key"] == KEY and params["metadata"]["invoicer_number"] == doc["number"]
        assert "number" not in params
        assert len(params["custom_fields"]) <= 4
        assert all(len(f["name"]) <= 40 and len(f["value"]) <= 140 for f in params["custom_fields"])
        for item in t.plan(doc, KEY).items:
            assert item["metadata"]["invoicer_key"] == KEY
            assert all(len(k) <= 40 and len(v) <= 500 for k, v in item["metadata"].items())


def test_item_indexes_are_stable_and_dense(docs):
    for doc in docs[:20]:
        first, second = t.plan(doc, KEY), t.plan(doc, KEY)
        assert first == second  # the same doc gives the same parameters: idempotency keys replay
        assert [p["metadata"]["invoicer_item"] for p in first.items] == [str(i) for i in range(len(first.items))]


def test_fractional_quantities_keep_their_detail_in_the_description():
    doc = doc_for(labor=[{"description": "Duct sealing", "hours": "3.25", "rate": "85.00", "taxable": True}],
                  materials=[{"sku": "R410A", "description": "Refrigerant", "quantity": "2.5",
                              "unit_price": "18.75", "taxable": True},
                             {"sku": "CAP-1", "description": "Capacitor", "quantity": "2", "unit_price": "50.00",
                              "taxable": True}])
    labor, refrigerant, capacitor = t.plan(doc, KEY).items[:3]
    assert labor == {"amount": 27625, "description": "Duct sealing (3.25 h \u00d7 85.00)", "currency": "usd",
                     "metadata": {"invoicer_key": KEY, "invoicer_item": "0", "invoicer_kind": "labor"}}
    assert refrigerant["amount"] == 4688 and refrigerant["description"] == "Refrigerant (2.5 \u00d7 18.75)"
    assert refrigerant["metadata"]["invoicer_sku"] == "R410A"
    assert (capacitor["quantity"], capacitor["unit_amount_decimal"]) == (2, Decimal(5000))


def test_due_on_receipt_is_one_day_with_a_memo():
    params = t.plan(doc_for(terms=0), KEY).invoice
    assert params["days_until_due"] == 1
    assert params["description"].endswith("Payment is due on receipt.")


def test_custom_number_option():
    params = t.plan(doc_for(), KEY, {"custom_number": True}).invoice
    assert params["number"] == "ACME-001001"
    assert [f["name"] for f in params["custom_fields"]] == ["Job"]
    params = t.plan(doc_for(po_number="PO-77"), KEY).invoice
    assert params["custom_fields"] == [{"name": "Invoice", "value": "ACME-001001"}, {"name": "Job", "value": "1"},
                                       {"name": "PO number", "value": "PO-77"}]


def test_discounts_over_the_subtotal_are_capped_like_the_money_rules():
    doc = doc_for(discounts=[{"description": "Coupon", "amount": "200.00"}, {"description": "Loyalty",
                                                                              "amount": "100.00"}])
    assert doc["discount_total"] == doc["subtotal"] == Decimal("275.00")
    plan = t.plan(doc, KEY)
    discounts = [(p["description"], p["amount"]) for p in plan.items if p["metadata"]["invoicer_kind"] == "discount"]
    assert discounts == [("Coupon", -20000), ("Loyalty", -7500)]
    assert plan.total == 0 == sum(t.item_amount(p) for p in plan.items)


def test_tax_labels():
    assert t.tax_label({"rate": Decimal("0.0825"), "jurisdiction": "TX"}) == "Tax (TX 8.25%)"
    assert t.tax_label({"rate": Decimal("0.08"), "jurisdiction": "FL"}) == "Tax (FL 8%)"
    assert t.tax_label({"rate": Decimal("0.10"), "jurisdiction": ""}) == "Tax (10%)"
    assert t.tax_label({"rate": Decimal("0.2"), "jurisdiction": "GB-VAT"}) == "Tax (GB-VAT 20%)"
    no_tax = doc_for(tax={"rate": "0", "jurisdiction": "OR"})
    assert [p["metadata"]["invoicer_kind"] for p in t.plan(no_tax, KEY).items] == ["labor", "material", "fee",
                                                                                   "discount"]


@pytest.mark.parametrize("currency,value,minor", [
    ("USD", "251.10", 25110), ("JPY", "13200", 13200), ("KRW", "5000", 5000), ("KWD", "10.010", 10010),
    ("BHD", "1.250", 1250), ("ISK", "5", 500), ("HUF", "1200.50", 120050), ("UGX", "3000", 3000),
    ("MGA", "3000.00", 3000), ("EUR", "-0.01", -1),
])
def test_stripe_units(currency, value, minor):
    assert t.to_stripe(Decimal(value), currency) == minor
    assert t.from_stripe(minor, currency.lower()) == Decimal(value)


def test_amounts_stripe_cannot_hold_are_rejected():
    with pytest.raises(Rejected, match="MGA"):
        t.to_stripe(Decimal("10.50"), "MGA")  # ISO: 2 decimals; Stripe: zero-decimal
    with pytest.raises(Rejected):
        t.to_stripe(Decimal("1.5"), "JPY")


def test_zero_decimal_invoice():
    doc = doc_for(currency="JPY", labor=[{"description": "Repair", "hours": "2", "rate": "8000", "taxable": True}],
                  materials=[], fees=[{"description": "Trip", "amount": "1500", "taxable": False}],
                  discounts=[{"description": "Member", "percent": "5"}], tax={"rate": "0.10", "jurisdiction": "JP"})
    plan = t.plan(doc, KEY)
    assert doc["total"] == Decimal("18145") and plan.total == 18145
    assert [t.item_amount(p) for p in plan.items] == [16000, 1500, -875, 1520]
    assert plan.items[0]["unit_amount_decimal"] == Decimal(8000) and plan.invoice["currency"] == "jpy"


def test_three_decimal_total_must_end_in_zero():
    ok = doc_for(currency="KWD", labor=[], materials=[], discounts=[], tax={"rate": "0", "jurisdiction": "KW"},
                 fees=[{"description": "Visit", "amount": "10.001", "taxable": False},
                       {"description": "Parts", "amount": "2.009", "taxable": False}])
    plan = t.plan(ok, KEY)  # single items need not end in 0 (unconfirmed either way); the total does
    assert plan.total == 12010 and [t.item_amount(p) for p in plan.items] == [10001, 2009]
    bad = doc_for(currency="KWD", labor=[], materials=[], discounts=[], tax={"rate": "0", "jurisdiction": "KW"},
                  fees=[{"description": "Visit", "amount": "10.005", "taxable": False}])
    with pytest.raises(Rejected, match="10.005 KWD"):
        t.plan(bad, KEY)


def test_customer_parameters():
    doc = doc_for(customer={"billing_address": {"line1": "9 Pine Rd", "city": "Tampa", "region": "FL",
                                                "postal_code": "33601", "country": "US"}})
    assert t.customer_params(doc) == {
        "name": "Nguyễn Thị Hương", "email": "huong@example.com", "phone": "+14075550100",
        "metadata": {"invoicer_customer": "C-1", "invoicer_tenant": "acme-hvac"},
        "address": {"line1": "9 Pine Rd", "city": "Tampa", "state": "FL", "postal_code": "33601", "country": "US"}}
    no_mail = doc_for(customer={"email": None, "phone": None})
    assert set(t.customer_params(no_mail)) == {"name", "metadata"}
    params = t.customer_params(doc)
    assert t.customer_idempotency_key(doc, params) == t.customer_idempotency_key(doc, dict(params))
    assert t.customer_idempotency_key(doc, params) != t.customer_idempotency_key(doc, {**params, "name": "Other"})
    assert len(t.customer_idempotency_key(doc, params)) <= 255


def test_form_encoding_uses_stripes_bracket_notation():
    pairs = t.encode({"customer": "cus_1", "auto_advance": False, "discounts": "", "skip": None,
                      "automatic_tax": {"enabled": False}, "metadata": {"invoicer_key": "k"},
                      "custom_fields": [{"name": "Job", "value": "1"}], "expand": ["lines"],
                      "unit_amount_decimal": Decimal("6425"), "quantity": 2})
    assert pairs == [("customer", "cus_1"), ("auto_advance", "false"), ("discounts", ""),
                     ("automatic_tax[enabled]", "false"), ("metadata[invoicer_key]", "k"),
                     ("custom_fields[0][name]", "Job"), ("custom_fields[0][value]", "1"), ("expand[0]", "lines"),
                     ("unit_amount_decimal", "6425"), ("quantity", "2")]
    assert t.decode(pairs) == {"customer": "cus_1", "auto_advance": "false", "discounts": "",
                               "automatic_tax": {"enabled": "false"}, "metadata": {"invoicer_key": "k"},
                               "custom_fields": [{"name": "Job", "value": "1"}], "expand": ["lines"],
                               "unit_amount_decimal": "6425", "quantity": "2"}
    assert t.decode([("expand[]", "a"), ("expand[]", "b")]) == {"expand": ["a", "b"]}
    assert t.decode([("l[10]", "k"), ("l[2]", "c")]) == {"l": ["c", "k"]}


def test_search_queries_escape_quotes():
    assert t.invoice_query(KEY) == f"metadata['invoicer_key']:'{KEY}'"
    assert t.customer_query("O'Brien\\1") == "metadata['invoicer_customer']:'O\\'Brien\\\\1'"


def test_responses_from_the_fixture_shape():
    fixture = json.loads(spec("stripe", "fixtures3.invoice-subset.json").read_text())["resources"]["invoice"]
    status = t.payment_status(fixture)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("0.00"), Decimal("10.00"), False)
    paid = t.payment_status({**fixture, "amount_paid": 1000, "amount_remaining": 0, "status": "paid"})
    assert (paid.amount_paid, paid.amount_due, paid.paid) == (Decimal("10.00"), Decimal("0.00"), True)
    created = t.created({**fixture, "number": "7FE1103-0001", "hosted_invoice_url": "https://invoice.stripe.com/i/x",
                         "metadata": {"invoicer_number": "ACME-1"}})
    assert (created.external_id, created.number, created.url) == (fixture["id"], "7FE1103-0001",
                                                                   "https://invoice.stripe.com/i/x")
    assert created.detail["our_number"] == "ACME-1"
    t.check_total(fixture, 1000, "usd")
    with pytest.raises(Rejected) as err:
        t.check_total(fixture, 1001, "usd")
    assert "1000 (10.00 USD)" in str(err.value) and "1001 (10.01 USD)" in str(err.value)


def test_error_text():
    body = {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such customer: 'x'",
                      "param": "customer"}}
    assert t.error_text(body) == "invalid_request_error/resource_missing: No such customer: 'x' (param customer)"
    assert t.error_text({"error": "plain"}) == "{'error': 'plain'}"
