"""Twilio over real HTTP against the simulator, through the official library."""
from __future__ import annotations

import pytest

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers.base import Message
from invoicer.providers.twilio.adapter import Twilio

from ..channels import messages, one_channel, run_job

MSG = Message(key="k", to="+14075550100", subject="", text="Acme: invoice ACME-1 for $251.10. Pay: https://p.example/1",
              tenant="acme-hvac")


def test_sends_the_text_with_a_status_callback(sim):
    sent = Twilio(sim.channel(sim.url), None).send_sms(MSG)
    [m] = sim.messages.values()
    assert sent.external_id == m["sid"] and m["body"] == MSG.text and m["to"] == MSG.to
    assert m["num_media"] == "0"
    assert sim.callbacks[m["sid"]] == "http://127.0.0.1:8000/v1/webhooks/twilio/acme-hvac"
    assert sent.detail == {"status": "queued", "twilio_status": "queued", "segments": 1, "encoding": "GSM-7"}
    form = sim.received[-1].form()
    assert set(form) == {"To", "From", "Body", "StatusCallback"}


def test_api_key_auth(sim, monkeypatch):
    monkeypatch.setenv("TW_KEY", sim.api_key)
    monkeypatch.setenv("TW_SECRET", sim.api_secret)
    Twilio(sim.channel(sim.url, api_key_env="TW_KEY", api_secret_env="TW_SECRET"), None).send_sms(MSG)
    assert len(sim.messages) == 1


def test_a_wrong_token_is_auth_failed(sim, monkeypatch):
    monkeypatch.setenv("INVOICER_SANDBOX_TWILIO_TOKEN", "nope")
    with pytest.raises(AuthFailed, match="20003"):
        Twilio(sim.channel(sim.url), None).send_sms(MSG)


def test_an_invalid_number_is_rejected_with_twilios_code(sim):
    with pytest.raises(Rejected, match="21211"):
        Twilio(sim.channel(sim.url), None).send_sms(Message(key="k", to="+1", subject="", text="x"))


def test_429_20429_is_rate_limited(sim):
    sim.inject("429")
    with pytest.raises(RateLimited, match="20429"):
        Twilio(sim.channel(sim.url), None).send_sms(MSG)
    assert sim.messages == {}


def test_a_dropped_answer_is_unknown_and_the_look_up_finds_the_message(sim):
    provider = Twilio(sim.channel(sim.url), None)
    sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        provider.send_sms(MSG)
    [m] = sim.messages.values()
    found = provider.find_message(MSG, "sms")
    assert found.external_id == m["sid"]
    assert provider.find_message(Message(key="k2", to=MSG.to, subject="", text="another text"), "sms") is None


@pytest.fixture
def tenant(sim, monkeypatch, tmp_path):
    one_channel(monkeypatch, tmp_path, "sms", sim.channel(sim.url))


def test_in_the_pipeline_a_timeout_after_twilio_accepted_sends_no_second_text(clean, sim, tenant):
    sim.inject("drop")
    [row] = messages(run_job())
    assert row.status == "done" and row.attempts == 2 and row.detail["found_existing"] is True
    [m] = sim.messages.values()
    assert row.external_id == m["sid"]
    assert "INV-000001" in m["body"] and "/v1/invoices/" in m["body"] and m["num_media"] == "0"


def test_in_the_pipeline_a_429_then_success(clean, sim, tenant):
    sim.inject("429")
    [row] = messages(run_job())
    assert row.status == "done" and row.attempts == 1 and len(sim.messages) == 1  # a 429 spends no attempt
