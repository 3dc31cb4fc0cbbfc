"""DocuSign Connect: X-DocuSign-Signature-N verified and parsed; through the ingress, a verified
`envelope-completed` becomes the job's `job.signed` event, stored and published once.

The pipeline runs in this process (tests.providers.channels.run_job) on real PostgreSQL and Redis, with
DocuSign as a platform that takes the rendered PDF; Connect messages come from the simulator."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from invoicer import db, documents, pipeline
from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.docusign import webhooks
from invoicer.providers.docusign.simulator import DocuSignSimulator
from invoicer.signatures import event_id
from tests.conftest import ADMIN
from tests.providers.channels import run_job, serve

from . import signing_tenant

BODY = json.dumps({"event": "envelope-sent", "data": {"envelopeId": "e-1"}}).encode()


# ---------------------------------------------------------------- the signature scheme

def test_a_valid_signature_verifies():
    webhooks.verify(webhooks.sign(BODY, "key-1"), BODY, ["key-1"])


def test_a_tampered_body_is_refused():
    headers = webhooks.sign(BODY, "key-1")
    with pytest.raises(AuthFailed, match="does not verify"):
        webhooks.verify(headers, BODY.replace(b"sent", b"void"), ["key-1"])


def test_a_wrong_key_is_refused():
    with pytest.raises(AuthFailed, match="does not verify"):
        webhooks.verify(webhooks.sign(BODY, "someone-elses-key"), BODY, ["key-1"])


def test_any_of_several_signatures_is_enough_while_keys_rotate():
    headers = webhooks.sign(BODY, ["old-key", "key-1"])
    assert set(headers) == {"X-DocuSign-Signature-1", "X-DocuSign-Signature-2"}
    webhooks.verify({k.lower(): v for k, v in headers.items()}, BODY, ["key-1"])


def test_no_signature_or_no_key_is_refused():
    with pytest.raises(AuthFailed, match="no X-DocuSign-Signature"):
        webhooks.verify({"Content-Type": "application/json"}, BODY, ["key-1"])
    with pytest.raises(AuthFailed, match="no Connect key"):
        webhooks.verify(webhooks.sign(BODY, "key-1"), BODY, [""])


def test_the_signature_is_base64_hmac_sha256_of_the_body():
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"key-1", BODY, hashlib.sha256).digest()).decode()
    assert webhooks.sign(BODY, "key-1") == {"X-DocuSign-Signature-1": expected}


def test_verified_bodies_that_are_not_connect_messages_are_rejected():
    with pytest.raises(Rejected, match="not JSON"):
        webhooks.parse(b"<DocuSignEnvelopeInformation/>")
    with pytest.raises(Rejected, match="not a Connect message"):
        webhooks.parse(b'{"hello": 1}')
    with pytest.raises(Rejected, match="without a completed signer"):
        webhooks.parse(json.dumps({"event": "envelope-completed", "data": {"envelopeId": "e-1"}}).encode())


def test_other_events_are_named_envelope_events():
    [event] = webhooks.parse(BODY)
    assert event.type == "envelope.envelope_sent" and event.external_id == "e-1"


# ---------------------------------------------------------------- through the ingress and the pipeline

@pytest.fixture
def signing(clean, tmp_path, monkeypatch):
    """acme-hvac invoicing on the local ledger and asking its customer to sign on DocuSign; one job run
    to its end. Yields (simulator, invoice id, envelope id, the ingress client)."""
    from invoicer.providers.docusign import adapter

    adapter._tokens.clear()
    with serve(DocuSignSimulator(), monkeypatch) as sim:
        signing_tenant(monkeypatch, tmp_path, sim)
        invoice_id = run_job()
        [envelope_id] = sim.envelopes
        from invoicer.ingress import create_app

        with TestClient(create_app(), headers=ADMIN) as client:
            yield sim, invoice_id, envelope_id, client


def _events(source: str = "docusign") -> list:
    with db.engine().connect() as conn:
        return conn.execute(select(db.events).where(db.events.c.source == source)).all()


def test_the_envelope_carries_the_rendered_pdf_and_the_delivery_records_it(signing):
    sim, invoice_id, envelope_id, _ = signing
    with db.engine().connect() as conn:
        rows = {(r.kind, r.target): r for r in conn.execute(select(db.deliveries).where(
            db.deliveries.c.invoice_id == invoice_id))}
        job = conn.execute(select(db.jobs)).one()
    sign, pdf = rows[("invoice", "sign")], rows[("pdf", "pdf")]
    assert sign.status == "done" and sign.external_id == envelope_id and sign.id > pdf.id
    stored = documents.storage().get("acme-hvac", pdf.detail["path"])
    assert sim.envelopes[envelope_id]["documents"]["1"] == stored and stored.startswith(b"%PDF")
    assert sim.envelopes[envelope_id]["transactionId"] == sign.idempotency_key
    assert job.state == "done"


def test_envelope_completed_becomes_one_job_signed_event(signing, published):
    sim, invoice_id, envelope_id, client = signing
    sim.complete(envelope_id, name="Nguyễn Thị Hương", at=1795615200)  # 2026-11-25T14:00:00Z
    body, headers = sim.connect(envelope_id)
    r = client.post("/v1/webhooks/docusign/acme-hvac", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"received": 1, "outcomes": ["signed"]}
    [row] = _events()
    assert row.type == "job.signed" and row.job_id == "J-1" and row.status == "accepted"
    assert row.event_id == event_id("docusign", envelope_id)
    stored = json.loads(row.body)
    assert stored["job"]["signature"] == {"signed_by": "Nguyễn Thị Hương", "signed_at": "2026-11-25T14:00:00Z"}
    assert stored["occurred_at"] == "2026-11-25T14:00:00Z" and stored["source"] == "docusign"
    assert [b[0][0] for s, b in published if s == "invoicer.ingest.process"] == [row.id]

    # the replayed delivery verifies again, and is the same event: stored once, published once
    again = client.post("/v1/webhooks/docusign/acme-hvac", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["outcomes"] == ["duplicate"]
    assert len(_events()) == 1 and len([s for s, _ in published if s == "invoicer.ingest.process"]) == 1

    # the pipeline applies it: the job already has its invoice, so the signature is recorded, nothing re-made
    assert pipeline.process_event(row.id) == []
    with db.engine().connect() as conn:
        job = conn.execute(select(db.jobs)).one()
        audit = conn.execute(select(db.audit_log.c.action).where(db.audit_log.c.event_pk == row.id)).scalars().all()
        invoices = conn.execute(select(db.invoices)).all()
    assert job.event_pk == row.id and "trigger_after_invoicing" in audit and len(invoices) == 1


def test_tampered_or_wrongly_keyed_connect_messages_are_refused(signing, published):
    sim, _, envelope_id, client = signing
    sim.complete(envelope_id)
    body, headers = sim.connect(envelope_id)
    tampered = body.replace(b"envelope-completed", b"envelope-voided")
    assert client.post("/v1/webhooks/docusign/acme-hvac", content=tampered, headers=headers).status_code == 401
    body, wrong = sim.connect(envelope_id, key="not-our-connect-key")
    assert client.post("/v1/webhooks/docusign/acme-hvac", content=body, headers=wrong).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    assert client.post("/v1/webhooks/docusign/acme-hvac", content=body, headers=unsigned).status_code == 401
    assert _events() == [] and published == []


def test_other_envelopes_and_other_events_create_no_event(signing, published):
    sim, _, envelope_id, client = signing
    body, headers = sim.connect(envelope_id, event="envelope-delivered")
    r = client.post("/v1/webhooks/docusign/acme-hvac", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["outcomes"] == ["recorded"]
    foreign = json.dumps({"event": "envelope-completed", "generatedDateTime": "2026-11-25T13:20:00Z",
                          "data": {"envelopeId": "not-one-of-ours", "envelopeSummary": {"recipients": {"signers": [
                              {"name": "X", "status": "completed", "signedDateTime": "2026-11-25T13:20:00Z"}]}}}})
    r = client.post("/v1/webhooks/docusign/acme-hvac", content=foreign.encode(),
                    headers=webhooks.sign(foreign, sim.connect_key))
    assert r.status_code == 200 and r.json()["outcomes"] == ["unknown_invoice"]
    assert _events() == [] and published == []
