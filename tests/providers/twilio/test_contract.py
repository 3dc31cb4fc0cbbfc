"""Our requests and the simulator's answers checked against Twilio's published OpenAPI (subset in
../shared/vendor-specs/twilio/)."""
from __future__ import annotations

import json

import pytest
from openapi_schema_validator import OAS30Validator

from invoicer.providers.base import Message
from invoicer.providers.twilio.adapter import Twilio

from .. import spec

PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


@pytest.fixture(scope="module")
def oas():
    return json.loads(spec("twilio", "twilio_api_v2010.messages.subset.json").read_text())


def _schema(oas, schema):
    """A schema with the spec's components beside it, so its $refs resolve."""
    return {**schema, "components": oas["components"]}


def test_the_create_form_uses_only_fields_twilio_declares(sim, oas):
    body = oas["paths"][PATH]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    Twilio(sim.channel(sim.url), None).send_sms(Message(key="k", to="+14075550100", subject="", text="Hi"))
    form = {k: v[-1] for k, v in sim.received[-1].form().items()}
    assert set(body["required"]) <= set(form) and set(form) <= set(body["properties"])
    assert "MediaUrl" not in form
    OAS30Validator(_schema(oas, body)).validate(form)
    assert sim.received[-1].headers["content-type"].startswith("application/x-www-form-urlencoded")


def test_simulator_answers_match_the_message_schema(sim, oas):
    message = oas["components"]["schemas"]["api.v2010.account.message"]
    sent = Twilio(sim.channel(sim.url), None).send_sms(Message(key="k", to="+14075550100", subject="", text="Hi"))
    resource = sim._resource(sim.messages[sent.external_id])
    assert set(resource) <= set(message["properties"])
    OAS30Validator(_schema(oas, message)).validate(resource)
    statuses = oas["components"]["schemas"]["message_enum_status"]["enum"]
    from invoicer.providers.twilio.transform import STATUS
    assert set(STATUS) <= set(statuses)
