"""Pure mapping: canonical invoice -> Xero bodies and back (no network, no database)."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoicer.errors import MappingMissing, Rejected
from invoicer.providers.xero import transform as t
from invoicer.providers.xero.simulator import compute_invoice
from tests.providers.xero import ACCOUNTS, ORG_ACCOUNTS, TAX_TYPES, make_doc

CONTACT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
M = t.Mapping("books", dict(ACCOUNTS), dict(TAX_TYPES))
D = Decimal


def body(doc, mapping=M):
    return t.invoice(doc, CONTACT, mapping)


def xero_total(inv, rates=None):
    figures, errors = compute_invoice(inv, rates or {"OUTPUT": D("0.08"), "NONE": D(0)}, accounts=ORG_ACCOUNTS)
    assert errors == []
    return figures["Total"]


def test_discount_and_tax_are_spread_over_the_lines_to_the_cent():
    doc = make_doc()
    inv = body(doc)
    lines = inv["LineItems"]
    assert [li["AccountCode"] for li in lines] == ["200", "260", "270"]
    assert [li["TaxType"] for li in lines] == ["NONE", "OUTPUT", "NONE"]
    # 27.50 off 275.00 pro rata: 20.00 / 5.00 / 2.50; all tax (3.60) on the taxed material line
    assert [li.get("DiscountAmount") for li in lines] == [D("20.00"), D("5.00"), D("2.50")]
    assert [li["LineAmount"] for li in lines] == [D("180.00"), D("45.00"), D("22.50")]
    assert [li["TaxAmount"] for li in lines] == [D("0.00"), D("3.60"), D("0.00")]
    assert sum(li["LineAmount"] + li["TaxAmount"] for li in lines) == doc["total"] == D("251.10")
    assert xero_total(inv) == doc["total"]


def test_invoice_header_fields():
    doc = make_doc(number="ACME-1042")
    inv = body(doc)
    assert inv["Type"] == "ACCREC" and inv["Status"] == "AUTHORISED" and inv["LineAmountTypes"] == "Exclusive"
    assert inv["Contact"] == {"ContactID": CONTACT}
    assert inv["Reference"] == "ACME-1042" and "InvoiceNumber" not in inv
    assert inv["Date"] == "2026-11-02" and inv["DueDate"] == "2026-12-02" and inv["CurrencyCode"] == "USD"
    ours = t.invoice(doc, CONTACT, t.Mapping("books", ACCOUNTS, TAX_TYPES, use_our_number=True))
    assert ours["InvoiceNumber"] == "ACME-1042"


def test_tax_split_over_several_taxed_lines_by_largest_remainder():
    doc = make_doc(materials=[{"sku": "A", "description": "Part A", "quantity": "1", "unit_price": "10.00",
                               "taxable": True},
                              {"sku": "B", "description": "Part B", "quantity": "1", "unit_price": "10.00",
                               "taxable": True},
                              {"sku": "C", "description": "Part C", "quantity": "1", "unit_price": "10.00",
                               "taxable": True}],
                   labor=[], fees=[], discounts=[], tax={"rate": "0.0825", "jurisdiction": "TX"})
    inv = body(doc)
    assert doc["tax"]["amount"] == D("2.48")  # 30.00 x 8.25 %, rounded once; per line 0.825 each
    assert [li["TaxAmount"] for li in inv["LineItems"]] == [D("0.83"), D("0.83"), D("0.82")]
    # Xero's own per-line rounding would have made 3 x 0.82 (half-even) = 2.46 or 3 x 0.83 = 2.49
    assert xero_total(inv, {"OUTPUT": D("0.0825"), "NONE": D(0)}) == doc["total"] == D("32.48")


def test_quantity_times_price_that_xero_might_round_otherwise_is_sent_as_one_line_amount():
    doc = make_doc(materials=[{"sku": "R410A", "description": "Refrigerant R-410A", "quantity": "2.5",
                               "unit_price": "12.97", "taxable": True}], labor=[], fees=[], discounts=[])
    line = body(doc)["LineItems"][0]
    assert doc["lines"][0]["amount"] == D("32.43")  # 32.425 half-up (ours); half-even would make it 32.42
    assert line["Quantity"] == 1 and line["UnitAmount"] == D("32.43")  # so the tie is never left to Xero
    assert line["Description"] == "Refrigerant R-410A (2.5 x 12.97)"
    assert xero_total(body(doc)) == doc["total"]


def test_non_tie_fractional_product_keeps_quantity_and_price():
    doc = make_doc(materials=[{"sku": "R410A", "description": "Refrigerant R-410A", "quantity": "2.5",
                               "unit_price": "12.99", "taxable": True}], labor=[], fees=[], discounts=[])
    line = body(doc)["LineItems"][0]  # 32.475 rounds to 32.48 both half-up and half-even
    assert (line["Quantity"], line["UnitAmount"], line["LineAmount"]) == (D("2.5"), D("12.99"), D("32.48"))


def test_exact_fractional_quantity_is_kept():
    doc = make_doc(materials=[{"sku": "R", "description": "Refrigerant", "quantity": "1.5", "unit_price": "10.00",
                               "taxable": True}], labor=[], fees=[], discounts=[])
    line = body(doc)["LineItems"][0]
    assert (line["Quantity"], line["UnitAmount"], line["Description"]) == (D("1.5"), D("10.00"), "Refrigerant")


def test_unit_price_with_more_than_two_decimals_is_sent_as_the_line_amount():
    doc = make_doc(labor=[{"description": "Labour", "hours": "3", "rate": "33.335", "taxable": False}],
                   materials=[], fees=[], discounts=[])
    line = body(doc)["LineItems"][0]
    assert doc["lines"][0]["amount"] == D("100.01")  # 100.005 half-up
    assert (line["Quantity"], line["UnitAmount"]) == (1, D("100.01"))
    assert xero_total(body(doc)) == doc["total"]


def test_zero_decimal_currency_is_split_in_whole_units():
    doc = make_doc(currency="JPY", labor=[{"description": "Labour", "hours": "1", "rate": "10000", "taxable": False}],
                   materials=[{"sku": "A", "description": "Part", "quantity": "1", "unit_price": "3333",
                               "taxable": True}],
                   fees=[{"description": "Trip", "amount": "1000", "taxable": True}],
                   discounts=[{"description": "Promo", "amount": "1001"}], tax={"rate": "0.10", "jurisdiction": "JP"})
    inv = body(doc)
    for li in inv["LineItems"]:
        for name in ("LineAmount", "TaxAmount", "DiscountAmount"):
            if name in li:
                assert li[name] == li[name].to_integral_value(), (name, li[name])
    assert sum(li.get("DiscountAmount", 0) for li in inv["LineItems"]) == doc["discount_total"] == D(1001)
    assert xero_total(inv, {"OUTPUT": D("0.10"), "NONE": D(0)}) == doc["total"]


def test_three_decimal_currency_amounts_that_do_not_fit_two_decimals_are_refused():
    doc = make_doc(currency="KWD", labor=[{"description": "Labour", "hours": "1", "rate": "10.125", "taxable": False}],
                   materials=[], fees=[], discounts=[])
    with pytest.raises(Rejected, match=r"2 decimals.*10\.125 KWD"):
        body(doc)
    fits = make_doc(currency="KWD", labor=[{"description": "Labour", "hours": "1", "rate": "10.120",
                                            "taxable": False}], materials=[], fees=[], discounts=[])
    assert body(fits)["LineItems"][0]["LineAmount"] == D("10.12")


@pytest.mark.parametrize("missing, option", [
    ({"accounts": {"labor": "200", "material": "260"}}, "platforms.books.accounts.fee"),
    ({"tax_types": {"exempt": "NONE"}}, "platforms.books.tax_types.taxable"),
    ({"tax_types": {"taxable": "OUTPUT"}}, "platforms.books.tax_types.exempt"),
])
def test_missing_mapping_names_the_option(missing, option):
    opts = {"accounts": ACCOUNTS, "tax_types": TAX_TYPES, **missing}
    with pytest.raises(MappingMissing, match=option.replace(".", r"\.")):
        body(make_doc(), t.Mapping.from_options(opts, "books"))


def test_only_the_kinds_used_need_a_mapping():
    doc = make_doc(labor=[], fees=[])  # one taxed material line
    opts = {"accounts": {"material": "260"}, "tax_types": {"taxable": "OUTPUT"}}
    assert body(doc, t.Mapping.from_options(opts, "books"))["LineItems"][0]["AccountCode"] == "260"


def test_dumps_writes_decimals_exactly_and_refuses_floats():
    text = t.dumps({"a": D("0.10"), "b": [D("1E+2"), 3, True, None], "c": "Nguyễn \"x\""})
    assert text == '{"a":0.10,"b":[100,3,true,null],"c":"Nguyễn \\"x\\""}'
    assert t.loads(text)["a"] == D("0.10")
    with pytest.raises(TypeError):
        t.dumps({"a": 0.1})
    json.loads(t.dumps({"Invoices": [body(make_doc())]}))  # valid JSON


def test_idempotency_keys_stay_within_128_characters():
    key = "a" * 48
    assert t.idempotency_key(key) == key
    assert t.idempotency_key(key, "email") == key + ":email"
    long = t.idempotency_key("k" * 200, "contact")
    assert len(long) <= 128 and long == t.idempotency_key("k" * 200, "contact")
    assert t.batch_key([key]) == key
    assert len(t.batch_key([key] * 50)) <= 128 and t.batch_key(["a", "b"]) != t.batch_key(["b", "a"])


def test_where_terms():
    assert t.where_eq("Reference", "ACME-1") == 'Reference=="ACME-1"'
    assert t.where_eq("Name", 'say "hi"') == 'Name=="say \\"hi\\""'
    assert t.invoices_where({"number": "ACME-1"}) == 'Type=="ACCREC" AND Reference=="ACME-1"'
    assert t.contacts_where({"id": "C-1", "email": "a@b.c"}) == 'ContactNumber=="C-1" OR EmailAddress=="a@b.c"'
    assert t.contacts_where({"id": "C" * 60, "email": None}) is None


def test_error_texts():
    validation = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                  "Elements": [{"ValidationErrors": [{"Message": "Invoice # must be unique."}]},
                               {"ValidationErrors": [{"Message": "Account code '9' is not a valid code."}]}]}
    assert t.error_text(validation) == ("ValidationException: Invoice # must be unique.; "
                                        "Account code '9' is not a valid code.")
    assert t.error_text({"Type": "PostDataInvalidException", "Message": "JSON invalid"}) == \
        "PostDataInvalidException: JSON invalid"
    assert t.error_text({"error": "invalid_grant"}) == "invalid_grant"
    assert t.error_text({"Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired at x"}) == \
        "Unauthorized: TokenExpired: token expired at x"
    assert t.error_text(None, "plain text") == "plain text"


def test_a_different_total_is_rejected_with_both_figures():
    doc = make_doc()
    with pytest.raises(Rejected, match=r"252\.00 USD.*251\.10 USD"):
        t.check_total({"InvoiceID": "x", "Total": D("252.00")}, doc)
    t.check_total({"InvoiceID": "x", "Total": D("251.10")}, doc)
    t.check_total({"InvoiceID": "x", "Total": 251.1}, doc)  # even a float answer compares exactly as text


def test_created_from_answer():
    doc = make_doc()
    answer = {"Invoices": [{"InvoiceID": "id-1", "InvoiceNumber": "INV-0007", "Reference": doc["number"],
                            "Type": "ACCREC", "Status": "AUTHORISED", "Total": D("251.10")}]}
    [created] = t.created_each(answer, [doc])
    assert created.external_id == "id-1" and created.number == "INV-0007"
    assert created.url.endswith("InvoiceID=id-1") and created.detail["sent_to_contact"] is False
    answer["Invoices"][0]["Reference"] = "OTHER"
    with pytest.raises(Rejected):
        t.created_each(answer, [doc])
    with pytest.raises(Rejected):
        t.created_each({"Invoices": []}, [doc])


def test_each_invoice_of_a_batch_gets_its_own_outcome():
    good, bad, off = make_doc(number="A-1"), make_doc(number="A-2"), make_doc(number="A-3")
    answer = {"Invoices": [
        {"InvoiceID": "id-1", "Reference": "A-1", "Total": D("251.10")},
        {"Reference": "A-2", "HasErrors": True, "StatusAttributeString": "ERROR",
         "ValidationErrors": [{"Message": "Account code '999' is not a valid code for this document."}]},
        {"InvoiceID": "id-3", "Reference": "A-3", "Total": D("251.11")}]}
    made, refused, wrong_total = t.created_each(answer, [good, bad, off])
    assert made.external_id == "id-1"
    assert isinstance(refused, Rejected) and "Account code '999'" in str(refused)
    assert isinstance(wrong_total, Rejected) and "251.11" in str(wrong_total)


def test_each_contact_of_a_batch_gets_its_own_outcome():
    customers = [{"id": "C-1"}, {"id": "C-2"}]
    answer = {"Contacts": [{"ContactID": "x-1", "Name": "A"},
                           {"Name": "B", "HasValidationErrors": True,
                            "ValidationErrors": [{"Message": "The contact name B is already assigned"}]}]}
    made, refused = t.contacts_made(answer, customers)
    assert made == "x-1" and isinstance(refused, Rejected) and "already assigned" in str(refused)
    with pytest.raises(Rejected):
        t.contacts_made({"Contacts": []}, customers)


def test_payment_status():
    s = t.payment_status({"Status": "AUTHORISED", "AmountPaid": D("100.00"), "AmountDue": D("151.10")})
    assert (s.amount_paid, s.amount_due, s.paid) == (D("100.00"), D("151.10"), False)
    assert t.payment_status({"Status": "PAID", "AmountPaid": D("251.10"), "AmountDue": D("0.00")}).paid


def test_contact_is_picked_by_our_id_before_email_and_only_when_active():
    customer = {"id": "C-1", "email": "Huong@Example.com"}
    contacts = [{"ContactID": "by-email", "EmailAddress": "huong@example.com", "ContactStatus": "ACTIVE"},
                {"ContactID": "by-number", "ContactNumber": "C-1", "ContactStatus": "ACTIVE"}]
    assert t.pick_contact(contacts, customer) == "by-number"
    assert t.pick_contact(contacts[:1], customer) == "by-email"
    assert t.pick_contact([{**contacts[0], "ContactStatus": "ARCHIVED"}], customer) is None


def test_invoice_lookup_ignores_deleted_ones():
    doc = {"number": "ACME-1"}
    deleted = {"Type": "ACCREC", "Reference": "ACME-1", "Status": "DELETED", "InvoiceID": "a"}
    live = {"Type": "ACCREC", "Reference": "ACME-1", "Status": "AUTHORISED", "InvoiceID": "b"}
    assert t.pick_invoice([deleted], doc) is None
    assert t.pick_invoice([deleted, live], doc)["InvoiceID"] == "b"
    assert t.pick_invoice([{**live, "InvoiceNumber": "ACME-1", "Reference": ""}], doc, by_number=True)


def test_allocate():
    q = D("0.01")
    assert t.allocate(D("1.00"), [D(1), D(1), D(1)], q) == [D("0.34"), D("0.33"), D("0.33")]
    assert t.allocate(D("0.00"), [D(5)], q) == [D("0.00")]
    assert t.allocate(D("0.00"), [], q) == []
    assert sum(t.allocate(D("27.50"), [D("200.00"), D("50.00"), D("25.00")], q)) == D("27.50")
    with pytest.raises(ValueError):
        t.allocate(D("1.00"), [], q)
