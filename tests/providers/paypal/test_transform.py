"""PayPal mapping (pure): items, the invoice discount, tax as the custom amount, refusals."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import Rejected
from invoicer.providers.paypal import transform as t

from . import paypal_doc


def test_items_discount_and_tax_add_up_to_our_total():
    plan = t.plan(paypal_doc())
    body = plan.invoice
    assert [(i["name"], i["quantity"], i["unit_amount"]["value"], i["unit_of_measure"]) for i in body["items"]] == [
        ("Diagnosis and repair", "2", "100.00", "HOURS"), ("Run capacitor", "1", "50.00", "QUANTITY"),
        ("Trip charge", "1", "25.00", "QUANTITY")]
    assert body["items"][1]["description"] == "CAP-1"
    assert body["amount"]["breakdown"] == {
        "discount": {"invoice_discount": {"amount": {"currency_code": "USD", "value": "27.50"}}},
        "custom": {"label": "Tax (FL 8%)", "amount": {"currency_code": "USD", "value": "3.60"}}}
    assert plan.total == Decimal("251.10") == t.expected_total(body)
    detail = body["detail"]
    assert detail["invoice_number"] == "ACME-001001" and detail["currency_code"] == "USD"
    assert detail["invoice_date"] == "2026-11-02" and detail["payment_term"] == {"due_date": "2026-12-02"}
    assert "Member discount (10%) -27.50" in detail["note"] and "Job 1" in detail["note"]
    billing = body["primary_recipients"][0]["billing_info"]
    assert billing["email_address"] == "huong@example.com" and billing["name"] == {"given_name": "Nguyễn",
                                                                                  "surname": "Thị Hương"}
    assert billing["phones"] == [{"country_code": "1", "national_number": "4075550100", "phone_type": "MOBILE"}]


def test_fractional_hours_and_due_on_receipt():
    doc = paypal_doc(terms=0, labor=[{"description": "Repair", "hours": "2.5", "rate": "95.99", "taxable": False}],
                     materials=[], fees=[], discounts=[], tax={"rate": "0", "jurisdiction": ""})
    body = t.plan(doc).invoice
    [item] = body["items"]
    assert (item["quantity"], item["unit_amount"]["value"]) == ("1", "239.98")
    assert item["description"] == "2.5 h \u00d7 95.99" and "amount" not in body
    assert body["detail"]["payment_term"] == {"term_type": "DUE_ON_RECEIPT"}


def test_whole_unit_currencies():
    jpy = paypal_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8000",
                                             "taxable": True}],
                     materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"})
    body = t.plan(jpy).invoice
    assert body["items"][0]["unit_amount"] == {"currency_code": "JPY", "value": "12000"}
    assert body["amount"]["breakdown"]["custom"]["amount"]["value"] == "1200"
    huf = paypal_doc(currency="HUF", labor=[], materials=[], discounts=[], tax={"rate": "0", "jurisdiction": ""},
                     fees=[{"description": "Visit", "amount": "1000.50", "taxable": False}])
    with pytest.raises(Rejected, match="decimals PayPal does not take in HUF"):
        t.plan(huf)


def test_refused_before_sending():
    kwd = paypal_doc(currency="KWD", labor=[], materials=[], discounts=[],
                     fees=[{"description": "Visit", "amount": "10.005", "taxable": False}])
    with pytest.raises(Rejected, match="does not take payments in KWD"):
        t.check(kwd)
    with pytest.raises(Rejected, match="longer than 25"):
        t.check(paypal_doc("ACME-" + "9" * 30))
    with pytest.raises(Rejected, match="nothing to request"):
        t.check(paypal_doc(discounts=[{"description": "Free", "percent": "100"}]))
    big = paypal_doc(labor=[], materials=[], discounts=[], fees=[{"description": "Chiller", "amount": "1500000.00",
                                                                  "taxable": False}])
    with pytest.raises(Rejected, match="1,000,000"):
        t.plan(big)


def test_responses_and_errors():
    inv = {"id": "INV2-A", "status": "PARTIALLY_PAID", "detail": {"invoice_number": "N1", "metadata": {}},
           "amount": {"currency_code": "USD", "value": "251.10"}, "due_amount": {"value": "151.10"},
           "payments": {"paid_amount": {"value": "100.00"}},
           "links": [{"href": "https://paypal/invoice/p/#A", "rel": "payer-view"}]}
    assert t.created(inv).url == "https://paypal/invoice/p/#A" and t.created(inv).number == "N1"
    s = t.payment_status(inv)
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("100.00"), Decimal("151.10"), False)
    body = {"name": "UNPROCESSABLE_ENTITY", "message": "x", "debug_id": "d1",
            "details": [{"issue": "DUPLICATE_INVOICE_NUMBER", "field": "/detail/invoice_number"}]}
    assert t.issues(body) == ["UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_NUMBER"]
    assert "DUPLICATE_INVOICE_NUMBER" in t.error_text(body) and "d1" in t.error_text(body)
    assert t.notification({}) == {"send_to_recipient": False, "send_to_invoicer": False}
