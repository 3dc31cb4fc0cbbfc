"""Our chat.postMessage arguments and the simulator's answers against Slack's published method
descriptions (../shared/vendor-specs/slack/: the 2020 OpenAPI subset and slack_kit's current args)."""
from __future__ import annotations

import json
import re

import pytest

from invoicer.providers.base import Message
from invoicer.providers.slack.adapter import Slack

from .. import spec

MSG = Message(key="key-1", to="C", subject="", text="Invoice *A-1* issued", tenant="acme",
              data={"tenant": "acme", "customer": "Bob", "job": "1", "number": "A-1", "total": "$1.00",
                    "due": "Dec 2", "pdf_url": "https://inv.example/pdf", "pay_url": "https://pay.example/1"})


@pytest.fixture(scope="module")
def oas():
    return json.loads(spec("slack", "chat.postMessage.subset.json").read_text())


@pytest.fixture(scope="module")
def kit():
    return json.loads(spec("slack", "slack_kit", "chat.postMessage.json").read_text())


def test_our_arguments_are_slacks(sim, oas, kit):
    Slack(sim.channel(sim.url), None).send_chat(MSG)
    sent = sim.received[-1].json()
    assert set(sent) <= set(kit["args"])
    assert all(sent.get(name) for name, arg in kit["args"].items() if arg.get("required") and name != "token")
    # the 2020 OpenAPI predates message metadata; every other argument is in it too
    declared = {p["name"] for p in oas["paths"]["/chat.postMessage"]["post"]["parameters"]}
    assert set(sent) - {"metadata"} <= declared
    assert {"chat:write"} == {s["name"] for s in kit["scopes"]["bot"]}


def test_answers_match_the_published_shapes(sim, oas, kit):
    responses = oas["paths"]["/chat.postMessage"]["post"]["responses"]
    Slack(sim.channel(sim.url), None).send_chat(MSG)
    answer = sim.handle(sim.received[-1]).body  # what it answers to the request the adapter made
    assert set(responses["200"]["schema"]["required"]) <= set(answer)
    assert re.match(oas["definitions"]["defs_ts"]["pattern"], answer["ts"])
    assert re.match(oas["definitions"]["defs_channel"]["pattern"], answer["channel"])
    known = set(kit["errors"]) | set(responses["default"]["schema"]["properties"]["error"]["enum"])
    for code in ("channel_not_found", "not_in_channel", "no_text", "invalid_blocks", "invalid_metadata_format",
                 "not_authed", "invalid_auth"):
        assert code in known, code

