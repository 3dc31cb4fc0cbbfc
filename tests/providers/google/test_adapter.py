"""Gmail and Drive over real HTTP against the simulator: delegated auth, sends, look-ups, uploads, errors."""
from __future__ import annotations

from datetime import date

import pytest

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.providers.base import Message
from invoicer.providers.google.adapter import Drive, Gmail

from ...conftest import free_port

MSG = Message(key="acme-hvac-J-1-1-email-customer-abc", to="huong@example.com", subject="Invoice INV-1",
              text="Hello\n", html="<p>Hello</p>", attachment=("INV-1.pdf", b"%PDF-1.7 test"), tenant="acme-hvac")
DOC = {"number": "INV-000001", "tenant": "acme-hvac", "customer": {"name": "Nguyễn Thị Hương"},
       "job": {"number": "1001"}, "issued_on": date(2026, 11, 2),
       "pdf": {"filename": "INV-000001.pdf", "data": b"%PDF-1.7 the invoice", "link": None, "sha256": "x"}}


class Reserving:
    """The part of the pipeline's Ctx that Drive uses: a value kept per delivery across attempts."""

    def __init__(self):
        self.kept: dict = {}

    def reserve(self, name, make=None):
        if name not in self.kept and make is not None:
            self.kept[name] = make()
        return self.kept.get(name)


def test_gmail_sends_the_mime_message_as_the_delegated_user(sim):
    sent = Gmail(sim.channel(sim.url), None).send_email(MSG)
    [message] = sim.messages.values()
    assert sent.external_id == message["id"] and message["user"] == sim.user and message["to"] == ["huong@example.com"]
    mail = message["mail"]
    assert mail["Message-ID"] == "<acme-hvac-J-1-1-email-customer-abc@acme.example>"
    assert sent.detail["message_id"] == mail["Message-ID"]
    assert mail["X-Invoicer-Delivery"] == MSG.key and mail["From"] == f"Acme Billing <{sim.user}>"
    [pdf] = [p for p in mail.iter_attachments()]
    assert pdf.get_content_type() == "application/pdf" and pdf.get_content() == b"%PDF-1.7 test"
    send = [r for r in sim.received if r.path.endswith("/messages/send")][0]
    assert send.query["uploadType"] == ["media"] and send.headers["content-type"] == "message/rfc822"
    assert sim.token_calls == 1


def test_gmail_finds_a_message_by_its_message_id(sim):
    gmail = Gmail(sim.channel(sim.url), None)
    assert gmail.find_message(MSG, "email") is None
    sent = gmail.send_email(MSG)
    found = gmail.find_message(MSG, "email")
    assert found.external_id == sent.external_id
    listed = [r for r in sim.received if r.method == "GET" and r.path.endswith("/messages")][-1]
    assert listed.query["q"] == ["rfc822msgid:acme-hvac-J-1-1-email-customer-abc@acme.example"]


def test_a_refused_token_is_fetched_again_once(sim):
    gmail = Gmail(sim.channel(sim.url), None)
    gmail.send_email(MSG)
    sim.expire_tokens()
    gmail.send_email(MSG)
    assert sim.token_calls == 2 and len(sim.messages) == 2


def test_delegation_and_key_problems_are_auth_failures(sim, monkeypatch):
    with pytest.raises(AuthFailed, match="Invalid email or User ID"):
        Gmail(sim.channel(sim.url, user="someone@other.example"), None).send_email(MSG)
    sim.delegated.discard("https://www.googleapis.com/auth/gmail.send")
    with pytest.raises(AuthFailed, match="unauthorized_client"):
        Gmail(sim.channel(sim.url), None).send_email(MSG)
    monkeypatch.setenv("INVOICER_SANDBOX_GOOGLE_KEY", '{"client_email": "x@y"}')
    with pytest.raises(AuthFailed, match="private_key"):
        Gmail(sim.channel(sim.url), None).send_email(MSG)
    assert sim.messages == {}


def test_google_errors_are_typed(sim):
    gmail = Gmail(sim.channel(sim.url), None)
    with pytest.raises(Rejected, match="cannot be built"):
        gmail.send_email(Message(key="k", to="nobody", subject="s", text="t"))
    with pytest.raises(Rejected, match="Invalid To header.*invalidArgument"):  # Gmail's own 400
        Gmail(sim.channel(sim.url), None)._call("POST", "/gmail/v1/users/me/messages/send", what="messages.send",
                                                json={"raw": "RnJvbTogYUBiLmMKCmhp"})
    sim.inject("429")
    with pytest.raises(RateLimited, match="rateLimitExceeded"):
        gmail.send_email(MSG)
    sim.limit_status = 403  # Gmail's older answer to a user over its rate: a 403, still a rate limit
    sim.inject("429")
    with pytest.raises(RateLimited, match="userRateLimitExceeded"):
        gmail.send_email(MSG)
    sim.inject("500")
    with pytest.raises(OutcomeUnknown, match="may have been sent"):  # Gmail may have taken it: search first
        gmail.send_email(MSG)
    assert sim.messages == {}
    with pytest.raises(Unavailable) as refused:
        Gmail(sim.channel(f"http://127.0.0.1:{free_port()}"), None).send_email(MSG)
    assert not isinstance(refused.value, OutcomeUnknown)  # nothing reached Gmail


def test_gmail_quota_is_spent_in_units_through_the_shared_limiter(sim):
    """A user allowed 400 units a minute: two sends go at once (200 units of burst), the third would
    wait about half a minute, so the limiter throttles it before Gmail is asked (max_wait 20 s)."""
    from invoicer.providers.ratelimit import Throttled

    gmail = Gmail(sim.channel(sim.url, quota_per_minute=400), None)
    gmail.send_email(MSG)
    gmail.send_email(MSG)
    with pytest.raises(Throttled):
        gmail.send_email(MSG)
    assert len(sim.messages) == 2


def test_drive_files_the_pdf_under_a_reserved_id_and_shares_it(sim):
    ctx = Reserving()
    created = Drive(sim.platform(sim.url, share="anyone"), ctx).create_invoice(DOC, "key-1")
    [(file_id, file)] = sim.files.items()
    assert created.external_id == file_id == ctx.kept["drive_file_id"]
    assert sim.generated[file_id] == sim.user and file["parents"] == [sim.folder]
    assert file["name"] == "INV-000001.pdf" and file["mimeType"] == "application/pdf"
    assert file["appProperties"] == {"invoicer_key": "key-1", "invoicer_invoice": "INV-000001"}
    assert sim.media[file_id] == b"%PDF-1.7 the invoice"
    assert created.url == file["webViewLink"] and created.detail["shared"] == "anyone"
    assert sim.permissions[file_id]["anyoneWithLink"]["role"] == "reader"


def test_drive_retry_after_a_lost_answer_makes_no_second_file(sim):
    ctx = Reserving()
    drive = Drive(sim.platform(sim.url), ctx)
    sim.fault_on("POST", "/upload/drive/v3/files", "drop")
    with pytest.raises(Exception):
        drive.create_invoice(DOC, "key-1")
    assert len(sim.files) == 1
    found = drive.find_invoice(DOC, "key-1")  # what the pipeline does first on a retry
    assert found.external_id == ctx.kept["drive_file_id"] and found.detail["found_existing"]
    again = drive.create_invoice(DOC, "key-1")  # and a create that runs anyway meets Drive's 409
    assert again.external_id == found.external_id and again.detail["found_existing"]
    assert len(sim.files) == 1
    assert [r.path for r in sim.received].count("/drive/v3/files/generateIds") == 1


def test_drive_errors(sim):
    with pytest.raises(Rejected, match="File not found"):
        Drive(sim.platform(sim.url, folder_id="1NoSuchFolder"), Reserving()).create_invoice(DOC, "k")
    with pytest.raises(Rejected, match="no rendered PDF"):
        Drive(sim.platform(sim.url), Reserving()).create_invoice({**DOC, "pdf": None}, "k")
    assert sim.files == {}


def test_options_are_checked():
    assert Drive.check_options({"service_account_env": "K", "user": "a@b.c", "link_in_messages": True}, "d") == [
        "platforms.d.link_in_messages: the customer cannot open an unshared file; set share"]
    assert Drive.check_options({"service_account_env": "K", "user": "a@b.c", "name": "{nope}.pdf"}, "d")
    assert Gmail.check_options({}, "channels.email") == [
        "channels.email.service_account_env: name the environment variable with the service account key",
        "channels.email.user: the Workspace user to act as (an email address) is not set"]
