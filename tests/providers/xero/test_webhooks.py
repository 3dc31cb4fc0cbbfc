"""Xero webhooks: x-xero-signature (base64 HMAC-SHA256 of the raw body), intent to receive, parsing."""
from __future__ import annotations

import json

import pytest

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers import registry
from invoicer.providers.xero import webhooks
from tests.providers.xero import TENANT_ID, options

Xero = registry.get("xero")  # through the registry, so every provider package is loaded (see its _load)

KEY = "hQ3iHjI8mZgYxXFcN0Vn2d8pPq7Yk3Wm1Zb6Lr4Tc9Sa5Ue0Xo2Gf8Jh1Kd7Ns3Vb6Qw9Er4Ty2Ui5Op8As1Df=="
INVOICE_ID = "0bb9e8a4-7d3c-4b5e-9c1f-2a6d8e4f1b33"


def payload(*events, tenant=TENANT_ID) -> bytes:
    body = {"events": [{"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{rid}", "resourceId": rid,
                        "eventDateUtc": "2026-11-02T15:04:05.123", "eventType": etype, "eventCategory": cat,
                        "tenantId": tenant, "tenantType": "ORGANISATION"} for rid, cat, etype in events],
            "firstEventSequence": 7, "lastEventSequence": 7 + max(len(events) - 1, 0),
            "entropy": "QXBQTFRaQ0pFSktGVUJLRkVHUko"}
    return json.dumps(body, separators=(",", ":")).encode()


@pytest.fixture
def provider(monkeypatch):
    monkeypatch.setenv("INVOICER_XERO_WEBHOOK_KEY", KEY)
    return Xero(options(), None)  # the ingress builds it without a ctx


def signed(body: bytes, key: str = KEY) -> dict:
    return {"content-type": "application/json", "x-xero-signature": webhooks.sign(body, key)}


def test_registered_with_webhook_capability():
    assert registry.has("xero", "parse_webhook") and registry.has("xero", "create_invoice")


def test_valid_invoice_update(provider):
    body = payload((INVOICE_ID, "INVOICE", "UPDATE"))
    [event] = provider.parse_webhook(signed(body), body)
    assert event.type == "invoice.updated" and event.external_id == INVOICE_ID
    assert event.raw["eventCategory"] == "INVOICE" and event.amount_paid is None


def test_header_name_is_case_insensitive_and_other_categories_are_other(provider):
    body = payload((INVOICE_ID, "INVOICE", "CREATE"), ("c-1", "CONTACT", "UPDATE"))
    events = provider.parse_webhook({"X-Xero-Signature": webhooks.sign(body, KEY)}, body)
    assert [(e.type, e.external_id) for e in events] == [("invoice.created", INVOICE_ID), ("other", "c-1")]


def test_tampered_body_is_refused(provider):
    body = payload((INVOICE_ID, "INVOICE", "UPDATE"))
    headers = signed(body)
    tampered = body.replace(INVOICE_ID.encode(), b"11111111-7d3c-4b5e-9c1f-2a6d8e4f1b33")
    with pytest.raises(AuthFailed):
        provider.parse_webhook(headers, tampered)


def test_wrong_key_is_refused(provider):
    body = payload((INVOICE_ID, "INVOICE", "UPDATE"))
    with pytest.raises(AuthFailed):
        provider.parse_webhook(signed(body, key="another-apps-webhook-key"), body)


def test_missing_signature_is_refused(provider):
    body = payload((INVOICE_ID, "INVOICE", "UPDATE"))
    with pytest.raises(AuthFailed):
        provider.parse_webhook({"content-type": "application/json"}, body)


def test_intent_to_receive_good_signature_gives_no_events(provider):
    body = payload()  # Xero's handshake: no events
    assert provider.parse_webhook(signed(body), body) == []


def test_intent_to_receive_bad_signature_is_refused(provider):
    body = payload()
    with pytest.raises(AuthFailed):  # the ingress answers 401, as Xero's handshake requires
        provider.parse_webhook({"x-xero-signature": webhooks.sign(b"something else", KEY)}, body)


def test_replayed_delivery_parses_the_same_and_is_harmless(provider):
    """Xero signs no timestamp, so staleness cannot be checked; events carry no amounts, only 'changed'."""
    body = payload((INVOICE_ID, "INVOICE", "UPDATE"))
    assert provider.parse_webhook(signed(body), body) == provider.parse_webhook(signed(body), body)


def test_events_of_other_organisations_are_dropped(provider):
    body = payload((INVOICE_ID, "INVOICE", "UPDATE"), ("x", "INVOICE", "UPDATE"), tenant="another-org")
    assert provider.parse_webhook(signed(body), body) == []


def test_signed_garbage_is_rejected_not_unauthorised(provider):
    body = b"not json"
    with pytest.raises(Rejected):
        provider.parse_webhook(signed(body), body)


def test_without_a_configured_key_nothing_verifies(monkeypatch):
    monkeypatch.delenv("INVOICER_XERO_WEBHOOK_KEY", raising=False)
    body = payload()
    with pytest.raises(AuthFailed, match="INVOICER_XERO_WEBHOOK_KEY"):
        Xero(options(), None).parse_webhook(signed(body), body)
