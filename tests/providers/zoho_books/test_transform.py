"""Zoho Books mapping, pure: request bodies from canonical invoices, answers to Created/PaymentStatus."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import MappingMissing
from invoicer.providers.zoho_books import transform as t
from tests.providers.zoho_books import make_doc


def test_invoice_body_carries_reference_lines_discount_and_tax():
    doc = make_doc()
    body = t.invoice_body(doc, "C9", "T8", {})
    assert body["customer_id"] == "C9" and body["reference_number"] == "ACME-1001"
    assert body["date"] == "2026-11-02" and body["due_date"] == "2026-12-02"
    assert body["discount"] == Decimal("27.50") and body["discount_type"] == "entity_level"
    assert body["is_discount_before_tax"] is True and "invoice_number" not in body
    labor, material, fee = body["line_items"]
    assert (labor["rate"], labor["quantity"], "tax_id" in labor) == (Decimal("100.00"), Decimal("2"), False)
    assert (material["rate"], material["tax_id"]) == (Decimal("50.00"), "T8")
    assert fee["name"] == "Trip charge" and "tax_id" not in fee


def test_our_number_as_invoice_number_when_asked():
    assert t.invoice_body(make_doc(), "C9", "T8", {"use_our_number": True})["invoice_number"] == "ACME-1001"


def test_items_per_kind_are_sent_when_mapped():
    body = t.invoice_body(make_doc(), "C9", "T8", {"items": {"labor": "I-1"}})
    assert body["line_items"][0]["item_id"] == "I-1" and "item_id" not in body["line_items"][1]


def test_a_line_whose_product_rounds_ambiguously_goes_as_one_times_its_amount():
    doc = make_doc(labor=[{"description": "Tune-up", "hours": "1.333", "rate": "85.00", "taxable": False}])
    labor = t.invoice_body(doc, "C9", "T8", {})["line_items"][0]
    assert (labor["rate"], labor["quantity"]) == (Decimal("113.31"), Decimal(1))
    assert labor["description"] == "Tune-up (1.333 x 85)"


def test_jpy_rates_are_whole_yen():
    doc = make_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8331",
                                           "taxable": True}], materials=[], fees=[], discounts=[])
    [line] = t.invoice_body(doc, "C9", "T8", {})["line_items"]
    assert line["rate"] == Decimal("12497") and line["quantity"] == 1  # 12496.5: half-up and half-even differ


def test_taxed_invoice_without_a_tax_is_a_mapping_error():
    with pytest.raises(MappingMissing, match="8 %"):
        t.invoice_body(make_doc(), "C9", None, {})


def test_untaxed_invoice_needs_no_tax():
    doc = make_doc(tax={"rate": "0", "jurisdiction": ""})
    assert all("tax_id" not in li for li in t.invoice_body(doc, "C9", None, {})["line_items"])


def test_contact_body_and_percent_keys():
    body = t.contact_body(make_doc()["customer"], "CUR1")
    assert body["contact_type"] == "customer" and body["currency_id"] == "CUR1"
    assert body["contact_persons"] == [{"is_primary_contact": True, "email": "huong@example.com",
                                        "phone": "+14075550100"}]
    assert t.percent_key(Decimal("0.0825")) == "8.25" and t.percent_key(Decimal("0.20")) == "20"
    assert t.tax_body(Decimal("0.0825"), "TX")["tax_percentage"] == Decimal("8.25")


def test_answers():
    doc = make_doc()
    inv = {"invoice_id": "9", "invoice_number": "INV-000001", "reference_number": "ACME-1001", "status": "sent",
           "total": Decimal("251.10"), "balance": Decimal("51.10"), "currency_code": "USD"}
    assert t.pick_invoice([{**inv, "status": "void"}, inv], doc) is inv
    t.check_total(inv, doc)
    made = t.created(inv, {"organization_id": "1", "data_center": "eu"})
    assert made.external_id == "9" and made.url == "https://books.zoho.eu/app/1#/invoices/9"
    assert t.payment_status(inv) == t.PaymentStatus(Decimal("200.00"), Decimal("51.10"), False)
    assert t.error_text({"code": 1001, "message": "exists"}) == "[1001] exists"
