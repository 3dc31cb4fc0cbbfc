"""Twilio StatusCallbacks through our ingress: signed ones move the delivery's status forward, tampered
or unsigned ones are refused. (Twilio's signature has no timestamp: a replay is harmless, not refused.)"""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from invoicer.errors import AuthFailed
from invoicer.providers.twilio import webhooks
from invoicer.status import job_status

from ...conftest import ADMIN
from ..channels import messages, one_channel, run_job

URL = "http://testserver/v1/webhooks/twilio/acme-hvac"


def test_signature_valid_tampered_and_wrong_url(sim):
    url, params, headers = sim.advance(_sent(sim), "delivered", url=URL)
    body = urlencode(params).encode()
    [event] = webhooks.parse(headers, body, [URL], sim.auth_token)
    assert event.type == "message.delivered" and event.external_id == params["MessageSid"]
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, urlencode({**params, "MessageStatus": "failed"}).encode(), [URL], sim.auth_token)
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body, ["http://testserver/v1/webhooks/twilio/other"], sim.auth_token)
    with pytest.raises(AuthFailed):
        webhooks.parse({}, body, [URL], sim.auth_token)


def _sent(sim):
    from invoicer.providers.base import Message
    from invoicer.providers.twilio.adapter import Twilio

    return Twilio(sim.channel(sim.url), None).send_sms(Message(key="k", to="+14075550100", subject="", text="x")).external_id


def test_status_callbacks_update_the_delivery_in_the_job_status(clean, sim, monkeypatch, tmp_path):
    from invoicer.ingress import create_app

    one_channel(monkeypatch, tmp_path, "sms", sim.channel(sim.url))
    [row] = messages(run_job())
    with TestClient(create_app(), headers=ADMIN) as client:
        def post(status, **kw):
            url, params, headers = sim.advance(row.external_id, status, url=URL, **kw)
            return client.post("/v1/webhooks/twilio/acme-hvac", content=urlencode(params), headers=headers)

        assert post("sent").json()["outcomes"] == ["sent"]
        assert post("delivered").json()["outcomes"] == ["delivered"]
        assert post("sent").json()["outcomes"] == ["unchanged"]  # late or replayed: never backwards
        url, params, headers = sim.advance(row.external_id, "failed", url=URL)
        forged = client.post("/v1/webhooks/twilio/acme-hvac", content=urlencode({**params, "ErrorCode": "1"}),
                             headers=headers)
        assert forged.status_code == 401
    [note] = job_status("acme-hvac", "J-1")["invoices"][0]["notifications"]
    assert note["message_status"] == "delivered" and note["message_id"] == row.external_id
    assert note["recipient"] == "+14***00"


def test_undelivered_is_bounced_with_the_error_code(clean, sim, monkeypatch, tmp_path):
    from invoicer.ingress import create_app

    one_channel(monkeypatch, tmp_path, "sms", sim.channel(sim.url))
    [row] = messages(run_job())
    url, params, headers = sim.advance(row.external_id, "undelivered", error_code="30003", url=URL)
    with TestClient(create_app(), headers=ADMIN) as client:
        r = client.post("/v1/webhooks/twilio/acme-hvac", content=urlencode(params), headers=headers)
    assert r.json()["outcomes"] == ["bounced"]
    [row] = messages(row.invoice_id)
    assert row.detail["status"] == "bounced" and row.detail["status_reason"] == "Twilio error 30003"
