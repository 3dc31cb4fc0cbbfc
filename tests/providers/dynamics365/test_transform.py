"""Pure mapping for Business Central: no I/O, no simulator."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer import money
from invoicer.errors import MappingMissing, Rejected
from invoicer.providers import registry
from invoicer.providers.dynamics365 import transform as t
from invoicer.providers.dynamics365.simulator import BusinessCentralSimulator
from tests.providers.dynamics365 import bc_options
from tests.providers.xero import make_doc

OPTIONS = bc_options(BusinessCentralSimulator())
MAPPING = t.Mapping.from_options(OPTIONS, "erp")


def amounts(lines, currency="USD"):
    return [money.round_money(l["quantity"] * l["unitPrice"], currency) for l in lines]


def test_header_carries_our_number_customer_dates_and_currency():
    doc = make_doc(po_number="PO-77")
    body = t.header(doc, "C10010")
    assert body["externalDocumentNumber"] == "ACME-1001" and body["customerNumber"] == "C10010"
    assert body["invoiceDate"] == "2026-11-02" and body["dueDate"] == "2026-12-02"
    assert body["currencyCode"] == "USD" and body["customerPurchaseOrderReference"] == "PO-77"
    assert body["shipToCity"] == "Orlando" and body["shipToCountry"] == "US"


def test_a_number_longer_than_35_characters_is_refused():
    with pytest.raises(Rejected, match="35"):
        t.header(make_doc(number="N" * 36), "C1")


def test_account_line_mode_books_discount_and_tax_as_account_lines_and_adds_up():
    doc = make_doc()  # 200 + 50 + 25, 10 % off (27.50), tax 3.60: 251.10
    lines = t.lines(doc, MAPPING)
    assert [(l["lineType"], l["lineObjectNumber"]) for l in lines] == [
        ("Item", "SVC-LABOR"), ("Item", "MAT-GENERAL"), ("Item", "SVC-FEE"), ("Account", "64100"), ("Account", "23100")]
    assert {l["taxCode"] for l in lines} == {"NONTAXABLE"}
    assert lines[3]["unitPrice"] == Decimal("-27.50") and lines[4]["unitPrice"] == Decimal("3.60")
    assert lines[4]["description"] == "Tax FL 8 %"
    assert sum(amounts(lines)) == doc["total"] == Decimal("251.10")


def test_tax_codes_mode_uses_the_codes_and_a_header_discount():
    mapping = t.Mapping.from_options({**OPTIONS, "tax_mode": "tax_codes"}, "erp")
    doc = make_doc()
    lines = t.lines(doc, mapping)
    assert [l["taxCode"] for l in lines] == ["NONTAXABLE", "TAXABLE", "NONTAXABLE"]
    assert t.header_discount(doc, mapping) == {"discountAmount": Decimal("27.50")}
    assert t.header_discount(doc, MAPPING) is None


def test_a_line_bc_would_round_otherwise_goes_as_one_times_its_amount():
    doc = make_doc(labor=[{"description": "Repair", "hours": "1.333333", "rate": "97.00", "taxable": False}],
                   discounts=[])
    [labor] = [l for l in t.lines(doc, MAPPING) if l["lineObjectNumber"] == "SVC-LABOR"]
    assert labor["quantity"] == 1 and labor["unitPrice"] == doc["lines"][0]["amount"]
    assert "(1.333333 x 97.00)" in labor["description"]


@pytest.mark.parametrize("currency,rate,price", [("JPY", "11875", "2"), ("KWD", "12.345", "1.005")])
def test_zero_and_three_decimal_currencies_add_up_exactly(currency, rate, price):
    doc = make_doc(currency=currency,
                   labor=[{"description": "Repair", "hours": "1.5", "rate": rate, "taxable": True}],
                   materials=[{"sku": "X", "description": "Part", "quantity": "3", "unit_price": price,
                               "taxable": True}],
                   fees=[], discounts=[{"description": "Loyal", "percent": "7"}])
    lines = t.lines(doc, MAPPING)
    assert sum(amounts(lines, currency)) == doc["total"]


def test_missing_mappings_name_the_key():
    with pytest.raises(MappingMissing, match=r"platforms.erp.lines.fee"):
        t.lines(make_doc(), t.Mapping.from_options({**OPTIONS, "lines": {"labor": "A", "material": "B"}}, "erp"))
    with pytest.raises(MappingMissing, match=r"platforms.erp.tax_account"):
        t.lines(make_doc(), t.Mapping.from_options({**OPTIONS, "tax_account": None}, "erp"))
    with pytest.raises(MappingMissing, match=r"platforms.erp.tax_codes.exempt"):
        t.lines(make_doc(), t.Mapping.from_options({**OPTIONS, "tax_codes": {}}, "erp"))


def test_check_options_lists_every_problem():
    cls = registry.get("dynamics365")
    assert cls.check_options(OPTIONS, "erp") == []
    problems = cls.check_options({"provider": "dynamics365", "lines": {"labor": {"type": "Fixed", "number": "1"}}},
                                 "erp")
    assert "platforms.erp.company_id is not set" in problems
    assert any("platforms.erp.lines.labor.type" in p for p in problems)
    assert any("platforms.erp.discount_account" in p for p in problems)
    assert cls.check_options({"edition": "ax2012"}, "erp")[0].startswith("platforms.erp.edition")
    assert "tax_mode" in cls.check_options({**OPTIONS, "tax_mode": "magic"}, "erp")[0]


def test_missing_lines_continue_a_draft_our_earlier_try_began():
    wanted = t.lines(make_doc(), MAPPING)
    answered = [{**body, "sequence": 10000 * (i + 1), "quantity": Decimal(str(body["quantity"])) * 1}
                for i, body in enumerate(wanted[:2])]
    assert t.missing_lines(answered, wanted, "ACME-1001") == wanted[2:]
    assert t.missing_lines([], wanted, "ACME-1001") == wanted
    assert t.missing_lines(list(reversed(answered)), wanted, "ACME-1001") == wanted[2:]  # by sequence
    edited = [{**answered[0], "unitPrice": Decimal("1.00")}]
    with pytest.raises(Rejected, match="did not add"):
        t.missing_lines(edited, wanted, "ACME-1001")


def test_answers_become_created_payment_status_and_error_text():
    doc = make_doc()
    inv = {"id": "abc", "number": "PS-INV1", "status": "Open", "totalAmountIncludingTax": Decimal("251.10"),
           "totalTaxAmount": Decimal("0"), "remainingAmount": Decimal("51.10")}
    created = t.created(inv, doc)
    assert created.external_id == "abc" and created.number == "PS-INV1" and created.detail["total"] == "251.10"
    status = t.payment_status(inv)
    assert status.amount_paid == Decimal("200.00") and status.amount_due == Decimal("51.10") and not status.paid
    with pytest.raises(Rejected, match="totals 250.00"):
        t.created({**inv, "totalAmountIncludingTax": Decimal("250.00")}, doc)
    assert t.error_text({"error": {"code": "Internal_RecordNotFound", "message": "gone"}}) == \
        "Internal_RecordNotFound: gone"
    assert t.quote("O'Brien") == "'O''Brien'"
