"""x-square-hmacsha256-signature verification and invoice event normalisation."""
from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.simulate import Request
from invoicer.providers.square import transform as t
from invoicer.providers.square import webhooks
from invoicer.providers.square.adapter import Square
from invoicer.providers.square.simulator import SquareSimulator

from . import square_doc

KEY = "sig-key-0123456789"
URL = "https://invoicer.example.com/v1/webhooks/square/acme-hvac"
HEADERS = {"authorization": "Bearer EAAAsim-access-token", "content-type": "application/json"}


def invoice_sim() -> tuple[SquareSimulator, str]:
    """A simulator holding one published 251.10 USD invoice, made in-process."""
    import json

    sim = SquareSimulator(signature_key=KEY)
    doc = square_doc()
    plan = t.plan(doc, "k" * 48)

    def post(path, body):
        reply = sim.handle(Request("POST", path, {}, HEADERS, json.dumps(body).encode()))
        assert reply.status == 200, reply.body
        return reply.body

    cus = post("/v2/customers", plan.customer)["customer"]["id"]
    order = post("/v2/orders", {"order": {"location_id": sim.location_id, "customer_id": cus, **plan.order}})["order"]
    inv = post("/v2/invoices", {"invoice": t.invoice_body(doc, {}, sim.location_id, order["id"], cus)})["invoice"]
    post(f"/v2/invoices/{inv['id']}/publish", {"version": 0})
    return sim, inv["id"]


def test_signature_is_base64_hmac_of_url_then_body():
    body = b'{"type": "invoice.payment_made"}'
    expected = base64.b64encode(hmac.new(KEY.encode(), URL.encode() + body, hashlib.sha256).digest()).decode()
    assert webhooks.sign(body, URL, KEY) == expected


def test_payment_made_paid_and_partial():
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv, URL, amount=10000)
    (event,) = webhooks.parse(headers, body, URL, [KEY])
    assert (event.type, event.external_id, event.amount_paid) == ("invoice.payment_partial", inv, Decimal("100.00"))
    body, headers = sim.pay(inv, URL)
    (event,) = webhooks.parse(headers, body, URL, [KEY])
    assert (event.type, event.amount_paid) == ("invoice.paid", Decimal("251.10"))
    assert event.raw["type"] == "invoice.payment_made" and event.raw["data"]["id"] == inv


def test_canceled_updated_and_other_events():
    sim, inv = invoice_sim()
    body, headers = sim.signed(sim.event("invoice.updated", inv), URL)
    assert webhooks.parse(headers, body, URL, [KEY])[0].type == "other"  # still UNPAID
    body, headers = sim.cancel(inv, URL)
    assert webhooks.parse(headers, body, URL, [KEY])[0].type == "invoice.voided"
    customer = {"type": "customer.created", "data": {"type": "customer", "id": "C1", "object": {"customer": {}}}}
    body, headers = sim.signed(customer, URL)
    assert webhooks.parse(headers, body, URL, [KEY])[0].type == "other"


def test_updated_to_paid_counts_as_paid():
    sim, inv = invoice_sim()
    sim.pay(inv, URL)
    body, headers = sim.signed(sim.event("invoice.updated", inv), URL)
    assert webhooks.parse(headers, body, URL, [KEY])[0].type == "invoice.paid"


def test_tampered_body_other_url_or_key_is_refused():
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv, URL)
    with pytest.raises(AuthFailed, match="does not match"):
        webhooks.parse(headers, body.replace(b"PAID", b"UNPAID"), URL, [KEY])
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body, URL.replace("https", "http"), [KEY])
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body, URL, ["someone-elses-key"])
    with pytest.raises(AuthFailed, match="no x-square"):
        webhooks.parse({}, body, URL, [KEY])
    assert webhooks.parse(headers, body, URL, ["retired-key", KEY])  # rolling a key: either one verifies


def test_verified_garbage_is_rejected_not_unauthorised():
    for body in (b"not json", b"[1]", b'{"type": "invoice.payment_made"}'):
        with pytest.raises(Rejected):
            webhooks.parse({webhooks.HEADER: webhooks.sign(body, URL, KEY)}, body, URL, [KEY])


def test_adapter_reads_the_key_and_may_pin_the_registered_url(monkeypatch):
    sim, inv = invoice_sim()
    body, headers = sim.pay(inv, URL)
    monkeypatch.setenv("SQUARE_SIGNATURE_KEY", KEY)
    p = Square({"provider": "square", "webhook_signature_key_env": "SQUARE_SIGNATURE_KEY"}, None)
    assert p.parse_webhook(headers, body, URL)[0].type == "invoice.paid"
    behind_proxy = "http://10.0.0.5:8000/v1/webhooks/square/acme-hvac"  # what the request URL looks like here
    with pytest.raises(AuthFailed):
        p.parse_webhook(headers, body, behind_proxy)
    pinned = Square({"provider": "square", "webhook_signature_key_env": "SQUARE_SIGNATURE_KEY", "webhook_url": URL},
                    None)
    assert pinned.parse_webhook(headers, body, behind_proxy)[0].type == "invoice.paid"
    with pytest.raises(AuthFailed, match="webhook_signature_key_env"):
        Square({"provider": "square"}, None).parse_webhook(headers, body, URL)
