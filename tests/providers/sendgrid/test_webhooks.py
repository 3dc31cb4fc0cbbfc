"""SendGrid's signed Event Webhook: valid, tampered, stale, wrong key; through the ingress."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from invoicer.errors import AuthFailed
from invoicer.providers.base import Message
from invoicer.providers.sendgrid import webhooks
from invoicer.providers.sendgrid.adapter import SendGrid
from invoicer.providers.sendgrid.simulator import SendGridSimulator

from ...conftest import ADMIN
from ..channels import messages, one_channel, run_job


@pytest.fixture
def sent(sim):
    return SendGrid(sim.channel(sim.url), None).send_email(
        Message(key="key-1", to="huong@example.com", subject="s", text="t", tenant="acme")).external_id


def test_valid_events_are_normalised(sim, sent):
    body, headers = sim.events(sent, "processed", "deferred", "delivered", "open", "bounce", "dropped", "spamreport")
    events = webhooks.parse(headers, body, sim.public_key)
    assert [e.type for e in events] == ["message.sent", "message.sent", "message.delivered", "message.delivered",
                                        "message.bounced", "message.failed", "other"]
    assert {e.reference for e in events} == {"key-1"} and {e.external_id for e in events} == {sent}
    assert events[4].raw["reason"].startswith("550")
    blocked = webhooks.parse(*reversed(sim.events(sent, "bounce", type="blocked")), sim.public_key)
    assert blocked[0].type == "message.bounced" and blocked[0].raw["type"] == "blocked"


def test_tampered_stale_and_foreign_signatures_are_refused(sim, sent):
    body, headers = sim.events(sent, "delivered")
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body.replace(b"delivered", b"bounce"), sim.public_key)
    with pytest.raises(AuthFailed):
        webhooks.parse({**headers, webhooks.TIMESTAMP: str(int(headers[webhooks.TIMESTAMP]) + 1)}, body,
                       sim.public_key)
    with pytest.raises(AuthFailed, match="more than 600 s"):
        webhooks.parse(*reversed(sim.events(sent, "delivered", timestamp=int(time.time()) - 3600)), sim.public_key)
    with pytest.raises(AuthFailed):
        webhooks.parse(headers, body, SendGridSimulator().public_key)
    with pytest.raises(AuthFailed):
        webhooks.parse({}, body, sim.public_key)


def test_events_through_the_ingress_move_the_delivery_forward_only(clean, sim, monkeypatch, tmp_path):
    from invoicer.ingress import create_app

    one_channel(monkeypatch, tmp_path, "email", sim.channel(sim.url))
    [row] = messages(run_job())
    with TestClient(create_app(), headers=ADMIN) as client:
        def post(*kinds, **kw):
            body, headers = sim.events(row.external_id, *kinds, **kw)
            return client.post("/v1/webhooks/sendgrid/acme-hvac", content=body, headers=headers)

        assert post("delivered").json()["outcomes"] == ["delivered"]
        assert post("processed").json()["outcomes"] == ["unchanged"]  # late: never backwards
        assert post("bounce").json()["outcomes"] == ["bounced"]
        stale = post("dropped", timestamp=int(time.time()) - 3600)
        assert stale.status_code == 401
        other_tenant = client.post("/v1/webhooks/sendgrid/polar-air", content=b"[]", headers={})
        assert other_tenant.status_code == 404
    [row] = messages(row.invoice_id)
    assert row.detail["status"] == "bounced" and row.detail["status_reason"].startswith("550")
    assert [e["status"] for e in row.detail["events"]] == ["delivered", "bounced"]
