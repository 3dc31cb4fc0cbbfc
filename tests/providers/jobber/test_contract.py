"""Jobber contract: the InvoiceCreateInput we send uses only fields the staged excerpt of Jobber's schema
declares (../shared/vendor-specs/jobber, a hand transcription), with every required one present; and every
document the adapter sends validates against the simulator's schema."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from invoicer.providers import openapi
from invoicer.providers.jobber import transform as t

EXCERPT = openapi.SPECS / "jobber" / "jobber-invoice-types.excerpt.graphql"


def inputs() -> dict[str, dict[str, bool]]:
    """Input type -> {field: required} from the excerpt (parsed as SDL; its other types are not defined there)."""
    from graphql import InputObjectTypeDefinitionNode, NonNullTypeNode, parse

    if not EXCERPT.exists():
        pytest.skip(f"{EXCERPT} is not here (the shared folder sits beside the repository)")
    out = {}
    for node in parse(EXCERPT.read_text(encoding="utf-8")).definitions:
        if isinstance(node, InputObjectTypeDefinitionNode):
            out[node.name.value] = {f.name.value: isinstance(f.type, NonNullTypeNode) for f in node.fields}
    return out


def test_invoice_create_input_fits_the_excerpt():
    types = inputs()
    doc = {"number": "ACME-7", "issued_on": date(2026, 11, 20), "payment_terms_days": 14,
           "job": {"id": "Sm9i", "number": "42", "summary": "AC repair"}, "customer": {"external_ids": {"jobber": "Q2xp"}},
           "lines": [{"kind": "labor", "description": "Labour", "quantity": Decimal("2"), "unit_price": Decimal("85"),
                      "taxable": False}],
           "tax": {"rate": Decimal("0.08"), "jurisdiction": "FL"}, "discount_total": Decimal("5.00")}
    data = t.invoice_input(doc, {}, "Q2xp")
    create = types["InvoiceCreateInput"]
    assert set(data) <= set(create), set(data) - set(create)
    assert {f for f, required in create.items() if required} <= set(data)
    assert set(data["dueDetails"]) <= set(types["InvoiceDueDetails"])
    line_fields = types["InvoiceCreationLineItemInput"]
    for item in data["lineItems"]:
        assert set(item) <= set(line_fields) and {f for f, r in line_fields.items() if r} <= set(item)


def test_every_document_validates_against_the_simulators_schema():
    from graphql import parse, validate

    from invoicer.providers.jobber.simulator import schema

    for document in t.DOCUMENTS:
        assert validate(schema(), parse(document)) == [], document
