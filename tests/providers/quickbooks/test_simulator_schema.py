"""The simulator refuses, over real HTTP, what Intuit's XSDs say QuickBooks cannot read, and only that.

Every invoice and customer create body is checked against ../shared/vendor-specs/quickbooks (types Invoice and
Customer) before the simulator's own rules; a body the schema refuses is a 400 ValidationFault, code 2010, with
the schema's complaint in Detail, and nothing is stored. Skipped when the folder or xmlschema is not here.
"""
from __future__ import annotations

import pytest
import requests

from invoicer.providers.quickbooks import transform
from invoicer.providers.quickbooks.simulator import QuickBooksSimulator
from invoicer.providers.simulate import Running

from .. import corpus_docs, spec
from . import OPTIONS, REALM

pytest.importorskip("xmlschema")
CUSTOMER = "58"


@pytest.fixture(scope="module")
def doc():
    return corpus_docs()[0]


def serve(sim: QuickBooksSimulator):
    """The simulator on loopback, with a known customer and a valid access token."""
    sim.customers[CUSTOMER] = {"Id": CUSTOMER, "DisplayName": "Someone"}
    running = Running(sim)
    running.token = sim.issue_tokens()["access_token"]
    return running


@pytest.fixture
def qbo():
    spec("quickbooks", "IntuitRestServiceDef.xsd")
    running = serve(QuickBooksSimulator(realm_id=REALM))
    assert running.sim.spec and running.sim.validate  # the shared folder is here: the check is on
    yield running
    running.stop()


def post(running, entity: str, body: dict) -> requests.Response:
    return requests.post(f"{running.url}/v3/company/{REALM}/{entity.lower()}", data=transform.dumps(body),
                         headers={"Authorization": f"Bearer {running.token}", "Accept": "application/json",
                                  "Content-Type": "application/json"}, timeout=15)


def invoice(doc) -> dict:
    return transform.invoice_body(doc, OPTIONS, CUSTOMER, "books")


def refused(answer: requests.Response) -> dict:
    """The one Error of a 400 ValidationFault for a body QuickBooks cannot read."""
    assert answer.status_code == 400, answer.text
    fault = answer.json()["Fault"]
    assert fault["type"] == "ValidationFault" and len(fault["Error"]) == 1
    error = fault["Error"][0]
    assert error["code"] == "2010" and error["Message"] == "Request has invalid or unsupported property"
    return error


# ---------------------------------------------------------------- refused

def test_an_unknown_field_is_refused(qbo, doc):
    error = refused(post(qbo, "Invoice", {**invoice(doc), "InvoiceNumber": "1"}))
    assert "Invoice.InvoiceNumber: no such element in Invoice" in error["Detail"]
    assert error["element"] == "Invoice.InvoiceNumber"
    body = invoice(doc)
    body["Line"][0]["SalesItemLineDetail"]["Quantity"] = 1  # the field is Qty
    error = refused(post(qbo, "Invoice", body))
    assert "Invoice.Line.SalesItemLineDetail.Quantity: no such element in SalesItemLineDetail" in error["Detail"]
    assert qbo.sim.invoices == {}


def test_a_wrong_type_is_refused(qbo, doc):
    error = refused(post(qbo, "Invoice", {**invoice(doc), "TxnDate": "02/11/2026"}))
    assert "/Invoice/TxnDate: Invalid datetime string '02/11/2026'" in error["Detail"]  # xmlschema's words
    assert error["element"] == "Invoice.TxnDate"
    error = refused(post(qbo, "Invoice", {**invoice(doc), "ApplyTaxAfterDiscount": "yes"}))
    assert "/Invoice/ApplyTaxAfterDiscount: 'yes' is not a boolean value" in error["Detail"]
    body = invoice(doc)
    body["Line"][0]["DetailType"] = "SalesLine"  # not in LineDetailTypeEnum
    assert "/Invoice/Line[1]/DetailType: value must be one of" in refused(post(qbo, "Invoice", body))["Detail"]
    assert qbo.sim.invoices == {}


def test_a_customer_is_checked_too(qbo, doc):
    customer = transform.customer_body(doc)
    error = refused(post(qbo, "Customer", {**customer, "Taxable": "maybe"}))
    assert "/Customer/Taxable: 'maybe' is not a boolean value" in error["Detail"]
    error = refused(post(qbo, "Customer", {**customer, "Email": "a@example.com"}))
    assert "Customer.Email: no such element in Customer" in error["Detail"]
    assert set(qbo.sim.customers) == {CUSTOMER}


# ---------------------------------------------------------------- accepted

def test_a_real_transformed_invoice_and_customer_are_accepted(qbo, doc):
    answer = post(qbo, "Invoice", invoice(doc))
    assert answer.status_code == 200, answer.text
    created = transform.loads(answer.content)["Invoice"]
    assert created["DocNumber"] == doc["number"] and created["TotalAmt"] == doc["total"]
    assert qbo.sim.by_number(doc["number"]) == [created]
    answer = post(qbo, "Customer", transform.customer_body(doc))
    assert answer.status_code == 200, answer.text
    assert answer.json()["Customer"]["Id"] in qbo.sim.customers


def test_without_the_spec_only_the_simulators_own_rules_apply(tmp_path, monkeypatch, doc):
    """spec=False, or no folder (INVOICER_QUICKBOOKS_SPEC elsewhere): no schema check, the product still runs."""
    monkeypatch.setenv("INVOICER_QUICKBOOKS_SPEC", str(tmp_path / "absent"))
    absent = QuickBooksSimulator(realm_id=REALM)
    assert absent.spec is None and absent.validate is None
    off = QuickBooksSimulator(realm_id=REALM, spec=False)
    assert off.spec is None and off.validate is None
    on = QuickBooksSimulator(realm_id=REALM, spec=spec("quickbooks", "IntuitRestServiceDef.xsd").parent)
    assert on.validate is not None  # an explicit folder wins over the environment
    running = serve(off)
    try:  # "yes" is no xs:boolean, but the simulator's own rules only read it as truthy
        answer = post(running, "Invoice", {**invoice(doc), "ApplyTaxAfterDiscount": "yes"})
        assert answer.status_code == 200, answer.text
    finally:
        running.stop()
