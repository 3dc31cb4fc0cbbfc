"""Contract for Business Central: every sample job, mapped, uses only the writable properties of the v2.0
salesInvoice / salesInvoiceLine / customer resources (as transcribed from Microsoft's resource pages into
the simulator; ../shared/vendor-specs/dynamics365-bc holds only a SOURCE.txt, no machine-readable spec),
fits BC's field lengths and precisions, and comes to our total by BC's own arithmetic."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from invoicer.providers.dynamics365 import simulator as sim
from invoicer.providers.dynamics365 import transform as t
from tests.providers import corpus_docs
from tests.providers.dynamics365 import bc_options

MAPPING = t.Mapping.from_options(bc_options(sim.BusinessCentralSimulator()), "erp")
RATES = {"TAXABLE": Decimal("0.08"), "NONTAXABLE": Decimal(0)}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_corpus_header_and_line_uses_writable_properties_only(docs):
    for doc in docs:
        header = t.header(doc, "C10010")
        assert set(header) <= sim.INVOICE_WRITABLE, doc["number"]
        assert all(DATE.match(header[k]) for k in ("invoiceDate", "postingDate", "dueDate"))
        assert len(header["externalDocumentNumber"]) <= 35
        for line in t.lines(doc, MAPPING):
            assert set(line) <= sim.LINE_WRITABLE and line["lineType"] in sim.LINE_TYPES, doc["number"]
            assert len(line["description"]) <= 100
            for k in ("quantity", "unitPrice"):
                assert isinstance(line[k], Decimal) and line[k] == line[k].quantize(Decimal("0.00001"))
        body = t.customer_body(doc["customer"])
        assert set(body) <= sim.CUSTOMER_WRITABLE and len(body["displayName"]) <= 100


def test_bcs_arithmetic_gives_our_total_for_every_corpus_invoice(docs):
    wrong = {}
    for doc in docs:
        lines = [{**l, "amountExcludingTax": sim.line_amount(l, doc["currency"])} for l in t.lines(doc, MAPPING)]
        net, tax = sim.totals(lines, Decimal(0), doc["currency"], RATES)
        if (net + tax, tax) != (doc["total"], Decimal(0)):
            wrong[doc["number"]] = (str(net + tax), str(doc["total"]))
    assert wrong == {}
