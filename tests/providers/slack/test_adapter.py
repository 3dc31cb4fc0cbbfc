"""Slack over real HTTP against the simulator: bot token and incoming webhook; in the pipeline."""
from __future__ import annotations

import pytest

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers.base import Message
from invoicer.providers.slack.adapter import Slack

from ..channels import messages, run_job, use_tenants

DATA = {"tenant": "acme", "customer": "Bob", "job": "1001", "number": "ACME-1", "total": "$1.00", "due": "Dec 2",
        "pdf_url": "https://inv.example/pdf", "pay_url": "https://pay.example/1"}
MSG = Message(key="key-1", to="C", subject="", text="Invoice *ACME-1* issued", tenant="acme", data=DATA)


def test_posts_blocks_with_our_metadata(sim):
    sent = Slack(sim.channel(sim.url), None).send_chat(MSG)
    [posted] = sim.channels[sim.channel_id]
    assert sent.external_id == posted["ts"] and posted["metadata"]["event_payload"]["delivery"] == "key-1"
    assert [b["type"] for b in posted["blocks"]] == ["header", "section", "actions", "context"]
    assert sim.received[-1].headers["content-type"].startswith("application/json")


def test_ok_false_answers_are_typed_errors(sim, monkeypatch):
    provider = Slack(sim.channel(sim.url), None)
    with pytest.raises(Rejected, match="channel_not_found"):
        Slack(sim.channel(sim.url, channel="C404"), None).send_chat(MSG)
    sim.member_of.clear()
    with pytest.raises(Rejected, match="not_in_channel"):
        provider.send_chat(MSG)
    monkeypatch.setenv("INVOICER_SANDBOX_SLACK_TOKEN", "xoxb-wrong")
    with pytest.raises(AuthFailed, match="invalid_auth"):
        provider.send_chat(MSG)
    assert sim.channels[sim.channel_id] == []


def test_429_carries_retry_after(sim):
    sim.inject("429")
    with pytest.raises(RateLimited) as limited:
        Slack(sim.channel(sim.url), None).send_chat(MSG)
    assert limited.value.retry_after == 1


def test_a_dropped_answer_is_found_in_the_history_by_our_metadata(sim):
    provider = Slack(sim.channel(sim.url), None)
    provider.send_chat(Message(key="other", to="C", subject="", text="x", data=DATA))
    sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        provider.send_chat(MSG)
    found = provider.find_message(MSG, "slack")
    assert found.external_id == sim.channels[sim.channel_id][-1]["ts"]
    assert provider.find_message(Message(key="never", to="C", subject="", text="x"), "slack") is None


def test_incoming_webhook(sim):
    provider = Slack({"provider": "slack", "webhook_url_env": "INVOICER_SANDBOX_SLACK_WEBHOOK"}, None)
    assert "find_message" not in provider.capabilities
    provider.send_chat(MSG)
    [posted] = sim.webhook_posts
    assert posted["text"] == MSG.text and "metadata" not in posted


@pytest.fixture
def finance(sim, monkeypatch, tmp_path):
    def use(**slack):
        use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "channels": {
            "customer": [], "slack": {**sim.channel(sim.url), **slack}}}})
    return use


def test_in_the_pipeline_finance_is_told_once_even_after_a_timeout(clean, sim, finance):
    finance()
    sim.inject("429", "drop")
    [row] = messages(run_job())
    assert row.kind == "slack" and row.target == "finance" and row.status == "done"
    assert row.detail["found_existing"] is True and row.attempts == 2  # the 429 spent none
    [posted] = sim.channels[sim.channel_id]
    assert row.external_id == posted["ts"]
    section = posted["blocks"][1]
    assert section["text"]["text"].startswith("Invoice *INV-000001* issued for Nguyễn Thị Hương: $251.10, due ")
    assert "*Total*\n$251.10" in [f["text"] for f in section["fields"]]
    assert [e["text"]["text"] for e in posted["blocks"][2]["elements"]] == ["View PDF"]


def test_in_the_pipeline_a_webhook_timeout_waits_for_review(clean, sim, finance):
    finance(token_env=None, channel=None, webhook_url_env="INVOICER_SANDBOX_SLACK_WEBHOOK")
    sim.inject("drop")
    [row] = messages(run_job())
    assert row.status == "review" and len(sim.webhook_posts) == 1
