"""QuickBooks mapping, pure: the whole sample corpus becomes bodies QuickBooks accepts and whose total is ours."""
from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import pytest

from invoicer.errors import MappingMissing, Rejected
from invoicer.providers.quickbooks import transform
from invoicer.providers.quickbooks.simulator import Fault, QuickBooksSimulator

from .. import corpus_docs
from . import OPTIONS

CUSTOMER = "58"


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


@pytest.fixture(scope="module")
def sim():
    s = QuickBooksSimulator()
    s.customers[CUSTOMER] = {"Id": CUSTOMER, "DisplayName": "Someone"}
    return s


def _body(doc, options=OPTIONS):
    return transform.invoice_body(doc, options, CUSTOMER, "books")


def test_every_corpus_invoice_adds_up_to_our_total(docs, sim):
    for doc in docs:
        body = _body(doc)
        items = [l for l in body["Line"] if l["DetailType"] == "SalesItemLineDetail"]
        discounts = [l for l in body["Line"] if l["DetailType"] == "DiscountLineDetail"]
        assert len(items) == len(doc["lines"]) and len(discounts) <= 1
        for line, ours in zip(items, doc["lines"]):
            d = line["SalesItemLineDetail"]
            q = Decimal(1).scaleb(-2)
            assert line["Amount"] == ours["amount"] == (d["Qty"] * d["UnitPrice"]).quantize(q, ROUND_HALF_UP)
            assert d["ItemRef"]["value"] == OPTIONS["items"][ours["kind"]]
            assert d["TaxCodeRef"]["value"] == ("TAX" if ours["taxable"] else "NON")
        discount = discounts[0]["Amount"] if discounts else Decimal(0)
        assert discount == doc["discount_total"]
        assert discounts == [] or discounts[0]["DiscountLineDetail"]["PercentBased"] is False
        tax = body["TxnTaxDetail"]["TotalTax"]
        assert tax == doc["tax"]["amount"]
        assert sum(l["Amount"] for l in items) - discount + tax == doc["total"]
        assert len(body["DocNumber"]) <= transform.DOC_NUMBER_MAX and body["DocNumber"] == doc["number"]
        assert body["CurrencyRef"] == {"value": doc["currency"]}
        assert transform.reference(doc) in body["PrivateNote"]
        # what the simulator (QuickBooks' documented rules: 6070 line check, discount, TotalTax override) computes
        wire = transform.loads(transform.dumps(body))
        assert sim.price(wire)["total"] == doc["total"], doc["number"]


def test_decimals_travel_as_exact_json_numbers(docs):
    doc = next(d for d in docs if any(l["quantity"] != l["quantity"].to_integral() for l in d["lines"]))
    raw = transform.dumps(_body(doc)).decode()
    parsed = json.loads(raw)  # plain JSON
    assert isinstance(parsed["Line"][0]["Amount"], (int, float))
    assert '"Amount":"' not in raw
    back = transform.loads(raw)
    assert back["TxnTaxDetail"]["TotalTax"] == doc["tax"]["amount"]
    assert [transform.dec(l["SalesItemLineDetail"]["Qty"]) for l in back["Line"][: len(doc["lines"])]] \
        == [l["quantity"] for l in doc["lines"]]
    assert transform.dumps({"a": Decimal("1E+2"), "b": Decimal("-0.10")}) == b'{"a":100,"b":-0.10}'


def test_a_nul_in_text_cannot_forge_a_number():
    assert json.loads(transform.dumps({"a": "x\x00dec:5"})) == {"a": "xdec:5"}


def test_missing_item_mapping_names_the_option(docs):
    doc = next(d for d in docs if any(l["kind"] == "fee" for l in d["lines"]))
    options = {**OPTIONS, "items": {"labor": "1", "material": "2"}}
    with pytest.raises(MappingMissing, match=r"platforms\.books\.items\.fee"):
        _body(doc, options)
    with pytest.raises(MappingMissing, match=r"platforms\.books\.items\."):
        _body(doc, {"realm_id": "1"})


def test_tax_code_option_as_string_or_mapping(docs):
    doc = next(d for d in docs if {l["taxable"] for l in d["lines"]} == {True, False})
    codes = lambda body: {l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in body["Line"]  # noqa: E731
                          if l["DetailType"] == "SalesItemLineDetail"}
    assert codes(_body(doc)) == {"TAX", "NON"}
    assert codes(_body(doc, {**OPTIONS, "tax_code": "7"})) == {"7", "NON"}
    assert codes(_body(doc, {**OPTIONS, "tax_code": {"taxable": "7", "non_taxable": "8"}})) == {"7", "8"}
    body = _body(doc, {**OPTIONS, "txn_tax_code": "3", "discount_account": "86"})
    assert body["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "3"}


def test_discounts_become_one_amount_line(docs):
    doc = next(d for d in docs if len(d["discounts"]) > 1)
    discounts = [l for l in _body(doc)["Line"] if l["DetailType"] == "DiscountLineDetail"]
    assert len(discounts) == 1 and discounts[0]["Amount"] == sum(d["amount"] for d in doc["discounts"])
    plain = next(d for d in docs if not d["discounts"])
    assert all(l["DetailType"] == "SalesItemLineDetail" for l in _body(plain)["Line"])


def test_a_number_longer_than_docnumber_is_refused(docs):
    with pytest.raises(Rejected, match="21"):
        _body({**docs[0], "number": "X" * 22})


def test_a_body_that_does_not_add_up_is_never_built(docs):
    with pytest.raises(Rejected, match="adds up to"):
        _body({**docs[0], "total": docs[0]["total"] + Decimal("0.01")})


def test_created_checks_the_platform_total(docs):
    doc = docs[0]
    ok = transform.created({"Id": "130", "DocNumber": doc["number"], "TotalAmt": doc["total"],
                            "Balance": doc["total"]}, doc)
    assert ok.external_id == "130" and ok.number == doc["number"] and "txnId=130" in ok.url
    off = doc["total"] + Decimal("0.02")
    with pytest.raises(Rejected) as caught:
        transform.created({"Id": "130", "DocNumber": doc["number"], "TotalAmt": off}, doc)
    assert str(off) in str(caught.value) and str(doc["total"]) in str(caught.value)


def test_payment_status_reads_balance_against_total():
    s = transform.payment_status({"TotalAmt": Decimal("100.00"), "Balance": Decimal("40.00")})
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("60.00"), Decimal("40.00"), False)
    s = transform.payment_status({"TotalAmt": Decimal("100.00"), "Balance": 0})
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("100.00"), Decimal("0"), True)


def test_query_literals_are_escaped():
    assert transform.customer_query("DisplayName", "O'Brien \\ Co") == \
        "select * from Customer where DisplayName = 'O\\'Brien \\\\ Co'"
    assert transform.invoice_query("ACME-001001") == "select * from Invoice where DocNumber = 'ACME-001001'"


def test_display_name_has_no_colon():
    assert transform.display_name({"name": "Acme: Plant 2\tEast"}) == "Acme Plant 2 East"


def test_fault_text_reads_quickbooks_errors():
    body = {"Fault": {"Error": [{"Message": "Duplicate Document Number Error", "Detail": "DocNumber=1 used",
                                 "code": "6140"}], "type": "ValidationFault"}, "time": "x"}
    assert transform.fault_text(body) == "ValidationFault: [6140] Duplicate Document Number Error - DocNumber=1 used"
    assert transform.fault_codes(body) == {"6140"}
    assert transform.fault_text({"Invoice": {}}) is None


def test_simulator_rules_catch_what_quickbooks_refuses(docs, sim):
    body = transform.loads(transform.dumps(_body(docs[0])))
    line = body["Line"][0]
    line["Amount"] = transform.dec(line["Amount"]) + Decimal("0.01")
    with pytest.raises(Fault) as caught:
        sim.price(body)
    assert caught.value.code == "6070"
    body = transform.loads(transform.dumps(_body(docs[0])))
    body["Line"][0]["SalesItemLineDetail"]["ItemRef"] = {"value": "999"}
    with pytest.raises(Fault) as caught:
        sim.price(body)
    assert caught.value.code == "2500"


def test_a_line_our_currency_rounds_otherwise_goes_as_one_times_its_amount(docs, sim):
    """1.5 h x 11875 JPY = 17812.5 -> 17813 yen by our rules; QuickBooks checks Qty x UnitPrice to the
    cent, so the line goes as 1 x 17813 with the working kept in the description."""
    doc = {**docs[0], "currency": "JPY", "discounts": [], "discount_total": Decimal(0),
           "lines": [{"kind": "labor", "description": "Repair", "sku": None, "quantity": Decimal("1.5"),
                      "unit_price": Decimal("11875"), "amount": Decimal("17813"), "taxable": False}],
           "subtotal": Decimal("17813"), "tax": {"rate": Decimal(0), "jurisdiction": "JP", "amount": Decimal(0)},
           "total": Decimal("17813")}
    [line] = [l for l in _body(doc)["Line"] if l["DetailType"] == "SalesItemLineDetail"]
    assert line["SalesItemLineDetail"]["Qty"] == 1 and line["SalesItemLineDetail"]["UnitPrice"] == Decimal("17813")
    assert line["Amount"] == Decimal("17813") and "(1.5 x 11875)" in line["Description"]
    assert sim.price(transform.loads(transform.dumps(_body(doc))))["total"] == Decimal("17813")
