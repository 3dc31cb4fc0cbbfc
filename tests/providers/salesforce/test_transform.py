"""The Salesforce mapping, pure: upserts by external id, composite requests, typed errors."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, MappingMissing, RateLimited, Rejected, Unavailable
from invoicer.providers.salesforce import transform as t

from .. import corpus_docs
from . import ENTRIES, make_doc

CUSTOM = t.Layout()
ORDER = t.Layout.from_options({"object": "order", "pricebook_id": "01sX", "pricebook_entries": ENTRIES}, "crm")
WORKORDER = t.Layout.from_options({"object": "workorder", "pricebook_id": "01sX", "pricebook_entries": ENTRIES},
                                  "crm")
V = t.DEFAULT_VERSION


def test_custom_layout_upserts_account_invoice_and_lines_by_external_id():
    p = t.plan(make_doc(po_number="PO-7"), CUSTOM)
    account, invoice, *lines = p.upserts
    assert (account.object, account.field, account.value) == ("Account", "Invoicer_Customer_Id__c", "C-1")
    assert (invoice.object, invoice.field, invoice.value) == ("Invoice__c", "Invoicer_Reference__c", "ACME-1001")
    assert invoice.body["Account__r"] == {"Invoicer_Customer_Id__c": "C-1"}
    assert invoice.body["Total__c"] == Decimal("251.10") and invoice.body["Tax__c"] == Decimal("3.60")
    assert invoice.body["Invoice_Date__c"] == "2026-11-02" and invoice.body["Due_Date__c"] == "2026-12-02"
    assert invoice.body["PO_Number__c"] == "PO-7" and invoice.body["Currency__c"] == "USD"
    assert "Invoicer_Reference__c" not in invoice.body  # the external id goes in the URL only
    assert [x.value for x in lines] == [f"ACME-1001:{i}" for i in range(1, 6)]
    assert all(x.body["Invoice__r"] == {"Invoicer_Reference__c": "ACME-1001"} for x in lines)
    assert [x.body["Kind__c"] for x in lines] == ["labor", "material", "fee", "discount", "tax"]
    assert lines[3].body["Amount__c"] == Decimal("-27.50")
    assert sum(x.body["Amount__c"] for x in lines) == Decimal("251.10")
    assert invoice.path(V) == f"/services/data/{V}/sobjects/Invoice__c/Invoicer_Reference__c/ACME-1001"


def test_external_id_values_are_escaped_in_the_url():
    u = t.Upsert("Account", "Invoicer_Customer_Id__c", "C/1 ü", {}, "account")
    assert u.path("v62.0").endswith("/Invoicer_Customer_Id__c/C%2F1%20%C3%BC")


def test_one_composite_for_a_small_invoice_ending_with_the_read_back():
    [body] = t.composites(t.plan(make_doc(), CUSTOM), CUSTOM, V)
    subs = body["compositeRequest"]
    assert body["allOrNone"] is True and len(subs) == 8
    assert [s["method"] for s in subs] == ["PATCH"] * 7 + ["GET"]
    assert subs[-1]["url"].endswith("/Invoice__c/Invoicer_Reference__c/ACME-1001?fields=Id,Name,Total__c")


def test_many_lines_are_split_into_composites_of_25():
    materials = [{"sku": f"S{i}", "description": f"Part {i}", "quantity": "1", "unit_price": "1.00",
                  "taxable": False} for i in range(40)]
    bodies = t.composites(t.plan(make_doc(materials=materials), CUSTOM), CUSTOM, V)
    assert [len(b["compositeRequest"]) for b in bodies] == [25, 21]  # account, invoice, 42 lines, discount, check
    assert bodies[-1]["compositeRequest"][-1]["referenceId"] == "check"


def test_order_layout_uses_the_price_book_and_standard_fields():
    p = t.plan(make_doc(), ORDER)
    _, order, *items = p.upserts
    assert order.object == "Order" and order.body["Status"] == "Draft" and order.body["Pricebook2Id"] == "01sX"
    assert order.body["Account"] == {"Invoicer_Customer_Id__c": "C-1"} and order.body["EffectiveDate"] == "2026-11-02"
    assert [i.body["PricebookEntryId"] for i in items] == [ENTRIES[k] for k in
                                                          ("labor", "material", "fee", "discount", "tax")]
    assert items[0].body["Quantity"] == Decimal("2") and items[0].body["UnitPrice"] == Decimal("100.00")
    assert items[3].body["UnitPrice"] == Decimal("-27.50")
    assert sum(i.body["Quantity"] * i.body["UnitPrice"] for i in items) == Decimal("251.10")


def test_workorder_layout_upserts_the_work_order_and_one_line_item_per_position():
    p = t.plan(make_doc(po_number="PO-7"), WORKORDER)
    account, wo, *items = p.upserts
    assert account.object == "Account"
    assert (wo.object, wo.field, wo.value) == ("WorkOrder", "Invoicer_Reference__c", "ACME-1001")
    assert wo.path(V) == f"/services/data/{V}/sobjects/WorkOrder/Invoicer_Reference__c/ACME-1001"
    assert wo.body["Account"] == {"Invoicer_Customer_Id__c": "C-1"} and wo.body["Pricebook2Id"] == "01sX"
    assert wo.body["Subject"].startswith("Invoice ACME-1001 for job") and wo.body["Subject"].endswith("PO PO-7")
    assert not {"Name", "Status", "EffectiveDate", "WorkOrderNumber", "TotalPrice"} & set(wo.body)
    assert [(i.object, i.field, i.value) for i in items] == [
        ("WorkOrderLineItem", "Invoicer_Line_Reference__c", f"ACME-1001:{n}") for n in range(1, 6)]
    assert all(i.body["WorkOrder"] == {"Invoicer_Reference__c": "ACME-1001"} for i in items)
    assert [i.body["PricebookEntryId"] for i in items] == [ENTRIES[k] for k in
                                                          ("labor", "material", "fee", "discount", "tax")]
    assert sum(i.body["Quantity"] * i.body["UnitPrice"] for i in items) == Decimal("251.10")
    [body] = t.composites(p, WORKORDER, V)
    assert body["compositeRequest"][-1]["url"].endswith(
        "/WorkOrder/Invoicer_Reference__c/ACME-1001?fields=Id,WorkOrderNumber,TotalPrice")


def test_workorder_layout_names_a_missing_mapping():
    with pytest.raises(MappingMissing, match="pricebook_id: the Pricebook2 id for WorkOrder"):
        t.plan(make_doc(), t.Layout.from_options({"object": "workorder"}, "crm"))
    with pytest.raises(MappingMissing, match="object: 'custom', 'order' or 'workorder', not 'case'"):
        t.Layout.from_options({"object": "case"}, "crm")


def test_order_layout_names_a_missing_mapping():
    layout = t.Layout.from_options({"object": "order", "pricebook_id": "01sX",
                                    "pricebook_entries": {"labor": "x"}}, "crm")
    with pytest.raises(MappingMissing, match="platforms.crm.pricebook_entries.material"):
        t.plan(make_doc(), layout)
    with pytest.raises(MappingMissing, match="pricebook_id"):
        t.plan(make_doc(), t.Layout.from_options({"object": "order"}, "crm"))


def test_a_line_that_would_not_multiply_to_its_amount_goes_as_one_times_it():
    p = t.plan(make_doc(discounts=[], labor=[{"description": "Labour", "hours": "1.3333", "rate": "90.00",
                                                "taxable": False}]), ORDER)
    first = p.upserts[2].body
    assert (first["Quantity"], first["UnitPrice"], first["Description"]) == (1, Decimal("120.00"),
                                                                              "Labour (1.3333 x 90)")


def test_discounts_beyond_the_subtotal_are_capped_as_the_contract_says():
    doc = make_doc(discounts=[{"description": "A", "amount": "300.00"}], tax={"rate": "0", "jurisdiction": ""})
    p = t.plan(doc, ORDER)
    assert sum(u.body["Quantity"] * u.body["UnitPrice"] for u in p.upserts[2:]) == doc["total"] == 0


@pytest.mark.parametrize("currency,fee", [("JPY", "2500"), ("KWD", "25.125")])
def test_zero_and_three_decimal_currencies_add_up(currency, fee):
    doc = make_doc(currency=currency, labor=[], materials=[], fees=[{"description": "Visit", "amount": fee,
                                                                     "taxable": True}])
    for layout in (CUSTOM, ORDER, WORKORDER):
        p = t.plan(doc, layout)
        items = p.upserts[2:]
        if layout is not CUSTOM:
            assert sum(u.body["Quantity"] * u.body["UnitPrice"] for u in items) == doc["total"]
        else:
            assert sum(u.body["Amount__c"] for u in items) == p.upserts[1].body["Total__c"] == doc["total"]


def test_json_has_exact_numbers_and_no_floats():
    assert t.dumps({"a": Decimal("0.10"), "b": [Decimal("1E+1")], "c": True}) == '{"a":0.10,"b":[10],"c":true}'
    with pytest.raises(TypeError):
        t.dumps({"a": 0.1})
    assert t.loads(b'{"x": 251.10}')["x"] == Decimal("251.10")


def test_pdf_query_quotes_its_values():
    q = t.pdf_query("a0A'1", make_doc(number="O'Brien-1"))
    assert "FirstPublishLocationId = 'a0A\\'1'" in q and "Title = 'Invoice O\\'Brien-1'" in q


def test_check_total_refuses_a_rounded_total():
    p = t.plan(make_doc(), CUSTOM)
    t.check_total({"Id": "a0A", "Total__c": Decimal("251.100")}, p, CUSTOM)
    with pytest.raises(Rejected, match="Total__c 251.1 USD, ours is 251.10|251.2"):
        t.check_total({"Id": "a0A", "Total__c": Decimal("251.2")}, p, CUSTOM)


@pytest.mark.parametrize("status,code,fields,kind", [
    (403, "REQUEST_LIMIT_EXCEEDED", None, RateLimited),
    (401, "INVALID_SESSION_ID", None, AuthFailed),
    (400, "DUPLICATE_VALUE", ["Invoicer_Reference__c"], Unavailable),
    (400, "DUPLICATE_VALUE", ["Name"], Rejected),
    (400, "UNABLE_TO_LOCK_ROW", None, Unavailable),
    (400, "REQUIRED_FIELD_MISSING", ["Approver__c"], Rejected),
    (400, "INVALID_FIELD", None, Rejected),
    (503, "SERVER_UNAVAILABLE", None, Unavailable),
    (300, "MULTIPLE_CHOICES", None, Rejected),
])
def test_salesforce_errors_become_typed_errors(status, code, fields, kind):
    errors = [{"message": "m", "errorCode": code, **({"fields": fields} if fields else {})},
              {"message": "rolled back", "errorCode": t.HALTED}]
    exc = t.typed(status, errors, "composite subrequest invoice", ("Invoicer_Reference__c",))
    assert type(exc) is kind
    if code == "REQUIRED_FIELD_MISSING":
        assert "required field(s) missing: Approver__c" in str(exc)
    if kind is RateLimited:
        assert exc.retry_after == 3600
    assert "PROCESSING_HALTED" not in str(exc)


def test_every_sample_invoice_maps_with_its_exact_total():
    for doc in corpus_docs():
        for layout in (ORDER, WORKORDER):
            p = t.plan(doc, layout)
            assert sum(u.body["Quantity"] * u.body["UnitPrice"] for u in p.upserts[2:]) == doc["total"], doc["number"]
        c = t.plan(doc, CUSTOM)
        assert sum(u.body["Amount__c"] for u in c.upserts[2:]) == doc["total"], doc["number"]
