"""Zoho Books webhooks: the signed payload the simulator sends verifies and normalises; anything else is refused."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed
from invoicer.providers.zoho_books import webhooks
from invoicer.providers.zoho_books.simulator import ZohoBooksSimulator

SECRET = "simzohowebhooksecret01"


def signed(payload: dict, url: str = "") -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    return body, {"X-Zoho-Webhook-Signature": webhooks.sign(body, SECRET, url)}


def test_paid_invoice_from_the_simulator():
    sim = ZohoBooksSimulator()
    inv = {"invoice_id": "46", "status": "draft", "total": Decimal("251.10"), "balance": Decimal("251.10")}
    sim.org().invoices["46"] = inv
    body, headers = sim.pay("46", Decimal("251.10"))
    [event] = webhooks.parse(headers, body, SECRET, organization_id=sim.org().organization_id)
    assert (event.type, event.external_id, event.amount_paid) == ("invoice.paid", "46", Decimal("251.10"))


def test_partial_void_and_payment_payloads():
    body, headers = signed({"invoice": {"invoice_id": "7", "status": "partially_paid", "total": "100.00",
                                        "balance": "40.00"}})
    [e] = webhooks.parse(headers, body, SECRET)
    assert (e.type, e.amount_paid) == ("invoice.payment_partial", Decimal("60.00"))
    body, headers = signed({"invoice": {"invoice_id": "7", "status": "void"}})
    assert webhooks.parse(headers, body, SECRET)[0].type == "invoice.voided"
    body, headers = signed({"payment": {"payment_id": "p", "invoices": [{"invoice_id": "7", "amount_applied": 5}]}})
    assert [e.external_id for e in webhooks.parse(headers, body, SECRET)] == ["7"]


def test_query_parameters_are_part_of_the_signature():
    url = "https://invoicer.example/v1/webhooks/zoho_books/acme?b=2&a=1"
    body, headers = signed({"invoice": {"invoice_id": "7", "status": "sent"}}, url)
    assert webhooks.signed_text(body, url).startswith(b"a1b2{")
    assert webhooks.parse(headers, body, SECRET, url)[0].type == "other"
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body, SECRET)


def test_bad_or_missing_signature_and_other_organisations():
    body, headers = signed({"invoice": {"invoice_id": "7", "status": "paid"}})
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body.replace(b"paid", b"void"), SECRET)
    with pytest.raises(AuthFailed):
        webhooks.parse({}, body, SECRET)
    body, headers = signed({"invoice": {"invoice_id": "7", "status": "paid"}, "organization_id": "other"})
    assert webhooks.parse(headers, body, SECRET, organization_id="mine") == []
