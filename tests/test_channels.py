"""One job through real workers with every real channel at once: the customer by SMTP and Twilio, the
finance team by SMTP and Slack; Twilio's signed StatusCallback then marks the SMS delivered."""
from __future__ import annotations

import os
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from invoicer.providers.slack.simulator import SlackSimulator
from invoicer.providers.smtp.simulator import SmtpSimulator
from invoicer.providers.twilio.simulator import TwilioSimulator

from .conftest import ADMIN, make_event, post, wait_for
from .providers.channels import own_tenants_forgotten  # noqa: F401  (autouse)
from .providers.channels import serve, use_tenants


@pytest.fixture
def channels(monkeypatch):
    smtp = SmtpSimulator().start()
    for k, v in smtp.env().items():
        monkeypatch.setenv(k, v)
    with serve(TwilioSimulator(), monkeypatch) as twilio, serve(SlackSimulator(), monkeypatch) as slack:
        yield smtp, twilio, slack
    smtp.stop()


def test_a_job_tells_everyone_once_over_real_channels(procs, channels, monkeypatch, tmp_path):
    from invoicer.ingress import create_app

    smtp, twilio, slack = channels
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {
        "name": "Acme", "sources": {"*": {"secret_env": "INVOICER_TEST_SECRET"}},
        "channels": {"customer": ["email", "sms"], "finance_emails": ["finance@acme.example"],
                     "email": smtp.channel(), "sms": twilio.channel(twilio.url), "slack": slack.channel(slack.url)}}})
    procs.worker(env=dict(os.environ))
    with TestClient(create_app(), headers=ADMIN) as client:
        assert post(client, make_event()).status_code == 202

        def done():
            s = client.get("/v1/jobs/acme-hvac/J-1").json()
            return s if s.get("state") in ("done", "failed") else None

        status = wait_for(done, 90, what="the job and its messages")
        assert status["state"] == "done", status
        notes = {(n["channel"], n["to"]): n for n in status["invoices"][0]["notifications"]}
        assert set(notes) == {("email", "customer"), ("sms", "customer"), ("email", "finance"), ("slack", "finance")}
        assert all(n["status"] == "done" and n["attempts"] == 1 for n in notes.values())
        assert sorted(m["to"][0] for m in smtp.messages) == ["finance@acme.example", "huong@example.com"]
        [sms] = twilio.messages.values()
        [posted] = slack.channels[slack.channel_id]
        assert notes[("sms", "customer")]["message_id"] == sms["sid"]
        assert notes[("slack", "finance")]["message_id"] == posted["ts"]

        url, params, headers = twilio.advance(sms["sid"], "delivered",
                                              url="http://testserver/v1/webhooks/twilio/acme-hvac")
        r = client.post("/v1/webhooks/twilio/acme-hvac", content=urlencode(params), headers=headers)
        assert r.json()["outcomes"] == ["delivered"]
        notes = {(n["channel"], n["to"]): n
                 for n in client.get("/v1/jobs/acme-hvac/J-1").json()["invoices"][0]["notifications"]}
        assert notes[("sms", "customer")]["message_status"] == "delivered"
        assert notes[("email", "customer")]["message_status"] == "sent"
