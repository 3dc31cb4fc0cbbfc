"""SendGrid Mail Send body, pure."""
import base64

import pytest

from invoicer.errors import MappingMissing
from invoicer.providers.base import Message
from invoicer.providers.sendgrid import transform

MSG = Message(key="key-1", to="huong@example.com", subject="Invoice ACME-1", text="Hello\n", html="<p>Hello</p>",
              attachment=("ACME-1.pdf", b"%PDF-1.7"), tenant="acme", delivery_id=42, data={"kind": "invoice"})


def test_the_body_carries_our_delivery_in_the_personalization():
    body = transform.mail_body(MSG, {"from": "Acme Billing <billing@acme.example>", "reply_to": "office@acme.example"})
    assert body["personalizations"] == [{"to": [{"email": "huong@example.com"}], "custom_args": {
        "invoicer_delivery": "key-1", "invoicer_tenant": "acme", "invoicer_delivery_id": "42"}}]
    assert "custom_args" not in body  # message-level custom_args: mistyped in the spec, not used
    assert body["from"] == {"email": "billing@acme.example", "name": "Acme Billing"}
    assert body["reply_to"] == {"email": "office@acme.example"}
    assert body["content"] == [{"type": "text/plain", "value": "Hello\n"}, {"type": "text/html", "value": "<p>Hello</p>"}]
    assert body["categories"] == ["invoicer", "invoice"]
    [pdf] = body["attachments"]
    assert pdf == {"content": base64.b64encode(b"%PDF-1.7").decode(), "type": "application/pdf",
                   "filename": "ACME-1.pdf", "disposition": "attachment"}


def test_a_link_only_message_has_no_attachments_and_a_sender_is_required():
    body = transform.mail_body(Message(key="k", to="a@example.com", subject="s", text="t"), {"from": "b@acme.example"})
    assert "attachments" not in body and body["content"] == [{"type": "text/plain", "value": "t"}]
    with pytest.raises(MappingMissing):
        transform.mail_body(MSG, {})


def test_error_text():
    assert transform.error_text({"errors": [{"field": "from", "message": "required"}, {"message": "x"}]}) == \
        "from: required; x"
