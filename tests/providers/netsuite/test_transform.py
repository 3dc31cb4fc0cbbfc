"""Pure mapping: canonical invoice -> NetSuite bodies and back (no network, no database)."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from invoicer.errors import MappingMissing, Rejected
from invoicer.providers.netsuite import transform as t
from tests.providers.netsuite import make_doc, options

M = t.Mapping.from_options(options(), "erp")


def test_lines_discount_and_tax_add_up_to_our_total():
    doc = make_doc()
    body = t.invoice_body(doc, M, "42")
    items = body["item"]["items"]
    assert [li["item"]["id"] for li in items] == ["11", "12", "13", "14", "15"]
    assert [li["amount"] for li in items] == [D("200.00"), D("50.00"), D("25.00"), D("-27.50"), D("3.60")]
    assert items[0]["quantity"] * items[0]["rate"] == D("200.00")
    assert [li["taxCode"]["id"] for li in items] == ["-8", "-7", "-8", "-8", "-8"]
    assert sum(li["amount"] for li in items) == doc["total"] == D("251.10")
    assert body["entity"] == {"id": "42"} and "currency" not in body  # USD is the account's own
    assert body["tranDate"].isoformat() == "2026-11-02" and body["dueDate"].isoformat() == "2026-12-02"
    assert "tranId" not in body and body["toBeEmailed"] is False
    assert body["memo"].startswith("invoicer ACME-1001")


def test_json_has_exact_decimals_and_iso_dates():
    raw = t.dumps(t.invoice_body(make_doc(), M, "42"))
    assert b'"amount":-27.50' in raw and b'"tranDate":"2026-11-02"' in raw and b"e+" not in raw.lower()


def test_our_number_and_email_by_netsuite_when_the_tenant_says_so():
    m = t.Mapping.from_options(options(use_our_number=True, send=True), "erp")
    body = t.invoice_body(make_doc(number="ACME-1042"), m, "42")
    assert body["tranId"] == "ACME-1042" and body["toBeEmailed"] is True and body["email"] == "huong@example.com"


def test_zero_decimal_currency_keeps_whole_amounts():
    doc = make_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "11875",
                                           "taxable": False}], materials=[], fees=[], discounts=[])
    [line] = [li for li in t.invoice_body(doc, M, "42")["item"]["items"] if li["item"]["id"] == "11"]
    assert line["quantity"] == D("1.5") and line["amount"] == doc["lines"][0]["amount"] == D("17813")
    assert t.invoice_body(doc, M, "42")["currency"] == {"id": "2"}


def test_three_decimal_amounts_are_refused_before_any_call():
    doc = make_doc(currency="KWD", labor=[{"description": "Repair", "hours": "1", "rate": "10.125",
                                           "taxable": False}], materials=[], fees=[], discounts=[],
                   tax={"rate": "0", "jurisdiction": ""})
    m = t.Mapping.from_options(options(currencies={"KWD": "9"}), "erp")
    with pytest.raises(Rejected, match="at most 2 decimals"):
        t.invoice_body(doc, m, "42")


def test_missing_mappings_name_the_key():
    with pytest.raises(MappingMissing, match=r"platforms\.erp\.items\.discount"):
        t.invoice_body(make_doc(), t.Mapping.from_options(options(items={"labor": "1", "material": "2", "fee": "3",
                                                                         "tax": "5"}), "erp"), "42")
    with pytest.raises(MappingMissing, match=r"platforms\.erp\.currencies\.EUR"):
        t.invoice_body(make_doc(currency="EUR"), t.Mapping.from_options(options(currencies={}), "erp"), "42")


def test_external_ids_are_stable_and_in_netsuites_alphabet():
    assert t.external_id("ab" * 24) == "invoicer-" + "ab" * 24
    odd = t.external_id("tenant/job 1|x")
    assert odd == t.external_id("tenant/job 1|x") and odd.startswith("invoicer-") and "/" not in odd
    assert t.customer_external_id("acme", "C-1") != t.customer_external_id("other", "C-1")


def test_created_checks_the_total_and_reads_payment():
    doc = make_doc()
    record = {"id": "101", "tranId": "INV7", "total": D("251.10"), "amountRemaining": D("51.10"),
              "externalId": "invoicer-x"}
    made = t.created(record, doc, "https://123.app.netsuite.com")
    assert made.external_id == "101" and made.number == "INV7" and made.url.endswith("custinvc.nl?id=101")
    status = t.payment_status(record)
    assert status.amount_paid == D("200.00") and status.amount_due == D("51.10") and not status.paid
    with pytest.raises(Rejected, match="totals 255.10"):
        t.created({**record, "total": D("255.10")}, doc)


def test_error_body_text():
    body = {"title": "Bad Request", "status": 400, "o:errorDetails": [
        {"detail": "Invalid Field Value 9999", "o:errorCode": "INVALID_CONTENT", "o:errorPath": "item.items[0].item"}]}
    assert t.error_text(body) == "[INVALID_CONTENT] Invalid Field Value 9999 (at item.items[0].item)"
    assert t.error_codes(body) == {"INVALID_CONTENT"} and t.error_text({"x": 1}) is None
