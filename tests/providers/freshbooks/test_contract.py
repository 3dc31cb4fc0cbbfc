"""Contract: every sample job, mapped for FreshBooks, uses only fields FreshBooks documents, money only as
{amount, code} strings in the invoice currency, and comes to our total by FreshBooks' arithmetic (the
simulator's; a one-cent tax tie is settled by the adapter's rounding line). FreshBooks publishes no
machine-readable spec (../shared/vendor-specs/freshbooks/SOURCE.txt): the field names are those of
FreshBooks' API docs as the SDK examples use them (amcintosh/freshbooks-python-sdk examples/create_invoice*.py,
README "clients.create") and the Perl client's docs. Skipped without ../shared."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.freshbooks import transform as t
from invoicer.providers.freshbooks.simulator import FreshBooksSimulator
from tests.providers import corpus_docs

INVOICE_FIELDS = {"customerid", "invoice_number", "create_date", "due_offset_days", "currency_code", "lines",
                  "po_number", "notes", "terms", "discount_value", "language", "address"}
LINE_FIELDS = {"type", "name", "description", "qty", "unit_cost", "taxName1", "taxAmount1", "taxName2",
               "taxAmount2"}
CLIENT_FIELDS = {"email", "fname", "lname", "organization", "currency_code", "mob_phone", "bus_phone",
                 "p_street", "p_street2", "p_city", "p_province", "p_code", "p_country"}


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_corpus_invoice_uses_documented_fields_and_string_money(docs):
    for doc in docs:
        inv = t.invoice_body(doc, "1")["invoice"]
        assert set(inv) <= INVOICE_FIELDS, set(inv) - INVOICE_FIELDS
        for line in inv["lines"]:
            assert set(line) <= LINE_FIELDS, set(line) - LINE_FIELDS
            assert set(line["unit_cost"]) == {"amount", "code"} and line["unit_cost"]["code"] == doc["currency"]
            assert isinstance(line["unit_cost"]["amount"], str) and isinstance(line["qty"], str)
        assert set(t.client_body(doc["customer"], doc["currency"])["client"]) <= CLIENT_FIELDS


def test_freshbooks_arithmetic_gives_our_total_for_every_corpus_invoice(docs):
    sim = FreshBooksSimulator()
    wrong, settled = {}, 0
    for doc in docs:
        first = sim._figures(t.invoice_body(doc, "1")["invoice"]["lines"], doc["currency"])
        diff = t.difference(first, doc)
        final = first
        if diff:
            assert abs(diff) <= Decimal("0.01"), doc["number"]
            extra = [t.rounding_line(diff, doc["currency"])]
            final = sim._figures(t.invoice_body(doc, "1", extra)["invoice"]["lines"], doc["currency"])
            settled += 1
        if t.amount(final["amount"]) != doc["total"]:
            wrong[doc["number"]] = (final["amount"], str(doc["total"]))
    assert wrong == {} and settled < len(docs) // 10
