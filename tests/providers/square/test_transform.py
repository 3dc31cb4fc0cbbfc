"""Square mapping (pure): order lines, discounts and tax as Square adds them up, invoice body, refusals."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import Rejected
from invoicer.providers.square import transform as t

from . import square_doc

KEY = "k" * 48


def test_order_lines_discount_and_tax_add_up_to_our_total():
    doc = square_doc()
    plan = t.plan(doc, KEY)
    items = plan.order["line_items"]
    assert [(i["name"], i["quantity"], i["base_price_money"]["amount"]) for i in items] == [
        ("Diagnosis and repair", "2", 10000), ("Run capacitor", "1", 5000), ("Trip charge", "1", 2500),
        ("Tax (FL 8%)", "1", 360)]
    assert all(i["base_price_money"]["currency"] == "USD" for i in items)
    [discount] = plan.order["discounts"]
    assert discount == {"uid": "discount-0", "name": "Member discount (10%)", "type": "FIXED_AMOUNT",
                        "scope": "ORDER", "amount_money": {"amount": 2750, "currency": "USD"}}
    assert items[-1]["pricing_blocklists"] == {"blocked_discounts": [{"discount_uid": "discount-0"}]}
    assert plan.total == 25110 == t.order_total(plan.order)
    assert plan.order["reference_id"] == "ACME-001001" and plan.order["metadata"]["invoicer_key"] == KEY


def test_fractional_hours_go_as_one_line_at_the_rounded_amount():
    doc = square_doc(labor=[{"description": "Repair", "hours": "2.5", "rate": "95.99", "taxable": False}],
                     materials=[], fees=[], discounts=[], tax={"rate": "0", "jurisdiction": ""})
    [item] = t.plan(doc, KEY).order["line_items"]
    assert item["quantity"] == "1" and item["base_price_money"]["amount"] == 23998  # 239.975 half up
    assert item["name"] == "Repair (2.5 h \u00d7 95.99)"
    assert "discounts" not in t.plan(doc, KEY).order


def test_zero_decimal_currency_is_in_whole_yen():
    doc = square_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8000",
                                             "taxable": True}],
                     materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"})
    plan = t.plan(doc, KEY)
    assert plan.total == 13200 and [i["base_price_money"] for i in plan.order["line_items"]] == [
        {"amount": 12000, "currency": "JPY"}, {"amount": 1200, "currency": "JPY"}]


def test_currencies_square_cannot_take_are_refused():
    kwd = square_doc(currency="KWD", labor=[], materials=[], discounts=[],
                     fees=[{"description": "Visit", "amount": "10.005", "taxable": False}])
    with pytest.raises(Rejected, match="does not take payments in KWD"):
        t.plan(kwd, KEY)
    with pytest.raises(Rejected, match="location takes CAD"):
        t.check(square_doc(), {"currency": "CAD"})
    free = square_doc(discounts=[{"description": "On the house", "percent": "100"}])
    with pytest.raises(Rejected, match="nothing to request payment for"):
        t.check(free)


def test_invoice_body_due_date_delivery_and_methods():
    doc = square_doc(terms=0, po_number="PO-7")
    body = t.invoice_body(doc, {"delivery": "email", "payment_methods": ["card", "bank_account"]}, "L1", "O1", "C1")
    assert body["payment_requests"] == [{"request_type": "BALANCE", "due_date": "2026-11-02"}]
    assert body["delivery_method"] == "EMAIL" and body["primary_recipient"] == {"customer_id": "C1"}
    assert body["accepted_payment_methods"] == {"card": True, "square_gift_card": False, "bank_account": True,
                                                "buy_now_pay_later": False, "cash_app_pay": False}
    assert body["invoice_number"] == "ACME-001001" and body["sale_or_service_date"] == "2026-11-02"
    assert "PO PO-7" in body["description"] and "due on receipt" in body["description"]
    assert t.invoice_body(square_doc(), {}, "L1", "O1", "C1")["delivery_method"] == "SHARE_MANUALLY"
    no_mail = square_doc(customer={"email": None})
    assert t.invoice_body(no_mail, {"delivery": "email"}, "L", "O", "C")["delivery_method"] == "SHARE_MANUALLY"
    assert t.invoice_body(no_mail, {"delivery": "sms"}, "L", "O", "C")["delivery_method"] == "SMS"


def test_customer_body_and_keys():
    doc = square_doc(customer={"billing_address": {"line1": "1 Elm", "city": "Orlando", "region": "FL",
                                                   "postal_code": "32801", "country": "US"}})
    body = t.customer_body(doc)
    assert body["given_name"] == "Nguyễn" and body["family_name"] == "Thị Hương" and body["reference_id"] == "C-1"
    assert body["address"] == {"address_line_1": "1 Elm", "locality": "Orlando",
                               "administrative_district_level_1": "FL", "postal_code": "32801", "country": "US"}
    assert t.customer_key(doc, body) == t.customer_key(doc, dict(body))
    assert t.customer_key(doc, body) != t.customer_key(doc, {**body, "email_address": "x@example.com"})
    assert t.idempotency(KEY, "order") == KEY + ":order"
    long = t.idempotency("x" * 200, "publish")
    assert len(long) <= 128 and long.endswith(":publish")


def test_payment_status_and_errors():
    inv = {"id": "inv:1", "status": "PARTIALLY_PAID", "payment_requests": [
        {"computed_amount_money": {"amount": 25110, "currency": "USD"},
         "total_completed_amount_money": {"amount": 10000, "currency": "USD"}}]}
    s = t.payment_status(inv)
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("100.00"), Decimal("151.10"), False)
    body = {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED", "detail": "slow down"}]}
    assert t.error_codes(body) == [("RATE_LIMIT_ERROR", "RATE_LIMITED")]
    assert t.error_text(body) == "RATE_LIMIT_ERROR/RATE_LIMITED: slow down"


def test_discounts_are_capped_together_as_the_money_rules_cap_them():
    from invoicer import money

    doc = {"discount_total": Decimal("275.00"), "discounts": [
        {"description": "Loyalty", "amount": Decimal("247.50"), "percent": Decimal("90")},
        {"description": "Coupon", "amount": Decimal("50.00"), "percent": None},
        {"description": "Too late", "amount": Decimal("5.00"), "percent": None}]}
    assert money.applied_discounts(doc) == [("Loyalty (90%)", Decimal("247.50")), ("Coupon", Decimal("27.50"))]
    assert money.tax_label({"rate": Decimal("0.0825"), "jurisdiction": ""}) == "Tax (8.25%)"
    assert money.line_detail({"quantity": Decimal("2.50"), "unit_price": Decimal("95.99"), "kind": "labor"}) == \
        "2.5 h \u00d7 95.99"
