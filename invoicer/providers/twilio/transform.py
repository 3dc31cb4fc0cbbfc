"""Pure mapping for Twilio Programmable Messaging (no I/O).

Request: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form fields `To`, `From` (or
`MessagingServiceSid`), `Body`, `StatusCallback` (https://www.twilio.com/docs/messaging/api/message-resource).
Never `MediaUrl`: the invoice goes as a link in the text, never as an MMS attachment.
Statuses (message_enum_status in the spec) -> ours: queued/accepted/scheduled/sending -> queued,
sent -> sent, delivered/read -> delivered, undelivered -> bounced (the carrier or handset did not
take it), failed/canceled -> failed.
"""
from __future__ import annotations

from invoicer import notify
from invoicer.errors import MappingMissing
from invoicer.providers.base import Message

STATUS = {"queued": "queued", "accepted": "queued", "scheduled": "queued", "sending": "queued", "sent": "sent",
          "delivered": "delivered", "read": "delivered", "undelivered": "bounced", "failed": "failed",
          "canceled": "failed"}


def sender(options: dict) -> dict:
    """`from_` (an E.164 number, short code or alphanumeric id) or a Messaging Service."""
    if options.get("messaging_service_sid"):
        return {"messaging_service_sid": str(options["messaging_service_sid"])}
    if options.get("from"):
        return {"from_": str(options["from"])}
    raise MappingMissing("twilio: channel option `from` (or `messaging_service_sid`) is not set")


def create_params(message: Message, options: dict, status_callback: str | None) -> dict:
    """Keyword arguments for `client.messages.create` (the library turns them into the form fields)."""
    params = {"to": message.to, "body": message.text, **sender(options)}
    if status_callback:
        params["status_callback"] = status_callback
    return params


def segments_of(message: Message) -> dict:
    return notify.segments(message.text)


def sent_detail(resource: dict, message: Message) -> dict:
    """What we keep of Twilio's answer (no phone numbers, no body)."""
    ours = segments_of(message)
    return {"status": STATUS.get(resource.get("status") or "", "queued"), "twilio_status": resource.get("status"),
            # Twilio answers num_segments "0" when a Messaging Service sends: then our own count
            "segments": int(resource.get("num_segments") or 0) or ours["segments"], "encoding": ours["encoding"]}


def same_message(resource: dict, message: Message) -> bool:
    """Is this listed message ours? (Twilio keeps no metadata: the number and the exact text, which names
    the invoice, must match; a text is the same on every attempt of a delivery.)"""
    return resource.get("to") == message.to and (resource.get("body") or "") == message.text \
        and resource.get("direction", "outbound-api") == "outbound-api"


def error_text(body, fallback: str = "") -> str:
    """Twilio's error body: {"code": 21211, "message": "...", "more_info": "...", "status": 400}; `fallback`
    (the raw text) when there is no JSON body."""
    if isinstance(body, dict) and "code" in body:
        return f"{body.get('code')} {body.get('message', '')}".strip()
    return fallback[:300] if body is None else str(body)[:300]
