"""Contract: every sample job, mapped for Zoho Books, uses only fields Zoho documents and comes to our total by
Zoho's arithmetic (the simulator's, see its docstring). Zoho publishes no machine-readable spec here
(../shared/vendor-specs/zoho-books/SOURCE.txt); the field names below are those Zoho's own Java wrapper
(zoho/books-java-wrappers, model/Invoice.java, LineItem.java, Contact.java, ContactPerson.java toJSON)
writes, plus `is_inclusive_tax`, documented on the v3 Invoices page. Skipped without ../shared."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.zoho_books import transform as t
from invoicer.providers.zoho_books.simulator import Org, ZohoBooksSimulator
from tests.providers import corpus_docs

INVOICE_FIELDS = {"customer_id", "reference_number", "invoice_number", "date", "due_date", "line_items", "notes",
                  "discount", "discount_type", "is_discount_before_tax", "is_inclusive_tax", "adjustment",
                  "payment_terms", "terms", "tax_id", "template_id", "exchange_rate"}
LINE_FIELDS = {"item_id", "name", "description", "rate", "quantity", "tax_id", "unit", "item_order", "discount"}
CONTACT_FIELDS = {"contact_name", "contact_type", "currency_id", "contact_persons", "billing_address",
                  "company_name", "payment_terms", "notes"}
PERSON_FIELDS = {"first_name", "last_name", "email", "phone", "mobile", "is_primary_contact", "salutation"}
ADDRESS_FIELDS = {"address", "city", "state", "zip", "country", "fax"}


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def _org_with_taxes(docs) -> tuple[Org, dict[str, str]]:
    org = ZohoBooksSimulator._new_org("1")
    ids = {}
    for rate in {d["tax"]["rate"] for d in docs}:
        tax_id = f"T{len(ids)}"
        org.taxes[tax_id] = {"tax_id": tax_id, "tax_name": "x", "tax_percentage": rate * 100, "tax_type": "tax"}
        ids[t.percent_key(rate)] = tax_id
    return org, ids


def test_every_corpus_invoice_uses_only_documented_fields(docs):
    for doc in docs:
        body = t.invoice_body(doc, "C", "T", {"use_our_number": True, "items": {"labor": "I"}})
        assert set(body) <= INVOICE_FIELDS, set(body) - INVOICE_FIELDS
        for line in body["line_items"]:
            assert set(line) <= LINE_FIELDS, set(line) - LINE_FIELDS
            assert len(line["name"]) <= t.NAME_MAX
        contact = t.contact_body(doc["customer"], "CUR")
        assert set(contact) <= CONTACT_FIELDS
        assert all(set(p) <= PERSON_FIELDS for p in contact.get("contact_persons", []))
        assert set(contact.get("billing_address", {})) <= ADDRESS_FIELDS


def test_zohos_arithmetic_gives_our_total_for_every_corpus_invoice(docs):
    """Zoho's figures for the body as sent; where a half-cent tie in the tax rounds the other way, the
    one-cent rounding adjustment the adapter then sends makes the total ours."""
    org, taxes = _org_with_taxes(docs)
    q = Decimal("0.01")
    wrong, adjusted = {}, 0

    def figures(body):
        lines = [{**li, "item_total": (li["rate"] * li["quantity"]).quantize(q)} for li in body["line_items"]]
        return ZohoBooksSimulator._figures(None, org, body, lines, q)

    for doc in docs:
        tax_id = taxes[t.percent_key(doc["tax"]["rate"])]
        first = figures(t.invoice_body(doc, "C", tax_id, {}))
        fix = t.rounding_fix(first, doc)
        final = figures(t.invoice_body(doc, "C", tax_id, {}, fix)) if fix is not None else first
        adjusted += fix is not None
        if (final["total"], first["discount_amount"]) != (doc["total"], doc["discount_total"]) or \
                abs(first["tax_total"] - doc["tax"]["amount"]) > q:
            wrong[doc["number"]] = (str(final["total"]), str(doc["total"]))
    assert wrong == {}
    assert 0 < adjusted < len(docs) // 10  # ties are rare, and they are there
