"""SendGrid over real HTTP against the simulator, through the official library; in the pipeline."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.providers.base import Message
from invoicer.providers.sendgrid.adapter import SendGrid
from invoicer.status import job_status

from ...conftest import ADMIN, free_port
from ..channels import messages, one_channel, run_job

MSG = Message(key="key-1", to="huong@example.com", subject="Invoice", text="Hello\n", tenant="acme-hvac")


def test_sends_and_keeps_sendgrids_message_id(sim):
    sent = SendGrid(sim.channel(sim.url), None).send_email(MSG)
    assert list(sim.messages) == [sent.external_id]
    assert sim.received[-1].headers["authorization"] == f"Bearer {sim.api_key}"


def test_errors_are_typed(sim, monkeypatch):
    provider = SendGrid(sim.channel(sim.url), None)
    with pytest.raises(Rejected, match="personalizations.0.to"):
        provider.send_email(Message(key="k", to="nobody", subject="s", text="t"))
    sim.inject("429")
    with pytest.raises(RateLimited) as limited:
        provider.send_email(MSG)
    assert 0 <= limited.value.retry_after <= 2  # from X-RateLimit-Reset
    sim.inject("500")
    with pytest.raises(Unavailable):
        provider.send_email(MSG)
    with pytest.raises(Unavailable) as refused:
        SendGrid(sim.channel(f"http://127.0.0.1:{free_port()}"), None).send_email(MSG)
    assert not isinstance(refused.value, OutcomeUnknown)
    monkeypatch.setenv("INVOICER_SANDBOX_SENDGRID_KEY", "SG.wrong")
    with pytest.raises(AuthFailed):
        provider.send_email(MSG)
    assert sim.messages == {}


@pytest.fixture
def tenant(sim, monkeypatch, tmp_path):
    one_channel(monkeypatch, tmp_path, "email", sim.channel(sim.url))


def test_in_the_pipeline_the_pdf_is_attached_and_a_429_is_waited_out(clean, sim, tenant):
    sim.inject("429")
    [row] = messages(run_job())
    assert row.status == "done" and row.attempts == 1
    [(message_id, mail)] = sim.messages.items()
    assert row.external_id == message_id
    assert mail["personalizations"][0]["custom_args"]["invoicer_delivery"] == row.idempotency_key
    assert mail["personalizations"][0]["custom_args"]["invoicer_delivery_id"] == str(row.id)
    assert mail["subject"] == "Invoice INV-000001 from Acme"
    [pdf] = mail["attachments"]
    assert pdf["type"] == "application/pdf" and pdf["filename"] == "INV-000001.pdf"


def test_in_the_pipeline_an_unknown_outcome_is_not_sent_again_and_its_event_settles_it(clean, sim, tenant):
    """SendGrid cannot be asked: the delivery waits for review, and SendGrid's own signed event for it
    (our key in custom_args) shows it went."""
    from invoicer.ingress import create_app

    sim.inject("drop")
    [row] = messages(run_job())
    assert len(sim.messages) == 1  # it went, once
    assert row.status == "review" and row.attempts == 2 and row.detail["status"] == "unknown"
    status = job_status("acme-hvac", "J-1")
    assert status["state"] == "done" and status["needs_review"] is True
    assert status["invoices"][0]["notifications"][0]["message_status"] == "unknown"

    [message_id] = sim.messages
    body, headers = sim.events(message_id, "processed", "delivered")
    with TestClient(create_app(), headers=ADMIN) as client:
        r = client.post("/v1/webhooks/sendgrid/acme-hvac", content=body, headers=headers)
    assert r.status_code == 200 and r.json()["outcomes"] == ["sent", "delivered"]
    [row] = messages(row.invoice_id)
    assert row.status == "done" and row.detail["status"] == "delivered" and row.external_id == message_id
    [note] = job_status("acme-hvac", "J-1")["invoices"][0]["notifications"]
    assert note["message_status"] == "delivered" and note["status"] == "done"


def test_in_the_pipeline_a_link_instead_of_the_pdf(clean, sim, monkeypatch, tmp_path):
    one_channel(monkeypatch, tmp_path, "email", sim.channel(sim.url), pdf="link")
    run_job()
    [mail] = sim.messages.values()
    assert "attachments" not in mail and "/v1/invoices/" in mail["content"][0]["value"]
    assert "/v1/invoices/" in mail["content"][1]["value"]
