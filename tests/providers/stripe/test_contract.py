"""Contract: what we send and what the simulator answers, checked against Stripe's own artefacts.

Oracles: the installed `stripe` package's typed request params (TypedDicts "generated from our OpenAPI
spec", read by invoicer.providers.stripe.schema, the same checker the simulator applies to every
request) and its form encoder; the response fixtures of stripe/openapi (fixtures3.json subset in
../shared/vendor-specs/stripe/). Every corpus invoice goes through transform -> form encoding ->
Stripe's parameter types, and through the simulator, whose computed total must be ours.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from invoicer.providers.simulate import Request
from invoicer.providers.stripe import schema
from invoicer.providers.stripe import transform as t
from invoicer.providers.stripe.simulator import StripeSimulator

from .. import corpus_docs, spec
from . import doc_for

stripe_sdk = pytest.importorskip("stripe")
from stripe.params import (  # noqa: E402
    CustomerCreateParams,
    CustomerListParams,
    CustomerRetrieveParams,
    CustomerSearchParams,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceItemCreateParams,
    InvoiceItemListParams,
    InvoiceListParams,
    InvoiceRetrieveParams,
    InvoiceSearchParams,
    InvoiceSendInvoiceParams,
)

KEY = "f" * 48
SDK_TYPES = {
    "customers.create": CustomerCreateParams, "customers.retrieve": CustomerRetrieveParams,
    "customers.list": CustomerListParams, "customers.search": CustomerSearchParams,
    "invoices.create": InvoiceCreateParams, "invoices.retrieve": InvoiceRetrieveParams,
    "invoices.list": InvoiceListParams, "invoices.search": InvoiceSearchParams,
    "invoices.finalize_invoice": InvoiceFinalizeInvoiceParams, "invoices.send_invoice": InvoiceSendInvoiceParams,
    "invoiceitems.create": InvoiceItemCreateParams, "invoiceitems.list": InvoiceItemListParams,
}


# ---------------------------------------------------------------- the validator (invoicer.providers.stripe.schema)

def problems(operation: str, params: dict) -> list[str]:
    """What Stripe would refuse in these params: encoded as the adapter does, decoded as Stripe does."""
    return schema.validator()(operation, t.decode(t.encode(params)))


def validate(operation: str, params: dict) -> dict:
    """Encode as the adapter does, decode as Stripe does, check against the SDK's TypedDict."""
    pairs = t.encode(params)
    sdk = [(k, v) for k, v in stripe_sdk._encode._api_encode(params)]  # the official client's encoding
    assert urlencode(pairs) == urlencode(sdk), "our bracket notation differs from the stripe client's"
    decoded = t.decode(pairs)
    found = schema.validator()(operation, decoded)
    assert not found, f"{operation} ({SDK_TYPES[operation].__name__}) would be refused: {found}"
    return decoded


# ---------------------------------------------------------------- the checks

@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_the_validator_reads_the_sdks_types_for_each_operation():
    assert schema.validator() is schema.validator()  # introspected once
    assert set(SDK_TYPES) == set(schema.OPERATIONS) == schema.validator().operations
    for operation, typed in SDK_TYPES.items():
        assert schema.params_type(operation) is typed
    assert schema.unchecked() == set(), "annotations in the SDK's params that no rule of schema.py understands"
    with pytest.raises(ValueError, match="unknown Stripe operation"):
        schema.validator()("invoices.pay", {})


def test_the_validator_catches_what_stripe_would_refuse():
    assert problems("invoices.create", {"customer": "cus_1", "days_due": 3}) == \
        ["Received unknown parameter: days_due"]
    assert problems("invoices.create", {"days_until_due": "1.5"}) == ["Invalid integer: 1.5"]
    assert problems("invoices.create", {"collection_method": "email"}) == \
        ["Invalid collection_method: must be one of charge_automatically or send_invoice"]
    assert problems("invoices.create", {"auto_advance": "yes"}) == ["Invalid boolean: yes"]
    assert problems("invoiceitems.create", {"unit_amount": 5}) == \
        ["Received unknown parameter: unit_amount"]  # a real Stripe name, but not on invoice items
    assert problems("invoices.search", {}) == ["Missing required param: query."]
    nested = problems("invoices.create", {"automatic_tax": {"enabled": "on", "mode": "x"},
                                          "custom_fields": [{"name": "PO"}]})
    assert nested == ["Received unknown parameter: automatic_tax[mode]", "Invalid boolean: on",
                      "Missing required param: custom_fields[0][value]."]
    assert [p.param for p in schema.validator()("invoices.create", {"automatic_tax": {"mode": "x"}})] == \
        ["automatic_tax[mode]", "automatic_tax[enabled]"]
    assert problems("invoiceitems.create", {"unit_amount_decimal": "1.0000000000001"}) == \
        ["Invalid decimal: 1.0000000000001 (at most 12 decimal places)"]
    assert problems("invoices.create", {"expand": "lines"}) == ["Invalid array"]
    assert problems("invoices.create", {"metadata": "x"}) == ["Invalid hash"]
    assert problems("invoices.create", {"discounts": "", "metadata": ""}) == []  # '' unsets
    assert problems("customers.list", {"created": {"gte": 1, "since": 2}}) == \
        ["Received unknown parameter: created[since]"]
    assert problems("customers.list", {"created": "x"}) == ["Invalid integer: x"]  # int | a range object


def test_every_corpus_request_has_stripes_parameter_names_and_types(docs):
    for doc in docs:
        plan = t.plan(doc, KEY)
        validate("customers.create", plan.customer)
        validate("invoices.create", {"customer": "cus_QXg1o8vcGmoR32", **plan.invoice})
        for item in plan.items:
            decoded = validate("invoiceitems.create",
                               {"customer": "cus_QXg1o8vcGmoR32", "invoice": "in_1Pgc6tB7WZ01zgkWu9fdqL6I", **item})
            assert ("amount" in decoded) != ("unit_amount_decimal" in decoded)
        assert sum(t.item_amount(p) for p in plan.items) == plan.total == t.to_stripe(doc["total"], doc["currency"])
    validate("invoices.finalize_invoice", {"auto_advance": False})
    validate("invoices.send_invoice", {})
    validate("invoices.search", {"query": t.invoice_query(KEY), "limit": 100})
    validate("customers.search", {"query": t.customer_query("C-1"), "limit": 100})
    validate("customers.list", {"email": "a@example.com", "limit": 100, "starting_after": "cus_1"})
    validate("invoices.list", {"customer": "cus_1", "limit": 100})
    validate("invoiceitems.list", {"invoice": "in_1", "limit": 100})


def test_options_and_edge_currencies_validate_too():
    docs = [doc_for(terms=0, po_number="PO-1"),
            doc_for(currency="JPY", labor=[{"description": "Repair", "hours": "2", "rate": "8000", "taxable": True}],
                    materials=[], fees=[], discounts=[]),
            doc_for(customer={"billing_address": {"line1": "1 Elm", "city": "Orlando", "region": "FL",
                                                  "postal_code": "32801", "country": "US"}})]
    for doc in docs:
        plan = t.plan(doc, KEY, {"custom_number": True})
        validate("customers.create", plan.customer)
        validate("invoices.create", {"customer": "cus_1", **plan.invoice})
        for item in plan.items:
            validate("invoiceitems.create", {"customer": "cus_1", "invoice": "in_1", **item})


def test_the_pinned_api_version_is_the_oracles():
    from stripe._api_version import _ApiVersion

    assert t.DEFAULT_API_VERSION == _ApiVersion.CURRENT, \
        "the stripe package moved on: re-check the parameters and update DEFAULT_API_VERSION"


# ---------------------------------------------------------------- responses: the fixture's field names

@pytest.fixture(scope="module")
def fixture():
    return json.loads(spec("stripe", "fixtures3.invoice-subset.json").read_text(encoding="utf-8"))["resources"]


def _call(sim: StripeSimulator, method: str, path: str, form: dict | None = None, query: dict | None = None,
          key: str | None = None):
    headers = {"authorization": "Bearer sk_test_sim", "host": "127.0.0.1:12111"}
    body = b""
    if form is not None:
        body = urlencode(t.encode(form)).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    if key:
        headers["idempotency-key"] = key
    reply = sim.handle(Request(method, path, {k: [str(v)] for k, v in (query or {}).items()}, headers, body))
    assert reply.status == 200, reply.body
    return reply.body


def _run(sim: StripeSimulator, doc: dict) -> dict:
    plan = t.plan(doc, KEY)
    customer = _call(sim, "POST", "/v1/customers", plan.customer)
    inv = _call(sim, "POST", "/v1/invoices", {"customer": customer["id"], **plan.invoice},
                key=f"{doc['number']}:invoice")
    for item in plan.items:
        _call(sim, "POST", "/v1/invoiceitems", {"customer": customer["id"], "invoice": inv["id"], **item})
    return _call(sim, "POST", f"/v1/invoices/{inv['id']}/finalize", {"auto_advance": False})


def test_the_simulator_computes_our_total_for_every_corpus_invoice(docs):
    sim = StripeSimulator()
    assert sim.spec is schema.validator()  # every request below is checked against the SDK's types too
    sim.rate_limits = False  # in-process and fast; the limit has its own test
    for doc in docs:
        final = _run(sim, doc)
        assert final["status"] in ("open", "paid") and final["hosted_invoice_url"]
        assert final["total"] == t.to_stripe(doc["total"], doc["currency"]), doc["number"]
        assert final["amount_due"] == max(final["total"], 0)


def test_simulator_objects_use_the_fixtures_field_names(fixture):
    sim = StripeSimulator()
    final = _run(sim, doc_for())
    customer = _call(sim, "GET", f"/v1/customers/{final['customer']}")
    items = _call(sim, "GET", "/v1/invoiceitems", query={"invoice": final["id"]})["data"]
    assert set(final) <= set(fixture["invoice"]), set(final) - set(fixture["invoice"])
    assert set(customer) <= set(fixture["customer"]), set(customer) - set(fixture["customer"])
    for item in items:
        assert set(item) <= set(fixture["invoiceitem"]), set(item) - set(fixture["invoiceitem"])
        assert item["id"].startswith("ii_")
    for line in final["lines"]["data"]:
        assert set(line) <= set(fixture["line_item"]), set(line) - set(fixture["line_item"])
    assert final["id"].startswith("in_") and customer["id"].startswith("cus_")
    assert {"total", "amount_due", "amount_paid", "amount_remaining", "hosted_invoice_url", "status", "number",
            "metadata", "currency", "customer", "lines", "subtotal"} <= set(final)


def test_what_the_adapter_reads_and_sends_exists_on_stripes_objects(fixture):
    invoice, item = fixture["invoice"], fixture["invoiceitem"]
    read = {"id", "number", "hosted_invoice_url", "invoice_pdf", "status", "total", "amount_paid",
            "amount_remaining", "currency", "customer", "metadata", "created"}
    assert read <= set(invoice)
    plan = t.plan(doc_for(po_number="PO-1"), KEY, {"custom_number": True})
    write_only = {"days_until_due", "pending_invoice_items_behavior"}  # request-only parameters (see the SDK)
    assert set(plan.invoice) - write_only <= set(invoice)
    sent = {k for p in plan.items for k in p}
    assert sent - {"unit_amount_decimal"} <= set(item)
    assert "unit_amount_decimal" in item["pricing"]  # where the object reports it in this API version
    assert {"id", "metadata", "email", "created"} <= set(fixture["customer"])
