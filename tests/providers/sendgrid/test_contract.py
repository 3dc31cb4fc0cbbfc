"""Our Mail Send bodies checked against SendGrid's published OpenAPI 3.1 (../shared/vendor-specs/sendgrid/)."""
from __future__ import annotations

import json

import pytest
from openapi_schema_validator import OAS31Validator

from invoicer.providers.base import Message
from invoicer.providers.sendgrid.adapter import SendGrid

from .. import spec


@pytest.fixture(scope="module")
def body_schema():
    oas = json.loads(spec("sendgrid", "tsg_mail_v3.json").read_text())
    schema = oas["components"]["requestBodies"]["PostMailSend"]["content"]["application/json"]["schema"]
    return {**schema, "components": oas["components"]}


@pytest.mark.parametrize("message", [
    Message(key="k" * 64, to="huong@example.com", subject="Invoice ACME-1", text="Hello\n", html="<p>Hello</p>",
            attachment=("ACME-1.pdf", b"%PDF-1.7"), tenant="acme", delivery_id=7, data={"kind": "invoice"}),
    Message(key="k", to="finance@acme.example", subject="[acme] Invoice", text="Issued\n", tenant="acme"),
])
def test_the_body_we_send_validates_against_the_spec(sim, body_schema, message):
    SendGrid(sim.channel(sim.url, reply_to="Office <office@acme.example>"), None).send_email(message)
    sent = sim.received[-1].json()
    OAS31Validator(body_schema).validate(sent)
    assert set(sent) <= set(body_schema["properties"])
    assert "custom_args" not in sent  # the message-level one is typed "string" in the spec; ours is per personalization
    assert sim.received[-1].headers["content-type"].startswith("application/json")


def test_the_spec_takes_an_object_in_the_personalization_custom_args(body_schema):
    p = body_schema["properties"]["personalizations"]["items"]["properties"]["custom_args"]
    assert p["type"] == "object"
