"""Contract checks against DocuSign's own documents in ../shared/vendor-specs/docusign: every envelope we
send validates against the eSignature v2.1 `envelopeDefinition` (2022 Swagger subset) and names no property
it does not declare; the Connect sample message is what our parser reads; the simulator answers
with the fields the spec's `envelopeSummary` declares."""
from __future__ import annotations

import copy
import json

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
