"""Every request our adapters make, and every answer the simulator gives, checked against Google's
discovery documents (../shared/vendor-specs/google/gmail.v1.json, drive.v3.json): the method's HTTP
verb and path (or its upload path), its query parameters, the scopes we ask for, and the field names
of the bodies both ways."""
from __future__ import annotations

import json
import re
import pytest
import requests

from invoicer.providers.google import transform
from invoicer.providers.google.adapter import Drive, Gmail
from invoicer.providers.google.auth import ServiceAccountToken

from .. import spec
from .test_adapter import DOC, MSG, Reserving


@pytest.fixture(scope="module")
def discovery():
    return {name: json.loads(spec("google", f"{name}.json").read_text()) for name in ("gmail.v1", "drive.v3")}


def methods(doc: dict, resources: dict | None = None):
    for resource in (resources if resources is not None else doc["resources"]).values():
        yield from resource.get("methods", {}).values()
        yield from methods(doc, resource.get("resources", {}))


def _regex(template: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def method_for(discovery: dict, request) -> tuple[dict, dict]:
    """The discovery method a recorded request is an instance of (and its document)."""
    for doc in discovery.values():
        root = "/" + doc["servicePath"]
        for m in methods(doc):
            paths = [root + m["path"]] + [p["path"] for p in m.get("mediaUpload", {}).get("protocols", {}).values()]
            if m["httpMethod"] == request.method and any(_regex(p).match(request.path) for p in paths):
                return m, doc
    raise AssertionError(f"{request.method} {request.path} is no method of Gmail or Drive")


def schema_props(doc: dict, name: str) -> set[str]:
    return set(doc["schemas"][name]["properties"])


def api_requests(sim):
    return [r for r in sim.received if r.path != "/token"]


def check_requests(sim, discovery) -> set[str]:
    seen = set()
    for request in api_requests(sim):
        m, doc = method_for(discovery, request)
        allowed = set(m.get("parameters", {})) | set(doc["parameters"])
        assert set(request.query) <= allowed, (m["id"], set(request.query) - allowed)
        for name, p in m.get("parameters", {}).items():
            if p.get("location") == "query" and name in request.query and "enum" in p:
                assert request.query[name][0] in p["enum"], (m["id"], name)
        seen.add(m["id"])
    return seen


def test_gmail_requests_and_answers_follow_the_discovery_document(sim, discovery):
    gmail = Gmail(sim.channel(sim.url), None)
    sent = gmail.send_email(MSG)
    found = gmail.find_message(MSG, "email")
    assert check_requests(sim, discovery) == {"gmail.users.messages.send", "gmail.users.messages.list"}
    doc = discovery["gmail.v1"]
    send = next(m for m in methods(doc) if m["id"] == "gmail.users.messages.send")
    assert "message/rfc822".startswith(send["mediaUpload"]["accept"][0].rstrip("*"))
    assert set(gmail.scopes) & set(send["scopes"]) == {transform.GMAIL_SEND}
    listing = next(m for m in methods(doc) if m["id"] == "gmail.users.messages.list")
    assert transform.GMAIL_READ in listing["scopes"]
    assert {"id", "threadId"} <= schema_props(doc, "Message") and found.external_id == sent.external_id
    assert {"messages", "resultSizeEstimate"} <= schema_props(doc, "ListMessagesResponse")
    assert set(transform.send_body(b"x")) <= schema_props(doc, "Message")  # the JSON form of send


def test_drive_requests_and_answers_follow_the_discovery_document(sim, discovery):
    drive = Drive(sim.platform(sim.url, share="anyone"), Reserving())
    created = drive.create_invoice(DOC, "key-1")
    drive.find_invoice(DOC, "key-1")
    assert check_requests(sim, discovery) == {"drive.files.generateIds", "drive.files.create",
                                              "drive.permissions.create", "drive.files.get"}
    doc = discovery["drive.v3"]
    file_props = schema_props(doc, "File")
    meta = transform.file_metadata(DOC, {"folder_id": "F"}, "ID", "key-1")
    assert set(meta) <= file_props
    assert set(transform.FILE_FIELDS.split(",")) <= file_props  # the fields we ask back exist
    assert set(transform.permission({"share": "anyone"})) <= schema_props(doc, "Permission")
    assert set(transform.permission({"share": "domain", "share_domain": "acme.example"})) <= \
        schema_props(doc, "Permission")
    assert {"ids", "kind", "space"} == schema_props(doc, "GeneratedIds")
    for name, resource in (("File", sim.files[created.external_id]),
                           ("Permission", sim.permissions[created.external_id]["anyoneWithLink"])):
        assert set(resource) - {"owner"} <= schema_props(doc, name), name  # `owner`: the simulator's own note
    for m in methods(doc):
        if m["id"] in ("drive.files.create", "drive.files.generateIds", "drive.files.get",
                       "drive.permissions.create"):
            assert transform.DRIVE_FILE in m["scopes"], m["id"]


def test_error_bodies_have_googles_shape(sim):
    """{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}, as both APIs'
    error pages show it."""
    for fault, path, api in (("429", "/gmail/v1/users/me/messages", Gmail), (None, "/drive/v3/files/1NoSuch", Drive)):
        bearer = ServiceAccountToken(api.slug, sim.channel(sim.url), api.scopes).get()
        if fault:
            sim.inject(fault)
        r = requests.get(f"{sim.url}{path}", params={"q": "rfc822msgid:x"} if fault else {},
                         headers={"Authorization": f"Bearer {bearer}"}, timeout=5)
        error = r.json()["error"]
        assert set(error) == {"code", "message", "errors", "status"} and error["code"] == r.status_code
        assert {"domain", "reason", "message"} <= set(error["errors"][0])
    assert error["errors"][0]["reason"] == "notFound"
