"""Stripe-Signature verification (our own code, cross-checked with the official SDK) and event parsing."""
from __future__ import annotations

import json
import time
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.simulate import Request
from invoicer.providers.stripe import transform as t
from invoicer.providers.stripe import webhooks
from invoicer.providers.stripe.adapter import Stripe
from invoicer.providers.stripe.simulator import StripeSimulator

from . import doc_for

SECRET = "whsec_test_0123456789abcdefABCDEF"
NOW = 1_800_000_000


def invoice_sim(currency: str = "USD", **job) -> tuple[StripeSimulator, str]:
    """A simulator holding one open invoice (251.10 USD unless told otherwise), made in-process."""
    sim = StripeSimulator(webhook_secret=SECRET, clock=lambda: NOW)
    plan = t.plan(doc_for(currency=currency, **job), "k" * 48)
    headers = {"authorization": "Bearer sk_test_sim", "content-type": "application/x-www-form-urlencoded"}

    def post(path, form):
        reply = sim.handle(Request("POST", path, {}, headers, urlencode(t.encode(form)).encode()))
        assert reply.status == 200, reply.body
        return reply.body

    cus = post("/v1/customers", plan.customer)["id"]
    inv = post("/v1/invoices", {"customer": cus, **plan.invoice})["id"]
    for item in plan.items:
        post("/v1/invoiceitems", {"customer": cus, "invoice": inv, **item})
    post(f"/v1/invoices/{inv}/finalize", {})
    return sim, inv


def test_invoice_paid_is_verified_and_normalised():
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv)
    (event,) = webhooks.parse(headers, body, [SECRET], now=NOW)
    assert (event.type, event.external_id, event.amount_paid) == ("invoice.paid", inv, Decimal("251.10"))
    assert event.raw["data"]["object"]["id"] == inv and event.raw["type"] == "invoice.paid"


def test_zero_decimal_amount_paid():
    sim, inv = invoice_sim("JPY", labor=[{"description": "Repair", "hours": "2", "rate": "8000", "taxable": True}],
                           materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"})
    body, headers = sim.pay(inv)
    (event,) = webhooks.parse(headers, body, [SECRET], now=NOW)
    assert event.amount_paid == Decimal("17600")


def test_voided_failed_and_other_events():
    sim, inv = invoice_sim()
    failed = sim.event("invoice.payment_failed", inv)
    body, headers = sim.signed(failed)
    (event,) = webhooks.parse(headers, body, [SECRET], now=NOW)
    assert (event.type, event.external_id, event.amount_paid) == ("invoice.payment_failed", inv, None)
    body, headers = sim.void(inv)
    assert webhooks.parse(headers, body, [SECRET], now=NOW)[0].type == "invoice.voided"
    body, headers = sim.signed(sim.event("invoice.finalized", inv))
    (other,) = webhooks.parse(headers, body, [SECRET], now=NOW)
    assert (other.type, other.external_id) == ("other", inv)
    charge = {"id": "evt_1", "object": "event", "type": "charge.succeeded", "data": {"object": {"id": "ch_1",
                                                                                               "object": "charge"}}}
    body, headers = sim.signed(charge)
    assert webhooks.parse(headers, body, [SECRET], now=NOW)[0].type == "other"


def test_tampered_body_is_refused():
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv)
    tampered = body.replace(b'"amount_paid": 25110', b'"amount_paid": 99999')
    assert tampered != body
    with pytest.raises(AuthFailed, match="no v1 signature matches"):
        webhooks.parse(headers, tampered, [SECRET], now=NOW)


def test_stale_and_future_timestamps_are_refused():
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv)  # signed at NOW
    assert webhooks.parse(headers, body, [SECRET], now=NOW + 300)  # at the edge of the tolerance: accepted
    with pytest.raises(AuthFailed, match="300 s"):
        webhooks.parse(headers, body, [SECRET], now=NOW + 301)
    with pytest.raises(AuthFailed, match="300 s"):
        webhooks.parse(headers, body, [SECRET], now=NOW - 301)


def test_wrong_secret_is_refused():
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv)
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body, ["whsec_someone_else"], now=NOW)
    with pytest.raises(AuthFailed, match="no endpoint secret"):
        webhooks.parse(headers, body, [], now=NOW)


def test_several_v1_signatures_any_one_matching_is_enough():
    sim, inv = invoice_sim()
    event = sim.event("invoice.paid", inv)
    body, headers = sim.signed(event, secret=["whsec_old_secret_being_rolled", SECRET])
    assert headers["Stripe-Signature"].count("v1=") == 2
    assert webhooks.parse(headers, body, [SECRET], now=NOW)[0].type == "invoice.paid"
    assert webhooks.parse(headers, body, ["whsec_old_secret_being_rolled"], now=NOW)
    # and we may hold several secrets ourselves while rolling one
    body, headers = sim.signed(event)
    assert webhooks.parse(headers, body, ["whsec_retired", SECRET], now=NOW)


def test_malformed_headers_are_refused():
    body = b'{"object": "event"}'
    good = webhooks.sign(body, SECRET, NOW)
    for header in ({}, {"Stripe-Signature": ""}, {"Stripe-Signature": "v1=" + good.split("v1=")[1]},
                   {"Stripe-Signature": f"t={NOW}"}, {"Stripe-Signature": "t=soon,v1=abc"},
                   {"Stripe-Signature": good.replace("v1=", "v0=")}):
        with pytest.raises(AuthFailed):
            webhooks.parse(header, body, [SECRET], now=NOW)
    assert webhooks.parse({"stripe-signature": webhooks.sign(b'{"object": "event", "type": "x", "data": {}}',
                                                            SECRET, NOW)},
                          b'{"object": "event", "type": "x", "data": {}}', [SECRET], now=NOW)[0].type == "other"


def test_verified_garbage_is_rejected_not_unauthorised():
    for body in (b"not json", b'{"object": "charge"}', b'[1, 2]'):
        with pytest.raises(Rejected):
            webhooks.parse({"Stripe-Signature": webhooks.sign(body, SECRET, NOW)}, body, [SECRET], now=NOW)


def test_our_signatures_match_the_official_sdk_both_ways():
    stripe_sdk = pytest.importorskip("stripe")
    body = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid",
                       "data": {"object": {"id": "in_1", "object": "invoice", "amount_paid": 1000, "currency": "usd"}}})
    now = int(time.time())
    ours = webhooks.sign(body, SECRET, now)
    assert stripe_sdk.WebhookSignature.verify_header(body, ours, SECRET, tolerance=300)
    theirs = stripe_sdk.WebhookSignature.generate_signature_header(body, SECRET, timestamp=now)
    assert theirs == ours
    (event,) = webhooks.parse({"Stripe-Signature": theirs}, body.encode(), [SECRET])
    assert event.amount_paid == Decimal("10.00")


def test_adapter_reads_the_secret_from_the_named_environment_variable(monkeypatch):
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv, timestamp=int(time.time()))
    provider = Stripe({"provider": "stripe", "webhook_secret_env": "STRIPE_WEBHOOK_SECRET"}, None)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", f"whsec_retired, {SECRET}")
    (event,) = provider.parse_webhook({k.lower(): v for k, v in headers.items()}, body, "https://x/v1/webhooks")
    assert event.type == "invoice.paid" and event.external_id == inv
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")
    with pytest.raises(AuthFailed, match="STRIPE_WEBHOOK_SECRET"):
        provider.parse_webhook(headers, body)
    with pytest.raises(AuthFailed, match="webhook_secret_env"):
        Stripe({"provider": "stripe"}, None).parse_webhook(headers, body)
