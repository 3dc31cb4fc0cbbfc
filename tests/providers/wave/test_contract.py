"""Contract: invoicer's GraphQL documents validate against the Wave schema subset (simulator.SDL, written from
Wave's published schema docs), and every sample job's InvoiceCreateInput, executed against it, coerces (decimal
strings, enums, required fields) and comes to our total by Wave's arithmetic (the simulator's; a one-cent tax
tie is remade with a rounding item, as the adapter does). Wave publishes no SDL file to check against
(../shared/vendor-specs/wave/SOURCE.txt); the field names of the input types also match the third-party
transcription flipthetrain/WaveAccounting.Net (Inputs/InvoiceCreateInput.cs, InvoiceCreateItemInput.cs,
InvoiceSendInput.cs), except `discounts`, which that 2021 copy predates. Skipped without ../shared."""
from __future__ import annotations

import pytest
from graphql import graphql_sync, parse, validate

from invoicer.providers.wave import transform as t
from invoicer.providers.wave.simulator import BUSINESS, WaveSimulator, _Root, schema
from tests.providers import corpus_docs
from tests.providers.wave import PRODUCTS

TRANSCRIBED = {"businessId", "customerId", "status", "currency", "title", "subhead", "invoiceNumber", "poNumber",
               "invoiceDate", "exchangeRate", "dueDate", "items", "memo", "footer", "disableCreditCardPayments",
               "disableBankPayments"}


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_document_validates_against_the_schema():
    for document in t.DOCUMENTS:
        assert validate(schema(), parse(document)) == [], document.split("(")[0]


def test_every_corpus_invoice_executes_and_comes_to_our_total(docs):
    sim = WaveSimulator()
    biz = sim.business()
    grant = {"businesses": frozenset({BUSINESS})}
    customer = {"id": "Customer:1", "name": "x", "email": None, "currency": {"code": "USD", "symbol": ""}}
    biz.customers[customer["id"]] = customer
    wrong, remade = {}, 0
    for doc in docs:
        taxes = {tax["rate"]: tax["id"] for tax in biz.sales_taxes.values()}
        tax_id = taxes.get(doc["tax"]["rate"]) if doc["tax"]["rate"] else None
        data = t.invoice_input(doc, BUSINESS, customer["id"], {"products": PRODUCTS}, "books", tax_id)
        assert set(data) - {"discounts"} <= TRANSCRIBED

        def create(variables):
            result = graphql_sync(schema(), t.INVOICE_CREATE, root_value=_Root(sim, grant),
                                  variable_values={"input": variables})
            assert result.errors is None, result.errors
            return t.check(result.data and {"data": result.data}, "invoiceCreate")["invoice"]

        inv = create(data)
        diff = t.difference(inv, doc)
        if diff:  # as the adapter's _finish does
            del biz.invoices[inv["id"]]
            inv = create(t.invoice_input(doc, BUSINESS, customer["id"], {"products": PRODUCTS}, "books", tax_id,
                                         rounding=diff))
            remade += 1
        if t.amount(inv["total"]) != doc["total"]:
            wrong[doc["number"]] = (inv["total"]["value"], str(doc["total"]))
    assert wrong == {} and remade < len(docs) // 10
