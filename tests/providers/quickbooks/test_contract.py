"""Contract: every body invoicer sends to QuickBooks is valid against Intuit's own XSDs.

The spec is ../shared/vendor-specs/quickbooks/*.xsd (Intuit's QuickBooks V3 Java SDK; its JSON API uses the
same element names). invoicer.providers.quickbooks.schema turns a JSON body into the XML element the XSD
describes (children in schema order, references as simple content with attributes, XSD lexical forms) and
validates the whole element with xmlschema: element names, nesting, simple types (xs:decimal, xs:date,
xs:boolean, enumerations such as LineDetailTypeEnum) and cardinality. A JSON key the schema does not know
fails the conversion itself. The simulator applies the same check to every create it receives.
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.quickbooks import transform
from invoicer.providers.quickbooks.schema import NS, NotInSchema, errors, load, to_xml, validator
from invoicer.providers.quickbooks.simulator import QuickBooksSimulator
from invoicer.providers.simulate import Request

from .. import corpus_docs, spec
from . import OPTIONS

pytest.importorskip("xmlschema")


@pytest.fixture(scope="module")
def schema():
    return load(spec("quickbooks", "IntuitRestServiceDef.xsd").parent)  # built once per process, cached


def test_every_corpus_invoice_is_valid_against_the_invoice_type(schema):
    for doc in corpus_docs():
        body = transform.invoice_body(doc, OPTIONS, "58", "books")
        problems = errors(schema, "Invoice", body)
        assert problems == [], f"{doc['number']}: {problems[:3]}"


def test_the_wire_form_is_valid_too(schema):
    """What actually goes over the wire (Decimals as JSON numbers, dates as strings) read back, then validated."""
    doc = corpus_docs()[0]
    wire = transform.loads(transform.dumps(transform.invoice_body(doc, {**OPTIONS, "txn_tax_code": "3",
                                                                         "discount_account": "86"}, "58", "books")))
    assert errors(schema, "Invoice", wire) == []


def test_every_corpus_customer_is_valid_against_the_customer_type(schema):
    for doc in corpus_docs()[:60]:
        assert errors(schema, "Customer", transform.customer_body(doc)) == []


def test_the_simulators_answers_are_valid_invoices(schema):
    """The simulator answers in QuickBooks' shape (Id, MetaData, SubTotalLineDetail, DeliveryInfo...)."""
    doc = corpus_docs()[0]
    sim = QuickBooksSimulator()
    sim.customers["58"] = {"Id": "58", "DisplayName": "Someone"}
    body = transform.dumps(transform.invoice_body(doc, OPTIONS, "58", "books"))
    reply = sim._create_invoice(Request("POST", "/v3/company/x/invoice", {}, {}, body))
    invoice = transform.loads(reply.body)["Invoice"]
    sent = sim._send_invoice(Request("POST", "/x", {"sendTo": ["a@example.com"]}, {}, b"", {"id": invoice["Id"]}))
    for answer in (invoice, transform.loads(sent.body)["Invoice"]):
        assert errors(schema, "Invoice", answer) == []


# ---------------------------------------------------------------- the check itself checks

def test_an_unknown_field_name_fails(schema):
    body = transform.invoice_body(corpus_docs()[0], OPTIONS, "58", "books")
    with pytest.raises(NotInSchema, match="Invoice.InvoiceNumber"):
        errors(schema, "Invoice", {**body, "InvoiceNumber": "1"})
    body["Line"][0]["SalesItemLineDetail"]["Quantity"] = Decimal(1)
    with pytest.raises(NotInSchema, match="SalesItemLineDetail.Quantity"):
        errors(schema, "Invoice", body)
    check = validator(spec("quickbooks"))  # the form the simulator uses: every problem as text
    assert check("Invoice", body) == [
        "Invoice.Line.SalesItemLineDetail.Quantity: no such element in SalesItemLineDetail"]


@pytest.mark.parametrize("change, where", [
    (lambda b: b.update(TxnDate="02/11/2026"), "TxnDate"),
    (lambda b: b["Line"][0].update(DetailType="SalesLine"), "DetailType"),
    (lambda b: b["Line"][0]["SalesItemLineDetail"].update(Qty="two"), "Qty"),
    (lambda b: b.update(ApplyTaxAfterDiscount="yes"), "ApplyTaxAfterDiscount"),
    (lambda b: b.update(CustomerRef=[{"value": "1"}, {"value": "2"}]), "Unexpected child with tag 'CustomerRef'"),
])
def test_a_wrong_value_fails(schema, change, where):
    body = transform.invoice_body(corpus_docs()[0], OPTIONS, "58", "books")
    change(body)
    problems = errors(schema, "Invoice", body)
    assert problems and all(where in p for p in problems), problems


def test_element_order_matters_to_the_validator(schema):
    root = to_xml(schema.elements["Invoice"].type, "Invoice",
                  transform.invoice_body(corpus_docs()[0], OPTIONS, "58", "books"))
    doc_number = root.find(f"{{{NS}}}DocNumber")
    root.remove(doc_number)
    root.append(doc_number)  # DocNumber after everything else: not where Transaction's sequence has it
    assert list(schema.iter_errors(root))
