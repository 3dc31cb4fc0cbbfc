"""Contract checks against DocuSign's own documents in ../shared/vendor-specs/docusign: every envelope we
send validates against the eSignature v2.1 `envelopeDefinition` (2022 Swagger subset) and names no property
it does not declare; the Connect sample message is what our parser reads; the simulator answers
with the fields the spec's `envelopeSummary` declares."""
from __future__ import annotations

import copy
import json

import requests

from invoicer.providers import openapi
from invoicer.providers.docusign import transform, webhooks

from .. import corpus_docs, spec
from . import PDF

KEY = "c" * 64


def _spec() -> str:
    return str(spec("docusign", "esignature-v2.1.envelopes-create.subset.json"))


def test_the_create_operation_is_the_one_the_adapter_calls():
    doc = json.loads(open(_spec(), encoding="utf-8").read())
    op = doc["paths"]["/v2.1/accounts/{accountId}/envelopes"]["post"]
    assert op["operationId"] == "Envelopes_PostEnvelopes" and doc["basePath"] == "/restapi"
    [body] = [p for p in op["parameters"] if p["in"] == "body"]
    assert body["schema"]["$ref"] == "#/definitions/envelopeDefinition"


def test_every_envelope_validates_against_envelope_definition():
    path = _spec()
    check = openapi.validator(path, "envelopeDefinition")
    assert check is not None
    options = [{}, {"sign_here": {"anchor": "Signature", "anchor_x": 5, "anchor_y": -10}}]
    for i, doc in enumerate(d for d in corpus_docs()[::15] if d["customer"].get("email")):
        doc = {**doc, "pdf": {"filename": f"{doc['number']}.pdf", "data": PDF}}
        body = transform.envelope(doc, KEY, options[i % 2])
        assert openapi.errors(check, body) == [], doc["number"]
        assert openapi.unknown(path, "envelopeDefinition", body) == [], doc["number"]


def test_the_spec_says_what_we_rely_on():
    doc = json.loads(open(_spec(), encoding="utf-8").read())
    defs = doc["definitions"]
    assert "7 days" in defs["envelopeDefinition"]["properties"]["transactionId"]["description"]
    assert {"errorCode", "message"} <= set(defs["errorDetails"]["properties"])
    assert {"envelopeId", "status", "statusDateTime", "uri"} <= set(defs["envelopeSummary"]["properties"])


def test_the_connect_sample_message_parses_into_a_signature():
    sample = json.loads(spec("docusign", "connect.schema-v2.json").read_text(encoding="utf-8"))
    message = copy.deepcopy(sample)
    message["event"] = "envelope-completed"
    summary = message["data"]["envelopeSummary"]
    signer = summary["recipients"]["signers"][0]
    signer.update(status="completed", name="Pat Customer", signedDateTime="2026-11-25T14:00:00.000Z")
    summary["customFields"]["textCustomFields"][0].update(name="invoicer_key", value=KEY)
    [event] = webhooks.parse(json.dumps(message).encode())
    assert event.type == "job.signed" and event.external_id == sample["data"]["envelopeId"]
    assert event.raw["signed_by"] == "Pat Customer" and event.raw["signed_at"] == "2026-11-25T14:00:00.000Z"
    assert event.reference == KEY


def test_what_the_simulator_accepts_and_answers_is_named_in_the_spec(clean, monkeypatch, tmp_path):
    from invoicer import db
    from invoicer.pipeline import Ctx
    from invoicer.providers.docusign import adapter, simulator
    from invoicer.providers.docusign.simulator import DocuSignSimulator
    from invoicer.providers.simulate import Running

    from . import make_doc, options

    path = _spec()
    defs = json.loads(open(path, encoding="utf-8").read())["definitions"]
    assert simulator.ENVELOPE_KEYS <= set(defs["envelopeDefinition"]["properties"])
    assert simulator.SIGNER_KEYS <= set(defs["signer"]["properties"])
    assert simulator.TAB_KEYS <= set(defs["signHere"]["properties"])
    adapter._tokens.clear()
    with Running(DocuSignSimulator()) as running:
        sim = running.sim
        sim.url = running.url
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        provider = adapter.DocuSign(options(sim), Ctx(engine=db.engine(), var_dir=tmp_path, tenant="acme-hvac",
                                                      platform="sign"))
        provider.create_invoice(make_doc(), KEY)
        [post] = sim.api_calls("POST")
        assert openapi.errors(openapi.validator(path, "envelopeDefinition"), post.json()) == []
        [env_id] = sim.envelopes
        sim.complete(env_id)
        base = f"/restapi/v2.1/accounts/{sim.account_id}/envelopes"
        auth = {"Authorization": f"Bearer {provider._session()['access_token']}"}
        answer = requests.post(running.url + base, data=post.body, headers=auth, timeout=5).json()
        assert set(answer) <= set(defs["envelopeSummary"]["properties"]) and answer["status"] == "sent"
        listed = requests.get(running.url + base, params={"from_date": "2026-01-01T00:00:00Z",
                                                          "include": "custom_fields,recipients"}, headers=auth,
                              timeout=5).json()
        got = requests.get(f"{running.url}{base}/{env_id}", headers=auth, timeout=5).json()
    for item in listed["envelopes"] + [got]:
        assert openapi.unknown(path, "envelope", item) == []
    body, _ = sim.connect(env_id)
    assert openapi.unknown(path, "envelope", json.loads(body)["data"]["envelopeSummary"]) == []
