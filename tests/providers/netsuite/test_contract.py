"""Contract: every sample job, mapped for NetSuite, is a body the simulator's NetSuite rules accept (known
fields only, existing item/tax code/currency ids) and comes to our total by NetSuite's arithmetic. There is
no public machine-readable NetSuite spec (the REST metadata catalog is per account, see
../shared/vendor-specs/netsuite/SOURCE.txt); the field names follow Oracle's REST web services pages."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.netsuite import transform as t
from invoicer.providers.netsuite.simulator import INVOICE_FIELDS, LINE_FIELDS, NetSuiteSimulator
from tests.providers import corpus_docs
from tests.providers.netsuite import options

CURRENCIES = {"USD": "1", "EUR": "3", "CAD": "4", "GBP": "5", "AUD": "6"}


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


@pytest.fixture
def sim():
    sim = NetSuiteSimulator()
    sim.currencies.update({"4": ("CAD", 2), "5": ("GBP", 2), "6": ("AUD", 2)})
    sim.customers["7"] = {"id": "7", "companyName": "Sample"}
    return sim


def test_every_corpus_invoice_uses_only_netsuite_fields(docs):
    m = t.Mapping.from_options(options(currencies=CURRENCIES, use_our_number=True, send=True), "erp")
    for doc in docs:
        body = t.invoice_body(doc, m, "7")
        assert set(body) <= INVOICE_FIELDS, doc["number"]
        for line in body["item"]["items"]:
            assert set(line) <= LINE_FIELDS and set(line["item"]) == {"id"}, doc["number"]


def test_netsuites_arithmetic_gives_our_total_for_every_corpus_invoice(docs, sim):
    m = t.Mapping.from_options(options(currencies=CURRENCIES), "erp")
    wrong = {}
    for doc in docs:
        record = sim._invoice(t.loads(t.dumps(t.invoice_body(doc, m, "7"))), None, True)
        assert isinstance(record, dict), (doc["number"], record.body)
        if record["total"] != doc["total"] or record["taxTotal"] != 0:
            wrong[doc["number"]] = (str(record["total"]), str(doc["total"]))
        amounts = [li["amount"] for li in record["_lines"]]
        assert all(a == a.quantize(Decimal("0.01")) for a in amounts), doc["number"]
    assert wrong == {}
