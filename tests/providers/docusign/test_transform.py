"""The pure DocuSign mapping: our invoice to an envelope, list answers back, error bodies to typed errors."""
from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from invoicer.errors import AuthFailed, RateLimited, Rejected, Unavailable
from invoicer.providers.docusign import transform as t

from . import PDF, make_doc

KEY = "k" * 64


def test_the_envelope_carries_the_pdf_the_customer_as_signer_and_our_key():
    env = t.envelope(make_doc(), KEY)
    assert env["status"] == "sent" and env["transactionId"] == KEY
    [doc] = env["documents"]
    assert base64.b64decode(doc["documentBase64"]) == PDF and doc["fileExtension"] == "pdf"
    assert doc["documentId"] == "1" and doc["name"] == "ACME-1001.pdf"
    [signer] = env["recipients"]["signers"]
    assert signer["email"] == "huong@example.com" and signer["name"] == "Nguyễn Thị Hương"
    assert signer["recipientId"] == "1" and signer["routingOrder"] == "1"
    [tab] = signer["tabs"]["signHereTabs"]
    assert tab == {"documentId": "1", "recipientId": "1", "tabLabel": "invoicer_sign_here", "pageNumber": "1",
                   "xPosition": "380", "yPosition": "690"}
    fields = {f["name"]: f for f in env["customFields"]["textCustomFields"]}
    assert fields["invoicer_key"]["value"] == KEY and fields["invoicer_key"]["show"] == "false"
    assert fields["invoicer_invoice"]["value"] == "ACME-1001"
    assert env["emailSubject"] == "Please sign invoice ACME-1001 from Acme Heating & Cooling"
    assert "251.10 USD" in env["emailBlurb"]


def test_options_place_the_tab_by_anchor_and_set_the_subject():
    env = t.envelope(make_doc(), KEY, {"sign_here": {"anchor": "Signature:", "anchor_x": 10},
                                       "email_subject": "Sign {number} " + "x" * 200})
    [tab] = env["recipients"]["signers"][0]["tabs"]["signHereTabs"]
    assert tab["anchorString"] == "Signature:" and tab["anchorXOffset"] == "10" and "pageNumber" not in tab
    assert len(env["emailSubject"]) == 100 and env["emailSubject"].startswith("Sign ACME-1001 ")


def test_an_invoice_docusign_could_not_take_is_rejected_before_sending():
    doc = make_doc(customer={"email": None})
    with pytest.raises(Rejected, match="no email address"):
        t.envelope(doc, KEY)
    doc = make_doc()
    doc["pdf"] = None
    with pytest.raises(Rejected, match="no rendered PDF"):
        t.envelope(doc, KEY)


def test_the_lookup_asks_by_custom_field_from_the_day_before_issue():
    params = t.lookup_params(make_doc(), KEY)
    assert params == {"from_date": "2026-11-01T15:00:00Z", "custom_field": f"invoicer_key={KEY}",
                      "include": "custom_fields"}


def test_found_checks_our_field_and_skips_voided_envelopes():
    ours = {"envelopeId": "e2", "status": "sent",
            "customFields": {"textCustomFields": [{"name": "invoicer_key", "value": KEY}]}}
    voided = {**ours, "envelopeId": "e1", "status": "voided"}
    other = {"envelopeId": "e3", "status": "sent", "customFields": {"textCustomFields": [
        {"name": "invoicer_key", "value": "other"}]}}
    assert t.found({"envelopes": [voided, other, ours]}, KEY)["envelopeId"] == "e2"
    assert t.found({"resultSetSize": "0"}, KEY) is None
    created = t.created(ours, make_doc(), "acc")
    assert created.external_id == "e2" and created.number == "ACME-1001" and created.detail["account_id"] == "acc"
    with pytest.raises(Rejected):
        t.created({}, make_doc(), "acc")


@pytest.mark.parametrize("status,code,kind", [
    (429, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED", RateLimited),
    (400, "BURST_APIINVOCATION_LIMIT_EXCEEDED", RateLimited),
    (401, "AUTHORIZATION_INVALID_TOKEN", AuthFailed),
    (400, "USER_LACKS_PERMISSIONS", AuthFailed),
    (400, "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT", Rejected),
    (400, "ENVELOPE_IS_INCOMPLETE", Rejected),
    (404, "ENVELOPE_DOES_NOT_EXIST", Rejected),
    (500, "UNSPECIFIED_ERROR", Unavailable),
    (503, None, Unavailable),
])
def test_error_bodies_become_typed_errors(status, code, kind):
    err = t.typed(status, {"errorCode": code, "message": "m"} if code else None, "envelope create", retry_after=7)
    assert type(err) is kind and err.status == status
    if code:
        assert code in str(err)
    if kind is RateLimited:
        assert err.retry_after == 7


def test_rate_limit_reset_is_read_as_unix_time_or_seconds():
    now = datetime(2026, 11, 25, 14, 20, tzinfo=timezone.utc).timestamp()
    assert t.reset_in({"X-RateLimit-Reset": str(int(now) + 2400)}, now) == 2400
    assert t.reset_in({"X-RateLimit-Reset": "30"}, now) == 30
    assert t.reset_in({}, now) is None
