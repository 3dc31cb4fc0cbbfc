"""FreshBooks mapping, pure: money as {amount, code} strings, taxes on lines, discounts as negative lines."""
from __future__ import annotations

from decimal import Decimal

from invoicer.providers import fit
from invoicer.providers.freshbooks import transform as t
from tests.providers.freshbooks import make_doc


def test_invoice_body_lines_money_and_number():
    inv = t.invoice_body(make_doc(), "501")["invoice"]
    assert inv["customerid"] == 501 and inv["invoice_number"] == "ACME-1001" and inv["currency_code"] == "USD"
    assert inv["create_date"] == "2026-11-02" and inv["due_offset_days"] == 30
    labor, material, fee, taxed_off, untaxed_off = inv["lines"]
    assert labor["unit_cost"] == {"amount": "100.00", "code": "USD"} and labor["qty"] == "2"
    assert "taxName1" not in labor and (material["taxName1"], material["taxAmount1"]) == ("FL", "8")
    # 27.50 off, split over the taxed 50.00 and untaxed 225.00 pro rata: 5.00 and 22.50
    assert (taxed_off["unit_cost"]["amount"], taxed_off["taxName1"]) == ("-5.00", "FL")
    assert untaxed_off["unit_cost"]["amount"] == "-22.50" and "taxName1" not in untaxed_off
    assert all(isinstance(li["unit_cost"]["amount"], str) for li in inv["lines"])


def test_split_is_exact_and_pro_rata():
    assert fit.split(Decimal("10.00"), [Decimal(1), Decimal(1), Decimal(1)], Decimal("0.01")) == [
        Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]
    assert fit.split(Decimal("5"), [Decimal(0), Decimal(0)], Decimal(1)) == [0, 0]


def test_ambiguous_product_goes_as_one_times_the_amount():
    doc = make_doc(labor=[{"description": "Tune-up", "hours": "1.333", "rate": "85.00", "taxable": False}],
                   discounts=[])
    line = t.invoice_body(doc, "1")["invoice"]["lines"][0]
    assert (line["qty"], line["unit_cost"]["amount"], line["description"]) == ("1", "113.31", "Tune-up (1.333 x 85)")


def test_jpy_amounts_have_no_decimals_and_rounding_line():
    doc = make_doc(currency="JPY", labor=[{"description": "Repair", "hours": "2", "rate": "8000", "taxable": False}],
                   materials=[], fees=[], discounts=[])
    assert t.invoice_body(doc, "1")["invoice"]["lines"][0]["unit_cost"] == {"amount": "8000", "code": "JPY"}
    assert t.rounding_line(Decimal("-1"), "JPY")["unit_cost"] == {"amount": "-1", "code": "JPY"}


def test_client_body_and_answers():
    client = t.client_body(make_doc()["customer"], "USD")["client"]
    assert client["email"] == "huong@example.com" and client["currency_code"] == "USD"
    assert client["organization"] == "Nguyễn Thị Hương" and client["mob_phone"] == "+14075550100"
    inv = {"id": 7, "invoice_number": "ACME-1001", "amount": {"amount": "251.10", "code": "USD"},
           "paid": {"amount": "51.10", "code": "USD"}, "outstanding": {"amount": "200.00", "code": "USD"},
           "payment_status": "partial", "v3_status": "partial", "vis_state": 0}
    doc = make_doc()
    assert t.pick_invoice([{**inv, "vis_state": 1}, inv], doc) is inv
    t.check_total(inv, doc)
    assert t.created(inv, "6BApk").url == "https://my.freshbooks.com/#/invoice/6BApk-7"
    assert t.payment_status(inv) == t.PaymentStatus(Decimal("51.10"), Decimal("200.00"), False)
    assert t.error_text({"response": {"errors": [{"errno": 2001, "field": "lines", "message": "bad"}]}}) == \
        "[2001] bad (lines)"
    assert t.error_text({"error": "invalid_grant", "error_description": "used"}) == "invalid_grant used"
