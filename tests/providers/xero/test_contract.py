"""Contract: every sample job, mapped for Xero, is a valid request by Xero's own OpenAPI spec and comes to
our total by Xero's arithmetic. Skipped when ../shared (spec or corpus) is not beside the repository."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.xero import transform as t
from invoicer.providers.xero.simulator import compute_invoice, schema_errors, spec_validator
from tests.providers import corpus_docs, spec
from tests.providers.xero import ACCOUNTS, ORG_ACCOUNTS, TAX_TYPES

CONTACT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
MAPPING = t.Mapping("books", dict(ACCOUNTS), dict(TAX_TYPES))


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


@pytest.fixture(scope="module")
def validators():
    path = str(spec("xero", "xero_accounting.yaml"))
    return {name: spec_validator(name, path) for name in ("Invoices", "Contacts", "RequestEmpty")}


def test_every_corpus_invoice_validates_against_the_openapi_invoices_schema(docs, validators):
    failures = {}
    for doc in docs:
        errors = schema_errors(validators["Invoices"], t.invoices_body([doc], [CONTACT], MAPPING))
        if errors:
            failures[doc["number"]] = errors[:3]
    assert failures == {}
    # and all 300 in one request, as create_invoices would send them (in bundles of 50)
    assert schema_errors(validators["Invoices"], t.invoices_body(docs, [CONTACT] * len(docs), MAPPING)) == []


def test_every_corpus_invoice_adds_up_to_our_total(docs):
    for doc in docs:
        inv = t.invoice(doc, CONTACT, MAPPING)
        lines = inv["LineItems"]
        assert sum(li["LineAmount"] + li["TaxAmount"] for li in lines) == doc["total"], doc["number"]
        assert sum(li["TaxAmount"] for li in lines) == doc["tax"]["amount"], doc["number"]
        assert sum(li.get("DiscountAmount", Decimal(0)) for li in lines) == doc["discount_total"], doc["number"]
        for li in lines:
            assert li["LineAmount"] == li["LineAmount"].quantize(Decimal("0.01")), doc["number"]
            assert li["UnitAmount"] == li["UnitAmount"].quantize(Decimal("0.01")), doc["number"]


def test_xeros_arithmetic_gives_our_total_for_every_corpus_invoice(docs):
    """Xero's line math (Quantity x UnitAmount - DiscountAmount, rounded; TaxAmount as sent) == ours."""
    rates = {"OUTPUT": Decimal("0.0825"), "NONE": Decimal(0)}
    wrong = {}
    for doc in docs:
        figures, errors = compute_invoice(t.invoice(doc, CONTACT, MAPPING), rates, accounts=ORG_ACCOUNTS)
        if errors or figures["Total"] != doc["total"]:
            wrong[doc["number"]] = (errors, str(figures["Total"]), str(doc["total"]))
    assert wrong == {}


def test_every_corpus_customer_is_a_valid_contact(docs, validators):
    for doc in docs:
        assert schema_errors(validators["Contacts"], t.contact_body(doc["customer"])) == [], doc["customer"]["id"]
    assert schema_errors(validators["RequestEmpty"], {}) == []


def test_the_validator_catches_what_xero_would_refuse(validators):
    bad = {"Invoices": [{"Type": "INVOICE", "Contact": {"ContactID": "not-a-uuid"}, "Total": Decimal("1.00"),
                         "CurrencyCode": "XXX"}]}
    errors = " | ".join(schema_errors(validators["Invoices"], bad))
    for expected in ("Type", "ContactID", "read-only", "CurrencyCode"):
        assert expected in errors
