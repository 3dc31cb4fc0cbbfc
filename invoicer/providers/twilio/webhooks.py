"""Twilio StatusCallback: verify `X-Twilio-Signature` and normalise the message status.

Scheme (https://www.twilio.com/docs/usage/webhooks/webhooks-security, and the twilio package's
RequestValidator, which we use): base64 HMAC-SHA1, keyed with the account's auth token, of the full
callback URL followed by every POST parameter name and value sorted by name. There is no timestamp,
so a replayed callback cannot be told by age: status changes are idempotent and only move forward.
"""
from __future__ import annotations

from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers.base import WebhookEvent
from invoicer.providers.twilio.transform import STATUS


def _header(headers: dict, name: str) -> str | None:
    return next((v for k, v in (headers or {}).items() if k.lower() == name.lower()), None)


def parse(headers: dict, body: bytes, urls: list[str], auth_token: str) -> list[WebhookEvent]:
    signature = _header(headers, "X-Twilio-Signature")
    if not signature:
        raise AuthFailed("twilio webhook: no X-Twilio-Signature header")
    try:
        params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise AuthFailed("twilio webhook: the body is not form data") from None
    validator = RequestValidator(auth_token)
    if not any(validator.validate(url, params, signature) for url in urls if url):
        raise AuthFailed("twilio webhook: the signature does not match")
    sid, status = params.get("MessageSid") or params.get("SmsSid"), params.get("MessageStatus") or params.get("SmsStatus")
    if not sid or not status:
        raise Rejected("twilio webhook: no MessageSid or MessageStatus")
    ours = STATUS.get(status)
    raw = {k: v for k, v in params.items() if k in ("MessageSid", "MessageStatus", "ErrorCode", "AccountSid")}
    if params.get("ErrorCode"):
        raw["reason"] = f"Twilio error {params['ErrorCode']}"
    return [WebhookEvent(type=f"message.{ours}" if ours else "other", external_id=sid, raw=raw)]
