"""Contract: what we send and what the simulator answers, checked against Stripe's own artefacts.

Oracles: the installed `stripe` package's typed request params (TypedDicts "generated from our OpenAPI
spec") and its form encoder; the response fixtures of stripe/openapi (fixtures3.json subset in
../shared/vendor-specs/stripe/). Every corpus invoice goes through transform -> form encoding ->
Stripe's parameter types, and through the simulator, whose computed total must be ours.
"""
from __future__ import annotations

import json
import re
import sys
import typing
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

import pytest
import typing_extensions

from invoicer.providers.simulate import Request
from invoicer.providers.stripe import transform as t
from invoicer.providers.stripe.simulator import StripeSimulator

from .. import corpus_docs, spec
from . import doc_for

stripe_sdk = pytest.importorskip("stripe")
from stripe._request_options import RequestOptions  # noqa: E402
from stripe.params import (  # noqa: E402
    CustomerCreateParams,
    CustomerSearchParams,
    InvoiceCreateParams,
    InvoiceFinalizeInvoiceParams,
    InvoiceItemCreateParams,
    InvoiceSearchParams,
    InvoiceSendInvoiceParams,
)

KEY = "f" * 48
REQUEST_OPTIONS = set(RequestOptions.__annotations__)  # api_key, idempotency_key, ...: not API parameters


# ---------------------------------------------------------------- a validator for form-decoded values

def _resolve(annotation, owner):
    if isinstance(annotation, typing.ForwardRef):
        return eval(annotation.__forward_arg__, vars(sys.modules[owner.__module__]))  # noqa: S307 - SDK source
    if isinstance(annotation, str):
        return eval(annotation, vars(sys.modules[owner.__module__]))  # noqa: S307
    return annotation


def check(value, annotation, where: str, owner) -> None:
    """AssertionError unless `value` (strings at the leaves, as Stripe receives them) has the declared type."""
    annotation = _resolve(annotation, owner)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required):
        return check(value, args[0], where, owner)
    if typing_extensions.is_typeddict(annotation):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        hints = {k: v for k, v in annotation.__annotations__.items() if k not in REQUEST_OPTIONS}
        unknown = set(value) - set(hints)
        assert not unknown, f"{where}: {sorted(unknown)} are not parameters of {annotation.__name__}"
        missing = {k for k in annotation.__required_keys__ if k not in REQUEST_OPTIONS} - set(value)
        assert not missing, f"{where}: required {sorted(missing)} missing for {annotation.__name__}"
        for k, v in value.items():
            check(v, hints[k], f"{where}[{k}]" if where else k, annotation)
        return
    if origin is typing.Union:
        literals = [a for a in args if typing.get_origin(a) is typing.Literal and a != typing.Literal[""]]
        if literals and str in args and isinstance(value, str):  # an open enum: hold us to the documented values
            allowed = {v for lit in literals for v in typing.get_args(lit)}
            assert value in allowed, f"{where}: {value!r} is not one of {sorted(allowed)}"
            return
        errors = []
        for a in args:
            try:
                return check(value, a, where, owner)
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: {value!r} fits none of {annotation}: {errors}")
    if origin is typing.Literal:
        assert value in args, f"{where}: {value!r} is not one of {args}"
        return
    if origin in (list, typing.List):
        assert isinstance(value, list), f"{where}: expected a list, got {value!r}"
        for i, v in enumerate(value):
            check(v, args[0], f"{where}[{i}]", owner)
        return
    if origin in (dict, typing.Dict):
        assert isinstance(value, dict), f"{where}: expected a map, got {value!r}"
        for k, v in value.items():
            check(v, args[1], f"{where}[{k}]", owner)
        return
    if origin is not None and getattr(origin, "__name__", "") == "UntypedStripeObject":
        assert isinstance(value, dict), f"{where}: expected a map"
        return
    assert isinstance(value, str), f"{where}: expected a form string, got {value!r}"
    if annotation is str:
        return
    if annotation is bool:
        assert value in ("true", "false"), f"{where}: {value!r} is not a boolean"
    elif annotation is int:
        assert re.fullmatch(r"-?\d+", value), f"{where}: {value!r} is not an integer"
    elif annotation is Decimal:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise AssertionError(f"{where}: {value!r} is not a decimal") from None
        assert number.is_finite() and -number.as_tuple().exponent <= 12, f"{where}: {value!r}: at most 12 places"
    else:
        raise AssertionError(f"{where}: no rule for {annotation!r}")


def validate(params: dict, typed) -> dict:
    """Encode as the adapter does, decode as Stripe does, check against the SDK's TypedDict."""
    pairs = t.encode(params)
    sdk = [(k, v) for k, v in stripe_sdk._encode._api_encode(params)]  # the official client's encoding
    assert urlencode(pairs) == urlencode(sdk), "our bracket notation differs from the stripe client's"
    decoded = t.decode(pairs)
    check(decoded, typed, "", typed)
    return decoded


# ---------------------------------------------------------------- the checks

@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_the_validator_catches_what_stripe_would_refuse():
    with pytest.raises(AssertionError, match="not parameters"):
        validate({"customer": "cus_1", "days_due": 3}, InvoiceCreateParams)
    with pytest.raises(AssertionError, match="not an integer"):
        check({"days_until_due": "1.5"}, InvoiceCreateParams, "", InvoiceCreateParams)
    with pytest.raises(AssertionError, match="not one of"):
        validate({"collection_method": "email"}, InvoiceCreateParams)
    with pytest.raises(AssertionError, match="not a boolean"):
        check({"auto_advance": "yes"}, InvoiceCreateParams, "", InvoiceCreateParams)
    with pytest.raises(AssertionError, match="not parameters"):
        validate({"unit_amount": 5}, InvoiceItemCreateParams)  # a real Stripe name, but not on invoice items
    with pytest.raises(AssertionError, match="required"):
        validate({}, InvoiceSearchParams)


def test_every_corpus_request_has_stripes_parameter_names_and_types(docs):
    for doc in docs:
        plan = t.plan(doc, KEY)
        validate(plan.customer, CustomerCreateParams)
        validate({"customer": "cus_QXg1o8vcGmoR32", **plan.invoice}, InvoiceCreateParams)
        for item in plan.items:
            decoded = validate({"customer": "cus_QXg1o8vcGmoR32", "invoice": "in_1Pgc6tB7WZ01zgkWu9fdqL6I", **item},
                               InvoiceItemCreateParams)
            assert ("amount" in decoded) != ("unit_amount_decimal" in decoded)
        assert sum(t.item_amount(p) for p in plan.items) == plan.total == t.to_stripe(doc["total"], doc["currency"])
    validate({"auto_advance": False}, InvoiceFinalizeInvoiceParams)
    validate({}, InvoiceSendInvoiceParams)
    validate({"query": t.invoice_query(KEY), "limit": 100}, InvoiceSearchParams)
    validate({"query": t.customer_query("C-1"), "limit": 100}, CustomerSearchParams)


def test_options_and_edge_currencies_validate_too():
    docs = [doc_for(terms=0, po_number="PO-1"),
            doc_for(currency="JPY", labor=[{"description": "Repair", "hours": "2", "rate": "8000", "taxable": True}],
                    materials=[], fees=[], discounts=[]),
            doc_for(customer={"billing_address": {"line1": "1 Elm", "city": "Orlando", "region": "FL",
                                                  "postal_code": "32801", "country": "US"}})]
    for doc in docs:
        plan = t.plan(doc, KEY, {"custom_number": True})
        validate(plan.customer, CustomerCreateParams)
        validate({"customer": "cus_1", **plan.invoice}, InvoiceCreateParams)
        for item in plan.items:
            validate({"customer": "cus_1", "invoice": "in_1", **item}, InvoiceItemCreateParams)


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
