"""The HubSpot mapping, pure: line items that add up to our total exactly, properties as strings."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import Rejected
from invoicer.providers.hubspot import transform as t

from .. import corpus_docs
from . import make_doc


def test_lines_carry_the_discount_and_tax_goes_as_its_own_line():
    doc = make_doc()
    lines = t.line_items(doc)
    # 10 % off 275.00 = 27.50, spread 200 : 50 : 25 -> 20.00, 5.00, 2.50; each discounted line goes as 1 x amount
    assert lines[0] == {"name": "Diagnosis and repair (2 x 100)", "quantity": "1", "price": "200.00",
                        "hs_discount": "20.00"}
    assert lines[1] == {"name": "Run capacitor", "quantity": "1", "price": "50.00", "hs_discount": "5.00",
                        "hs_sku": "CAP-1"}
    assert lines[2]["hs_discount"] == "2.50" and lines[2]["price"] == "25.00"
    assert lines[3] == {"name": "Tax FL 8%", "quantity": "1", "price": "3.60"}
    assert t.line_total(lines) == doc["total"] == Decimal("251.10")
    assert all(isinstance(v, str) for line in lines for v in line.values())


def test_undiscounted_lines_keep_quantity_and_price_when_exact():
    doc = make_doc(discounts=[], tax={"rate": "0", "jurisdiction": ""})
    lines = t.line_items(doc)
    assert lines[0] == {"name": "Diagnosis and repair", "quantity": "2", "price": "100.00"}
    assert len(lines) == 3 and t.line_total(lines) == doc["total"] == Decimal("275.00")


def test_a_line_whose_product_is_not_its_amount_goes_as_one_times_the_amount():
    doc = make_doc(discounts=[], labor=[{"description": "Labour", "hours": "1.3333", "rate": "90.00",
                                         "taxable": False}])
    first = t.line_items(doc)[0]
    assert first == {"name": "Labour (1.3333 x 90)", "quantity": "1", "price": "120.00"}


@pytest.mark.parametrize("currency,fee,total", [("JPY", "2500", None), ("KWD", "25.125", None)])
def test_zero_and_three_decimal_currencies_add_up_to_the_minor_unit(currency, fee, total):
    doc = make_doc(currency=currency, labor=[], materials=[],
                   fees=[{"description": "Visit", "amount": fee, "taxable": True}],
                   discounts=[{"description": "Promo", "percent": "7"}])
    lines = t.line_items(doc)
    assert t.line_total(lines) == doc["total"]
    for line in lines:
        assert Decimal(line["price"]).as_tuple().exponent >= -{"JPY": 0, "KWD": 3}[currency]


def test_invoice_properties_are_strings_with_dates_at_midnight_utc():
    props = t.invoice_properties(make_doc(po_number="PO-7"))
    assert props["hs_currency"] == "USD" and props["invoicer_reference"] == "ACME-1001"
    assert props["hs_invoice_date"] == "1793577600000"  # 2026-11-02T00:00:00Z
    assert int(props["hs_due_date"]) - int(props["hs_invoice_date"]) == 30 * 86400 * 1000
    assert props["hs_purchase_order_number"] == "PO-7" and "job 1" in props["hs_comments"]
    assert t.invoice_properties(make_doc(), "my_ref")["my_ref"] == "ACME-1001"


def test_missing_lines_matches_what_exists_as_a_multiset():
    planned = [{"name": "A", "quantity": "1", "price": "10.00"}, {"name": "A", "quantity": "1", "price": "10.00"},
               {"name": "B", "quantity": "2", "price": "5.00"}]
    existing = [{"name": "A", "quantity": "1.0", "price": "10", "amount": "10"}]
    assert t.missing_lines(planned, existing) == planned[1:]
    assert t.missing_lines(planned, []) == planned
    assert t.missing_lines(planned, existing + planned) == []


def test_contact_body_splits_the_name_and_leaves_out_blanks():
    body = t.contact_body({"id": "C-1", "name": "Nguyễn Thị Hương", "email": "h@example.com", "phone": None,
                           "billing_address": {"line1": "1 Elm", "city": "Orlando", "region": "FL",
                                               "postal_code": "32801", "country": "US"}})
    assert body == {"properties": {"firstname": "Nguyễn Thị", "lastname": "Hương", "email": "h@example.com",
                                   "address": "1 Elm", "city": "Orlando", "state": "FL", "zip": "32801",
                                   "country": "US"}}


def test_check_total_refuses_a_different_amount():
    plan = t.plan(make_doc())
    t.check_total({"id": "1", "properties": {"hs_amount_billed": "251.10"}}, plan)
    with pytest.raises(Rejected, match="251.11"):
        t.check_total({"id": "1", "properties": {"hs_amount_billed": "251.11"}}, plan)


def test_error_text_reads_hubspots_body():
    text = t.error_text({"status": "error", "message": "Property values were not valid", "correlationId": "c-1",
                         "category": "VALIDATION_ERROR", "errors": [{"message": "x does not exist"}]})
    assert text == "VALIDATION_ERROR: Property values were not valid (x does not exist) [c-1]"


def test_every_sample_invoice_maps_to_line_items_with_its_exact_total():
    for doc in corpus_docs():
        lines = t.line_items(doc)
        assert t.line_total(lines) == doc["total"], doc["number"]
        assert all(Decimal(line["price"]) >= 0 for line in lines)
