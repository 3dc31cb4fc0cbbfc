"""Contract: every sample job, mapped for Sage Intacct, is a create_invoice request in the order of the
gateway's DTD (as the official SDK writes it: intacct/intacct-sdk-net InvoiceCreate/InvoiceLineCreate) that
the simulator's company accepts, and its lines add up to our total. No XSD/DTD for create_invoice is
published in a repository (../shared/vendor-specs/sage-intacct/SOURCE.txt)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from invoicer.providers.sage_intacct import transform as t
from invoicer.providers.sage_intacct.simulator import SageIntacctSimulator
from tests.providers import corpus_docs
from tests.providers.sage_intacct import options


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_corpus_invoice_is_accepted_and_totals_ours(docs):
    sim = SageIntacctSimulator()
    m = t.Mapping.from_options(options(base_currency="USD"), "gl")
    wrong = {}
    for doc in docs:
        cid = t.customer_id(doc["customer"])
        sim.customers.setdefault(cid, {"RECORDNO": "1", "CUSTOMERID": cid, "NAME": "x"})
        body = ET.fromstring(ET.tostring(t.create_invoice(doc, m, cid)))  # as it goes over the wire
        res = ET.Element("result")
        sim._create_invoice(res, body)
        stored = sim.invoices[res.findtext("key")]
        if stored["TOTALENTERED"] != doc["total"]:
            wrong[doc["number"]] = (str(stored["TOTALENTERED"]), str(doc["total"]))
        assert all(li["AMOUNT"] == li["AMOUNT"].quantize(Decimal("0.01")) for li in stored["_lines"])
        assert stored["DOCNUMBER"] == doc["number"] and stored["CURRENCY"] == doc["currency"]
    assert wrong == {} and len(sim.invoices) == len(docs)
