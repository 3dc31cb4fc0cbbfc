"""PayPal deliveries verified through POST /v1/notifications/verify-webhook-signature (the simulator
checks what it is given against what it signed), then normalised."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.paypal import adapter as paypal_adapter
from invoicer.providers.paypal import webhooks
from invoicer.providers.paypal.adapter import PayPal
from invoicer.providers.paypal.simulator import PayPalSimulator
from invoicer.providers.simulate import Running

from . import paypal_doc


@pytest.fixture(scope="module")
def served():
    with Running(PayPalSimulator()) as running:
        yield running


@pytest.fixture
def sim(served, monkeypatch):
    for name, value in served.sim.env().items():
        monkeypatch.setenv(name, value)
    served.sim.reset()
    paypal_adapter._tokens.clear()
    return served


def receiver(running, **options) -> PayPal:
    """The adapter as the ingress builds it for a webhook: no pipeline context."""
    return PayPal({**running.sim.platform(running.url), **options}, None)


def sent_invoice(running) -> str:
    from invoicer import db
    from invoicer.pipeline import Ctx

    ctx = Ctx(engine=db.engine(), var_dir=None, tenant="acme-hvac", platform="payments")
    return PayPal(running.sim.platform(running.url), ctx).create_invoice(paypal_doc(), "w" * 48).external_id


def test_paid_partially_paid_and_cancelled(sim, clean):
    inv = sent_invoice(sim)
    body, headers = sim.sim.pay(inv, "100.00")
    (event,) = receiver(sim).parse_webhook(headers, body)
    assert (event.type, event.external_id, event.amount_paid) == ("invoice.payment_partial", inv, Decimal("100.00"))
    body, headers = sim.sim.pay(inv)
    (event,) = receiver(sim).parse_webhook(headers, body)
    assert (event.type, event.amount_paid) == ("invoice.paid", Decimal("251.10"))
    assert event.raw["event_type"] == "INVOICING.INVOICE.PAID"
    body, headers = sim.sim.cancel(inv)
    assert receiver(sim).parse_webhook(headers, body)[0].type == "invoice.voided"
    verify = [r for r in sim.sim.received if r.path == "/v1/notifications/verify-webhook-signature"]
    assert len(verify) == 3 and verify[-1].json()["webhook_id"] == sim.sim.webhook_id


def test_tampered_or_reserialised_event_is_refused(sim, clean):
    inv = sent_invoice(sim)
    body, headers = sim.sim.pay(inv)
    with pytest.raises(AuthFailed, match="FAILURE"):
        receiver(sim).parse_webhook(headers, body.replace(b"251.10", b"999.99"))
    compact = json.dumps(json.loads(body)).encode()  # the same event, other spacing
    with pytest.raises(AuthFailed, match="FAILURE"):
        receiver(sim).parse_webhook(headers, compact)
    with pytest.raises(AuthFailed, match="FAILURE"):
        receiver(sim, webhook_id="9XY12345SOMEONEELSE").parse_webhook(headers, body)
    assert receiver(sim).parse_webhook(headers, body)[0].type == "invoice.paid"  # the original still verifies


def test_refused_without_asking_paypal(sim):
    body, headers = sim.sim.deliver({"event_type": "INVOICING.INVOICE.PAID", "resource": {"id": "INV2-X"}})
    for missing in ("PAYPAL-TRANSMISSION-SIG", "PAYPAL-CERT-URL"):
        with pytest.raises(AuthFailed, match=missing):
            receiver(sim).parse_webhook({k: v for k, v in headers.items() if k != missing}, body)
    with pytest.raises(AuthFailed, match="not a JSON event"):
        receiver(sim).parse_webhook(headers, b"not json")
    with pytest.raises(AuthFailed, match="webhook_id"):
        PayPal({"provider": "paypal"}, None).parse_webhook(headers, body)
    assert not [r for r in sim.sim.received if r.path.startswith("/v1/notifications")]


def test_verified_but_not_an_invoice_event(sim):
    body, headers = sim.sim.deliver({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED",
                                     "resource": {"id": "CAP-1"}})
    assert receiver(sim).parse_webhook(headers, body)[0].type == "other"
    body, headers = sim.sim.deliver({"id": "WH-2", "summary": "no type"})
    with pytest.raises(Rejected):
        receiver(sim).parse_webhook(headers, body)


def test_both_resource_shapes_normalise():
    inv = {"id": "INV2-A", "status": "PAID", "payments": {"paid_amount": {"currency_code": "USD", "value": "5.00"}}}
    for resource in ({"invoice": inv}, inv):
        body = json.dumps({"event_type": "INVOICING.INVOICE.PAID", "resource": resource})
        (event,) = webhooks.normalise(body)
        assert (event.type, event.external_id, event.amount_paid) == ("invoice.paid", "INV2-A", Decimal("5.00"))
    bare = json.dumps({"event_type": "INVOICING.INVOICE.PAID", "resource": {"id": "INV2-B"}})
    assert webhooks.normalise(bare)[0].amount_paid is None  # paid in full, no figures: the invoice's total
