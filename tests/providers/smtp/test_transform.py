"""Our Message -> MIME, pure."""
import pytest

from invoicer.errors import MappingMissing
from invoicer.providers.base import Message
from invoicer.providers.smtp import transform

MSG = Message(key="k" * 64, to="huong@example.com", subject="Invoice ACME-1", text="Hello\n", html="<p>Hello</p>",
              attachment=("ACME-1.pdf", b"%PDF-1.7 test"), tenant="acme")


def test_message_id_is_derived_from_the_delivery_key_and_stable():
    a = transform.to_mime(MSG, {"from": "Acme <billing@acme.example>"}, now=0)
    b = transform.to_mime(MSG, {"from": "Acme <billing@acme.example>"}, now=100)
    assert a["Message-ID"] == b["Message-ID"] == f"<{'k' * 64}@acme.example>"
    assert a[transform.DELIVERY_HEADER] == "k" * 64
    own = transform.to_mime(MSG, {"from": "billing@acme.example", "message_id_domain": "mail.invoicer.example"})
    assert own["Message-ID"] == f"<{'k' * 64}@mail.invoicer.example>"


def test_text_html_and_the_pdf():
    mail = transform.to_mime(MSG, {"from": "Acme <billing@acme.example>", "reply_to": "office@acme.example"})
    assert [p.get_content_type() for p in mail.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == "ACME-1.pdf" and pdf.get_content() == b"%PDF-1.7 test"
    assert mail["Reply-To"] == "office@acme.example" and mail["To"] == "huong@example.com"


def test_plain_only_without_html_or_attachment():
    mail = transform.to_mime(Message(key="k", to="a@example.com", subject="s", text="t\n"), {"from": "b@acme.example"})
    assert mail.get_content_type() == "text/plain" and mail.get_content() == "t\n"


def test_a_sender_is_required():
    with pytest.raises(MappingMissing, match="from"):
        transform.to_mime(MSG, {})
