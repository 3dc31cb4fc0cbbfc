"""Slack Block Kit message and error mapping, pure."""
import pytest

from invoicer.errors import AuthFailed, RateLimited, Rejected, Unavailable
from invoicer.providers.base import Message
from invoicer.providers.slack import transform

DATA = {"tenant": "acme", "customer": "Bob <b> & Co", "job": "1001", "number": "ACME-001001", "total": "$251.10",
        "due": "Dec 2, 2026", "pdf_url": "https://inv.example/v1/invoices/9.pdf?signature=x", "pay_url": None}
MSG = Message(key="key-1", to="C123", subject="s", text="Invoice *ACME-001001* issued", tenant="acme", data=DATA)


def test_blocks_show_customer_job_total_due_and_links():
    blocks = transform.blocks(MSG)
    assert [b["type"] for b in blocks] == ["header", "section", "actions", "context"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "Invoice ACME-001001 issued"}
    assert [f["text"] for f in blocks[1]["fields"]] == [
        "*Customer*\nBob &lt;b&gt; &amp; Co", "*Job*\n1001", "*Total*\n$251.10", "*Due*\nDec 2, 2026"]
    assert blocks[2]["elements"] == [{"type": "button", "text": {"type": "plain_text", "text": "View PDF"},
                                      "url": DATA["pdf_url"], "action_id": "invoicer_pdf_url"}]


def test_post_message_carries_our_key_in_metadata():
    body = transform.post_message(MSG, "C123")
    assert body["channel"] == "C123" and body["text"] == MSG.text and body["unfurl_links"] is False
    assert body["metadata"] == {"event_type": "invoicer_invoice",
                                "event_payload": {"delivery": "key-1", "tenant": "acme", "invoice": "ACME-001001"}}
    assert transform.is_ours({"metadata": body["metadata"]}, "key-1")
    assert not transform.is_ours({"metadata": body["metadata"]}, "key-2") and not transform.is_ours({}, "key-1")
    assert "metadata" not in transform.webhook_message(MSG) and "channel" not in transform.webhook_message(MSG)


def test_long_texts_are_cut_to_slacks_limits():
    long = Message(key="k", to="C", subject="", text="x" * 5000, data={**DATA, "number": "N" * 200})
    blocks = transform.blocks(long)
    assert len(blocks[0]["text"]["text"]) == 150 and len(blocks[1]["text"]["text"]) == 3000


@pytest.mark.parametrize("code, error", [
    ("ratelimited", RateLimited), ("invalid_auth", AuthFailed), ("not_authed", AuthFailed),
    ("missing_scope", AuthFailed), ("channel_not_found", Rejected), ("not_in_channel", Rejected),
    ("invalid_blocks", Rejected), ("internal_error", Unavailable), ("something_new", Rejected)])
def test_ok_false_errors_are_typed(code, error):
    exc = transform.api_error({"ok": False, "error": code}, retry_after=3)
    assert type(exc) is error and code in str(exc)
