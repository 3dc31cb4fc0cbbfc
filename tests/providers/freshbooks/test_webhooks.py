"""FreshBooks callbacks: the signature over the JSON of the form fields, the unsigned verification post."""
from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

import pytest

from invoicer.errors import AuthFailed
from invoicer.providers.freshbooks import webhooks
from invoicer.providers.freshbooks.simulator import FreshBooksSimulator

VERIFIER = "sim-fb-verifier"


def test_signed_invoice_event():
    sim = FreshBooksSimulator()
    body, headers = sim.callback({"name": "invoice.update", "object_id": "1234567", "account_id": "6BApk",
                                  "business_id": "6543", "identity_id": "1234", "user_id": "1"})
    [event] = webhooks.parse(headers, body, VERIFIER, account_id="6BApk")
    assert (event.type, event.external_id, event.raw["business_id"]) == ("invoice.updated", "1234567", "6543")


def test_payment_callback_from_the_simulator():
    sim = FreshBooksSimulator()
    sim.account().invoices["7"] = {"currency_code": "USD", "paid": {"amount": "0.00"},
                                   "amount": {"amount": "10.00"}, "outstanding": {"amount": "10.00"}}
    body, headers = sim.pay("7", Decimal("10.00"))
    assert webhooks.parse(headers, body, VERIFIER)[0].type == "payment.created"


def test_tampered_unsigned_and_foreign_deliveries():
    fields = {"name": "invoice.delete", "object_id": "9", "account_id": "6BApk"}
    body = urlencode(fields).encode()
    headers = {"X-FreshBooks-Hmac-SHA256": webhooks.sign(fields, VERIFIER)}
    assert webhooks.parse(headers, body, VERIFIER)[0].type == "invoice.voided"
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body.replace(b"delete", b"create"), VERIFIER)
    with pytest.raises(AuthFailed):
        webhooks.parse({}, body, VERIFIER)
    assert webhooks.parse(headers, body, VERIFIER, account_id="someone-else") == []
    verification = urlencode({"name": "callback.verify", "verifier": "abc123", "object_id": "1"}).encode()
    assert webhooks.parse({}, verification, VERIFIER) == []
