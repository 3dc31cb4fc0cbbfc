"""Dynamics 365 Finance and Operations (edition finance_operations): free text invoices over real HTTP
against FinanceOperationsSimulator, and every corpus invoice's bodies checked against the CDM entity
definitions in ../shared/vendor-specs/dynamics365-fo."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import MappingMissing, OutcomeUnknown
from invoicer.providers import registry
from invoicer.providers.dynamics365 import transform as t
from invoicer.providers.dynamics365.simulator import BASE_FIELDS, FinanceOperationsSimulator, cdm_attributes
from invoicer.providers.simulate import Running
from tests.providers import corpus_docs, spec
from tests.providers.dynamics365 import on_simulator
from tests.providers.xero import make_doc

Dynamics365 = registry.get("dynamics365")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(FinanceOperationsSimulator()) as r:
        yield r


@pytest.fixture
def fo(clean, running, tmp_path, monkeypatch):
    return on_simulator(running, tmp_path, monkeypatch, lambda **extra: {**running.sim.platform(running.url), **extra})


def doc_for(account: str = "US-001", **changes):
    return make_doc(customer={"external_ids": {"dynamics365": account}}, **changes)


def test_the_edition_picks_finance_and_operations(fo):
    p = fo.provider()
    assert type(p).__name__ == "FinanceOperations" and "send_invoice" not in p.capabilities


def test_create_makes_a_free_text_invoice_with_our_total(fo):
    doc = doc_for()
    created = fo.provider().create_invoice(doc, KEY)
    [header] = fo.sim.headers.values()
    assert created.external_id == header["FreeTextNumber"] and header["ExternalInvoiceId"] == "ACME-1001"
    assert header["CustomerAccount"] == "US-001" and header["InvoiceDate"] == "2026-11-02T12:00:00Z"
    lines = fo.sim.fo_lines
    assert [l["LineNumber"] for l in lines] == [1, 2, 3, 4, 5]
    assert sum(l["TransactionCurrencyAmount"] + l["SalesTaxAmount"] for l in lines) == doc["total"] == Decimal("251.10")
    assert created.detail == {"total": "251.10", "posted": False, "company": "usmf"}
    token = [r for r in fo.sim.received if r.path.endswith("/token")][0]
    assert token.form()["scope"] == [f"{fo.provider().options['base_url']}/.default"]


def test_a_retry_finishes_the_lines_of_a_half_made_invoice(fo):
    doc = doc_for()
    fo.sim.inject("", "", "", "", "", "drop")  # token, lookup, header, lines GET, line 1 | line 2's answer lost
    with pytest.raises(OutcomeUnknown):
        fo.provider().create_invoice(doc, KEY)
    assert len(fo.sim.headers) == 1 and len(fo.sim.fo_lines) == 2
    found = fo.provider(attempt=2).find_invoice(doc, KEY)
    assert len(fo.sim.headers) == 1 and len(fo.sim.fo_lines) == 5
    assert found.external_id == next(iter(fo.sim.headers))
    again = fo.provider(attempt=3).create_invoice(doc, KEY)
    assert again.external_id == found.external_id and len(fo.sim.fo_lines) == 5


def test_a_customer_without_an_account_is_a_mapping_for_the_tenant(fo):
    with pytest.raises(MappingMissing, match="external_ids.dynamics365"):
        fo.provider().create_invoice(make_doc(), KEY)
    assert fo.sim.headers == {}


def test_check_options_for_finance_and_operations():
    sim = FinanceOperationsSimulator()
    assert Dynamics365.check_options(sim.platform("https://x.operations.dynamics.com"), "erp") == []
    problems = Dynamics365.check_options({"edition": "finance_operations", "send": True, "tax_mode": "tax_codes"},
                                         "erp")
    assert "platforms.erp.company is not set" in problems and "platforms.erp.base_url is not set" in problems
    assert any(p.startswith("platforms.erp.send") for p in problems)
    assert any("account_line only" in p for p in problems)


def test_every_corpus_body_uses_attributes_of_the_cdm_definitions():
    spec("dynamics365-fo", "FreeTextInvoiceHeaderEntity.cdm.json")
    header_fields = cdm_attributes("FreeTextInvoiceHeaderEntity") | BASE_FIELDS
    line_fields = cdm_attributes("FreeTextInvoiceLineEntity") | BASE_FIELDS
    mapping = t.Mapping.from_options(FinanceOperationsSimulator().platform("x"), "erp")
    for doc in corpus_docs():
        assert set(t.fo_header(doc, "US-001", "usmf")) <= header_fields
        lines = t.fo_lines(doc, mapping, "usmf")
        assert all(set(l) <= line_fields and len(l["Description"]) <= 60 for l in lines), doc["number"]
        assert sum(t.money.round_money(l["Quantity"] * l["UnitPrice"], doc["currency"]) for l in lines) == doc["total"]
