"""Contract: every corpus invoice, mapped for PayPal, is a valid request by PayPal's own OpenAPI specs
(../shared/vendor-specs/paypal/: invoicing_v2.json and notifications_webhooks_v1.json; types, patterns,
lengths, readOnly fields, and no undeclared property), and PayPal's arithmetic (the simulator) gives our
total."""
from __future__ import annotations

import json

from invoicer.providers import openapi
from invoicer.providers.paypal import transform as t
from invoicer.providers.paypal import webhooks
from invoicer.providers.paypal.simulator import PayPalSimulator
from invoicer.providers.simulate import Request

from .. import corpus_docs, spec


def problems(path, schema: str, body: dict) -> list[str]:
    path = str(path)
    return [f"unknown property {p}" for p in openapi.unknown(path, schema, body)] + \
        openapi.errors(openapi.validator(path, schema), body)


def test_every_corpus_request_validates():
    path = spec("paypal", "invoicing_v2.json")
    failures = {}
    for doc in corpus_docs():
        bodies = {"invoice": t.plan(doc, {"invoicer_email": "billing@acme.example"}).invoice,
                  "notification": t.notification({"email_recipient": True}),
                  "search_data": {"invoice_number": doc["number"]}}
        for schema, body in bodies.items():
            found = problems(path, schema, body)
            if found:
                failures[f"{doc['number']} {schema}"] = found[:3]
    assert failures == {}


def test_the_verify_request_validates():
    path = spec("paypal", "notifications_webhooks_v1.json")
    sim = PayPalSimulator()
    body, headers = sim.deliver({"id": "WH-1", "event_type": "INVOICING.INVOICE.PAID", "resource": {"id": "I"}})
    request = json.loads(webhooks.verify_body(headers, body, sim.webhook_id))
    assert request["webhook_event"] == json.loads(body)  # PayPal's event, forwarded as it came
    assert problems(path, "verify_webhook_signature", {**request, "webhook_event": {}}) == []
    assert problems(path, "verify_webhook_signature", {**request, "auth_algo": "SHA-256/RSA"}) != []


def test_paypals_arithmetic_gives_our_total_for_every_corpus_invoice():
    sim = PayPalSimulator()
    sim.rate_limit = 10**9
    token = sim.handle(Request("POST", "/v1/oauth2/token", {}, {
        "authorization": "Basic " + __import__("base64").b64encode(b"AYsim-client-id:EFsim-client-secret").decode()},
        b"grant_type=client_credentials")).body["access_token"]
    headers = {"authorization": f"Bearer {token}", "prefer": "return=representation"}
    wrong = {}
    for doc in corpus_docs():
        reply = sim.handle(Request("POST", "/v2/invoicing/invoices", {}, headers,
                                   json.dumps(t.plan(doc).invoice).encode()))
        assert reply.status == 201, (doc["number"], reply.body)
        if t.value_of(reply.body["amount"]) != doc["total"]:
            wrong[doc["number"]] = (reply.body["amount"], str(doc["total"]))
    assert wrong == {}


def test_the_checker_catches_what_paypal_would_refuse():
    path = spec("paypal", "invoicing_v2.json")
    bad = {"id": "INV2-READ-ONLY", "detail": {"invoice_number": "x" * 200},
           "items": [{"name": "A", "quantity": 2, "unit_amount": {"currency_code": "USD", "value": "1,00"}}],
           "primary_recipients": [{"billing_info": {"nmae": {}}}]}
    found = " | ".join(problems(path, "invoice", bad))
    for expected in ("nmae", "currency_code", "read", "quantity", "1,00", "invoice_number"):
        assert expected in found, expected
