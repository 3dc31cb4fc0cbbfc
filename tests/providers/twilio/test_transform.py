"""Twilio mapping, pure."""
import pytest

from invoicer.errors import MappingMissing
from invoicer.providers.base import Message
from invoicer.providers.twilio import transform

MSG = Message(key="k", to="+14075550100", subject="", text="Acme: invoice ACME-1 for $251.10. Pay: https://p.example/1")


def test_create_params_carry_the_link_never_media():
    params = transform.create_params(MSG, {"from": "+14075550199"}, "https://invoicer.example/v1/webhooks/twilio/acme")
    assert params == {"to": "+14075550100", "body": MSG.text, "from_": "+14075550199",
                      "status_callback": "https://invoicer.example/v1/webhooks/twilio/acme"}
    assert "media_url" not in params


def test_a_messaging_service_instead_of_a_number():
    assert transform.sender({"messaging_service_sid": "MG1", "from": "+1"}) == {"messaging_service_sid": "MG1"}
    with pytest.raises(MappingMissing):
        transform.sender({})


def test_statuses_map_to_ours():
    assert [transform.STATUS[s] for s in ("queued", "sending", "sent", "delivered", "undelivered", "failed")] == [
        "queued", "queued", "sent", "delivered", "bounced", "failed"]


def test_our_message_is_recognised_by_number_and_exact_text():
    mine = {"to": MSG.to, "body": MSG.text, "direction": "outbound-api"}
    assert transform.same_message(mine, MSG)
    assert not transform.same_message({**mine, "body": MSG.text + " "}, MSG)
    assert not transform.same_message({**mine, "to": "+14075550101"}, MSG)
    assert not transform.same_message({**mine, "direction": "inbound"}, MSG)


def test_segments_in_the_detail_prefer_twilios_count():
    assert transform.sent_detail({"status": "queued", "num_segments": "2"}, MSG)["segments"] == 2
    assert transform.sent_detail({"status": "accepted", "num_segments": "0"}, MSG)["segments"] == 1  # a service
    assert transform.sent_detail({"status": "queued"}, MSG) == {
        "status": "queued", "twilio_status": "queued", "segments": 1, "encoding": "GSM-7"}


def test_error_text():
    assert transform.error_text({"code": 21211, "message": "The 'To' number is not valid", "status": 400}) == \
        "21211 The 'To' number is not valid"
