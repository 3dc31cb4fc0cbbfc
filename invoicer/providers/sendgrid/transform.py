"""Pure mapping for SendGrid v3 Mail Send (https://www.twilio.com/docs/sendgrid/api-reference/mail-send).

One personalization per message (one recipient), with our delivery key in its `custom_args`
(`invoicer_delivery`), which SendGrid echoes in every Event Webhook event. The message-level
`custom_args` is typed "string" in the published OpenAPI although the API takes an object
(../shared/vendor-specs/README.md), so we put ours in the personalization only. Categories group the
messages (`invoicer`, the message kind). The PDF is attached (base64, application/pdf) or only linked,
per tenant (`channels.pdf`).
"""
from __future__ import annotations

import base64
from email.utils import parseaddr

from invoicer.errors import MappingMissing
from invoicer.providers.base import Message

KEY_ARG = "invoicer_delivery"
# Event Webhook event -> our status (https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event)
EVENTS = {"processed": "sent", "deferred": "sent", "delivered": "delivered", "open": "delivered",
          "click": "delivered", "bounce": "bounced", "blocked": "bounced", "dropped": "failed"}


def _address(value: str) -> dict:
    name, email = parseaddr(value)
    return {"email": email, **({"name": name} if name else {})}


def sender(options: dict) -> dict:
    value = str(options.get("from") or "")
    if "@" not in parseaddr(value)[1]:
        raise MappingMissing("sendgrid: channel option `from` (a verified sender address) is not set")
    return _address(value)


def mail_body(message: Message, options: dict) -> dict:
    """The v3 Mail Send JSON body for one message."""
    custom = {KEY_ARG: message.key, "invoicer_tenant": message.tenant}
    if message.delivery_id is not None:
        custom["invoicer_delivery_id"] = str(message.delivery_id)  # custom_args values must be strings
    body = {
        "personalizations": [{"to": [{"email": message.to}], "custom_args": custom}],
        "from": sender(options),
        "subject": message.subject,
        "content": [{"type": "text/plain", "value": message.text}]
        + ([{"type": "text/html", "value": message.html}] if message.html else []),
        "categories": ["invoicer", str(message.data.get("kind") or "message")],
    }
    if options.get("reply_to"):
        body["reply_to"] = _address(str(options["reply_to"]))
    if message.attachment:
        name, data = message.attachment
        body["attachments"] = [{"content": base64.b64encode(data).decode(), "type": "application/pdf",
                                "filename": name, "disposition": "attachment"}]
    if options.get("ip_pool_name"):
        body["ip_pool_name"] = str(options["ip_pool_name"])
    return body


def error_text(body) -> str:
    """SendGrid's error body: {"errors": [{"message": ..., "field": ...}]}."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(f"{e.get('field') or ''}: {e.get('message')}".lstrip(": ") for e in body["errors"]
                         if isinstance(e, dict))[:300]
    return str(body)[:300]
