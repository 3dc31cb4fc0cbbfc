"""Wave mapping, pure: variables as decimal strings, product per line, typed errors from HTTP-200 answers."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, MappingMissing, RateLimited, Rejected, Unavailable
from invoicer.providers.wave import transform as t
from tests.providers.wave import PRODUCTS, make_doc

OPTIONS = {"products": PRODUCTS}


def test_invoice_input_as_decimal_strings_with_products_taxes_and_one_discount():
    data = t.invoice_input(make_doc(), "B", "C", OPTIONS, "books", "T8")
    assert (data["businessId"], data["customerId"], data["status"], data["currency"]) == ("B", "C", "DRAFT", "USD")
    assert data["invoiceNumber"] == "ACME-1001" and data["dueDate"] == "2026-12-02"
    labor, material, fee = data["items"]
    assert labor == {"productId": "Product:labor", "description": "Diagnosis and repair", "quantity": "2",
                     "unitPrice": "100.00"}
    assert material["taxes"] == [{"salesTaxId": "T8"}] and fee["productId"] == "Product:fee"
    assert data["discounts"] == [{"discountType": "FIXED", "name": "Member discount", "amount": "27.50"}]


def test_missing_product_names_the_key():
    with pytest.raises(MappingMissing, match=r"platforms\.books\.products\.fee"):
        t.invoice_input(make_doc(), "B", "C", {"products": {"labor": "1", "material": "2"}}, "books", "T8")


def test_taxed_invoice_without_a_sales_tax_is_a_mapping_error():
    with pytest.raises(MappingMissing, match="8 %"):
        t.invoice_input(make_doc(), "B", "C", OPTIONS, "books", None)


def test_rounding_item_and_ambiguous_lines():
    doc = make_doc(labor=[{"description": "Tune-up", "hours": "1.333", "rate": "85.00", "taxable": False}])
    data = t.invoice_input(doc, "B", "C", OPTIONS, "books", "T8", rounding=Decimal("-0.01"))
    assert data["items"][0]["quantity"] == "1" and data["items"][0]["unitPrice"] == "113.31"
    # with a discount: one unit on the item and on the discount, net nil, moving the tax base off the tie
    assert data["items"][-1] == {"productId": "Product:fee", "description": "Rounding", "quantity": "1",
                                 "unitPrice": "0.01"}
    assert data["discounts"][0]["amount"] == "18.84"  # 18.83 + 0.01
    plain = t.invoice_input(make_doc(discounts=[]), "B", "C", OPTIONS, "books", "T8", rounding=Decimal("-0.01"))
    assert plain["items"][-1]["unitPrice"] == "-0.01" and "discounts" not in plain


@pytest.mark.parametrize("code, error", [("UNAUTHENTICATED", AuthFailed), ("THROTTLED", RateLimited),
                                         ("INTERNAL_SERVER_ERROR", Unavailable),
                                         ("GRAPHQL_VALIDATION_FAILED", Rejected)])
def test_graphql_errors_are_typed(code, error):
    with pytest.raises(error):
        t.check({"data": None, "errors": [{"message": "no", "extensions": {"code": code}}]})


def test_did_succeed_false_is_rejected_with_input_errors():
    answer = {"data": {"invoiceCreate": {"didSucceed": False, "inputErrors": [
        {"code": "DUPLICATE", "message": "taken", "path": ["input", "invoiceNumber"]}]}}}
    with pytest.raises(Rejected, match=r"input\.invoiceNumber: taken \[DUPLICATE\]"):
        t.check(answer, "invoiceCreate")


def test_answers():
    inv = {"id": "I", "invoiceNumber": "ACME-1001", "status": "PARTIAL", "viewUrl": "https://v",
           "total": {"value": "251.10", "currency": {"code": "USD"}}, "amountPaid": {"value": "51.10"},
           "amountDue": {"value": "200.00"}}
    doc = make_doc()
    t.check_total(inv, doc)
    assert t.difference(inv, doc) == 0 and t.created(inv).url == "https://v"
    assert t.payment_status(inv) == t.PaymentStatus(Decimal("51.10"), Decimal("200.00"), False)
    assert t.pick_tax([{"id": "x", "rate": "0.08", "isArchived": True}, {"id": "y", "rate": "0.08"}],
                      Decimal("0.08")) == "y"
