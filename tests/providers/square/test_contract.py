"""Contract: every corpus invoice, mapped for Square, is a valid request by Square's own OpenAPI spec
(../shared/vendor-specs/square/api.invoices-subset.json: types, enums, lengths, readOnly fields, and no
property the spec does not declare), and Square's arithmetic (the simulator) gives our total."""
from __future__ import annotations

import json

import pytest

from invoicer.providers import openapi
from invoicer.providers.simulate import Request
from invoicer.providers.square import transform as t
from invoicer.providers.square.simulator import SquareSimulator

from .. import corpus_docs, spec

HEADERS = {"authorization": "Bearer EAAAsim-access-token", "content-type": "application/json"}


@pytest.fixture(scope="module")
def path():
    return str(spec("square", "api.invoices-subset.json"))


def problems(path: str, schema: str, body: dict) -> list[str]:
    return [f"unknown property {p}" for p in openapi.unknown(path, schema, body)] + \
        openapi.errors(openapi.validator(path, schema), body)


def test_every_corpus_request_validates(path):
    failures = {}
    for i, doc in enumerate(corpus_docs()):
        key = f"{i:048d}"
        plan = t.plan(doc, key)
        bodies = {
            "CreateCustomerRequest": {"idempotency_key": t.customer_key(doc, plan.customer), **plan.customer},
            "SearchCustomersRequest": t.search_body("reference_id", doc["customer"]["id"]),
            "CreateOrderRequest": {"idempotency_key": t.idempotency(key, "order"),
                                   "order": {"location_id": "L1", "customer_id": "C1", **plan.order}},
            "CreateInvoiceRequest": {"idempotency_key": t.idempotency(key, "invoice"),
                                     "invoice": t.invoice_body(doc, {"delivery": "email"}, "L1", "O1", "C1")},
            "PublishInvoiceRequest": {"version": 0, "idempotency_key": t.idempotency(key, "publish")},
            "SearchInvoicesRequest": {"query": {"filter": {"location_ids": ["L1"], "customer_ids": ["C1"]},
                                                "sort": {"field": "INVOICE_SORT_DATE", "order": "DESC"}},
                                      "limit": 200},
        }
        for schema, body in bodies.items():
            found = problems(path, schema, body)
            if found:
                failures[f"{doc['number']} {schema}"] = found[:3]
    assert failures == {}


def test_squares_arithmetic_gives_our_total_for_every_corpus_invoice():
    sims = {}
    wrong = {}
    for doc in corpus_docs():
        cur = doc["currency"]
        sim = sims.setdefault(cur, SquareSimulator(currency=cur))
        sim.rate_limit = 10**9  # the arithmetic, not the limits
        plan = t.plan(doc, "k" * 48)
        reply = sim.handle(Request("POST", "/v2/orders", {}, HEADERS, json.dumps(
            {"order": {"location_id": sim.location_id, **plan.order}}).encode()))
        assert reply.status == 200, (doc["number"], reply.body)
        got = reply.body["order"]["total_money"]
        if got != {"amount": plan.total, "currency": cur} or plan.total != t.to_square(doc["total"], cur):
            wrong[doc["number"]] = (got, str(doc["total"]))
    assert wrong == {}


def test_the_checker_catches_what_square_would_refuse(path):
    bad = {"idempotency_key": "x" * 200, "order": {"location_id": "", "id": "read-only",
                                                   "line_items": [{"name": "A", "quantity": 2,
                                                                   "base_price_money": {"amount": "1.00"}}],
                                                   "taxes": [{"percentage": "8", "scope": "EVERYTHING"}],
                                                   "misspelt_field": 1}}
    found = " | ".join(problems(path, "CreateOrderRequest", bad))
    for expected in ("misspelt_field", "idempotency_key", "location_id", "read-only", "quantity", "amount",
                     "EVERYTHING"):
        assert expected in found
