"""Pure mapping for Gmail and Drive: no I/O."""
from __future__ import annotations

import base64
import email
import email.policy
import json
from datetime import date

import pytest

from invoicer.errors import AuthFailed, RateLimited, Rejected, Unavailable
from invoicer.providers.base import Message
from invoicer.providers.google import transform

MSG = Message(key="acme-1-email-customer", to="huong@example.com", subject="Invoice INV-1", text="Hello\n",
              attachment=("INV-1.pdf", b"%PDF-1.7"), tenant="acme")
DOC = {"number": "INV-000001", "tenant": "acme", "customer": {"name": "Jordan"}, "job": {"number": "1001"},
       "issued_on": date(2026, 11, 2)}


def test_claims_delegate_to_the_sending_user():
    key = {"client_email": "sa@p.iam.gserviceaccount.com", "private_key": "x"}
    c = transform.claims(key, "billing@acme.example", ["b", "a"], 1000)
    assert c == {"iss": "sa@p.iam.gserviceaccount.com", "sub": "billing@acme.example", "scope": "b a",
                 "aud": "https://oauth2.googleapis.com/token", "iat": 1000, "exp": 4600}


def test_a_bad_key_is_an_auth_failure_without_echoing_it():
    with pytest.raises(AuthFailed, match="not JSON") as bad:
        transform.service_account("-----BEGIN PRIVATE KEY----- secret")
    assert "secret" not in str(bad.value)
    with pytest.raises(AuthFailed, match="client_email"):
        transform.service_account(json.dumps({"private_key": "x"}))


def test_the_mime_message_carries_our_message_id_and_the_pdf():
    raw = transform.mime(MSG, {}, "billing@acme.example")
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["From"] == "billing@acme.example"  # the user, when no `from` is set
    assert mail["Message-ID"] == "<acme-1-email-customer@acme.example>"
    assert mail["Message-ID"] == transform.message_id(MSG, {}, "billing@acme.example")
    [pdf] = mail.iter_attachments()
    assert pdf.get_content() == b"%PDF-1.7"
    assert base64.urlsafe_b64decode(transform.send_body(raw)["raw"]) == raw
    with pytest.raises(Rejected, match="cannot be built"):
        transform.mime(Message(key="k", to="not an address", subject="s", text="t"), {}, "billing@acme.example")


def test_the_multipart_upload_is_metadata_then_media():
    meta = transform.file_metadata(DOC, {"folder_id": "F1"}, "ID1", "key-1")
    assert meta["id"] == "ID1" and meta["parents"] == ["F1"] and meta["name"] == "INV-000001.pdf"
    body, ctype = transform.multipart(meta, b"%PDF-1.7", boundary="b0")
    assert ctype == "multipart/related; boundary=b0"
    assert body == (b'--b0\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n' + json.dumps(meta).encode()
                    + b"\r\n--b0\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--b0--\r\n")
    assert "parents" not in transform.file_metadata(DOC, {}, "ID1", "key-1")  # the user's My Drive


def test_link_sharing():
    assert transform.permission({}) is None and transform.permission({"share": "none"}) is None
    assert transform.permission({"share": "anyone"}) == {"type": "anyone", "role": "reader",
                                                         "allowFileDiscovery": False}
    assert transform.permission({"share": "domain", "share_domain": "acme.example"})["domain"] == "acme.example"


def test_google_errors_are_typed_by_status_and_reason():
    def body(reason):
        return {"error": {"code": 403, "message": "m", "errors": [{"domain": "usageLimits", "reason": reason}]}}

    assert isinstance(transform.typed(429, body("rateLimitExceeded"), "x"), RateLimited)
    assert isinstance(transform.typed(403, body("userRateLimitExceeded"), "x"), RateLimited)
    assert transform.typed(403, body("dailyLimitExceeded"), "x").retry_after == 3600
    assert isinstance(transform.typed(403, body("insufficientPermissions"), "x"), AuthFailed)
    assert isinstance(transform.typed(409, body("fileIdInUse"), "x"), Unavailable)
    assert isinstance(transform.typed(400, body("invalidArgument"), "x"), Rejected)
    assert transform.error_text({"error": "invalid_grant", "error_description": "Invalid email or User ID"}) == \
        "invalid_grant: Invalid email or User ID (invalid_grant)"


def test_file_names_and_search():
    assert transform.file_name(DOC, {"name": "{issued} {number}.pdf"}) == "2026-11-02 INV-000001.pdf"
    assert transform.search_query("<k-1@acme.example>") == "rfc822msgid:k-1@acme.example"
