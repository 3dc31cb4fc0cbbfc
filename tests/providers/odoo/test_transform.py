"""Pure mapping for Odoo: no I/O, no simulator."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer import money
from invoicer.errors import AuthFailed, MappingMissing, Rejected, Unavailable
from invoicer.providers import registry
from invoicer.providers.odoo import transform as t
from invoicer.providers.odoo.simulator import OdooSimulator
from tests.providers.odoo import odoo_options
from tests.providers.xero import make_doc

OPTIONS = odoo_options(OdooSimulator())
MAPPING = t.Mapping.from_options(OPTIONS, "books")


def total(lines, currency="USD"):
    return sum(money.round_money(l["quantity"] * l["price_unit"], currency) for l in lines)


def test_move_vals_are_a_customer_invoice_with_our_reference_and_line_commands():
    vals = t.move_vals(make_doc(), 1001, 1, MAPPING)
    assert vals["move_type"] == "out_invoice" and vals["partner_id"] == 1001 and vals["currency_id"] == 1
    assert vals["ref"] == "ACME-1001" and vals["invoice_origin"] == "invoicer:acme-hvac/J-1"
    assert vals["invoice_date"] == "2026-11-02" and vals["invoice_date_due"] == "2026-12-02"
    assert all(cmd[:2] == [0, 0] for cmd in vals["invoice_line_ids"])
    first = vals["invoice_line_ids"][0][2]
    assert first == {"name": "Diagnosis and repair", "quantity": Decimal("2"), "price_unit": Decimal("100.00"),
                     "product_id": 101, "tax_ids": [[6, 0, []]]}


def test_tax_line_mode_adds_up_to_our_total_with_no_odoo_tax():
    doc = make_doc()
    lines = t.line_vals(doc, MAPPING)
    assert [l.get("account_id") for l in lines[3:]] == [450000, 251000]
    assert lines[3]["price_unit"] == Decimal("-27.50") and lines[4]["price_unit"] == Decimal("3.60")
    assert all(l["tax_ids"] == [[6, 0, []]] for l in lines) and total(lines) == doc["total"]


def test_taxes_mode_splits_the_discount_into_taxed_and_untaxed_shares():
    doc = make_doc()
    lines = t.line_vals(doc, t.Mapping.from_options({**OPTIONS, "tax_mode": "taxes"}, "books"))
    assert [l["tax_ids"] for l in lines] == [[[6, 0, []]], [[6, 0, [1]]], [[6, 0, []]], [[6, 0, [1]]], [[6, 0, []]]]
    assert [l["price_unit"] for l in lines[3:]] == [Decimal("-5.00"), Decimal("-22.50")]  # 27.50 x 50/275


def test_fine_quantities_go_as_one_times_the_amount_and_fine_amounts_are_refused():
    doc = make_doc(labor=[{"description": "Repair", "hours": "1.333", "rate": "97.00", "taxable": False}])
    labor = t.line_vals(doc, MAPPING)[0]
    assert labor["quantity"] == 1 and labor["price_unit"] == doc["lines"][0]["amount"]
    assert "(1.333 x 97.00)" in labor["name"]
    kwd = make_doc(currency="KWD", fees=[{"description": "Call-out", "amount": "5.125", "taxable": False}])
    with pytest.raises(Rejected, match="Product Price"):
        t.line_vals(kwd, MAPPING)
    three = t.Mapping.from_options({**OPTIONS, "price_digits": 3}, "books")
    assert total(t.line_vals(kwd, three), "KWD") == kwd["total"]


def test_zero_decimal_currency_adds_up():
    doc = make_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "11875", "taxable": True}],
                   materials=[], fees=[], discounts=[{"description": "Loyal", "percent": "7"}])
    assert total(t.line_vals(doc, MAPPING), "JPY") == doc["total"]


def test_missing_mappings_name_the_key():
    with pytest.raises(MappingMissing, match=r"platforms.books.lines.fee"):
        t.line_vals(make_doc(), t.Mapping.from_options({**OPTIONS, "lines": {"labor": {"product_id": 1},
                                                                             "material": {"account_id": 2}}}, "books"))
    with pytest.raises(MappingMissing, match=r"platforms.books.tax_account"):
        t.line_vals(make_doc(), t.Mapping.from_options({**OPTIONS, "tax_account": None}, "books"))
    with pytest.raises(MappingMissing, match=r"platforms.books.taxes.taxable"):
        t.line_vals(make_doc(), t.Mapping.from_options({**OPTIONS, "tax_mode": "taxes", "taxes": {}}, "books"))


def test_check_options():
    cls = registry.get("odoo")
    assert cls.check_options(OPTIONS, "books") == []
    assert cls.check_options({"api": "json2", "base_url": "https://x.odoo.com", **{k: OPTIONS[k] for k in (
        "lines", "tax_account", "discount_account")}}, "books") == []
    problems = cls.check_options({"provider": "odoo"}, "books")
    assert "platforms.books.base_url is not set" in problems and "platforms.books.login is not set" in problems
    assert any("lines.labor" in p for p in problems)
    assert "api" in cls.check_options({"api": "xmlrpc"}, "books")[0]


def test_pick_tells_our_invoice_from_anothers():
    doc = make_doc()
    ours = {"id": 5, "state": "posted", "invoice_origin": t.origin(doc)}
    assert t.pick([], doc) is None and t.pick([{**ours, "state": "cancel"}], doc) is None
    assert t.pick([{**ours, "state": "draft", "id": 4}, ours], doc) == ours
    with pytest.raises(Rejected, match="did not create"):
        t.pick([{"id": 9, "name": "INV/2026/00009", "state": "posted", "invoice_origin": "SO042"}], doc)


def test_records_become_created_and_payment_status():
    doc = make_doc()
    move = {"id": 5, "name": "INV/2026/00001", "state": "posted", "amount_total": 251.1, "amount_residual": 51.1,
            "payment_state": "partial", "is_move_sent": False}
    created = t.created(move, doc, "https://acme.odoo.com")
    assert created.external_id == "5" and created.number == "INV/2026/00001" and created.detail["total"] == "251.10"
    assert created.url == "https://acme.odoo.com/web#id=5&model=account.move&view_type=form"
    status = t.payment_status(move, "USD")
    assert status.amount_paid == Decimal("200.00") and not status.paid
    with pytest.raises(Rejected, match="left in draft"):
        t.check_total({**move, "state": "draft", "amount_total": 251.11}, doc)


@pytest.mark.parametrize("name,kind", [("odoo.exceptions.AccessDenied", AuthFailed),
                                       ("odoo.exceptions.ValidationError", Rejected),
                                       ("odoo.exceptions.UserError", Rejected),
                                       ("psycopg2.errors.SerializationFailure", Unavailable)])
def test_rpc_errors_are_typed_by_their_exception_name(name, kind):
    error = {"code": 200, "message": "Odoo Server Error", "data": {"name": name, "message": "nope\nmore"}}
    exc = t.rpc_error(error)
    assert type(exc) is kind and str(exc) == f"odoo: {name}: nope more"
