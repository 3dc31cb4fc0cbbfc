"""A small, faithful stand-in of SendGrid v3 Mail Send and its signed Event Webhook.

Follows https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send, the Event Webhook
reference and security pages, and the spec in ../shared/vendor-specs/sendgrid/:
- `Authorization: Bearer <key>`; else 401 with SendGrid's body;
- POST /v3/mail/send validated as SendGrid does for what we use: personalizations (1..1000, each with
  `to`), from.email, subject, content (text/plain first, non-empty values), attachments (base64
  content, filename), categories (<= 10, unique, <= 255 chars), custom_args (string values,
  <= 10,000 bytes); errors as 400 {"errors": [{"message", "field", "help"}]}; success is 202 with
  an empty body and `X-Message-Id`;
- 429 as a fault, with SendGrid's body and X-RateLimit-Limit/Remaining/Reset headers;
- `events(message_id, "processed", "delivered", ...)` makes the signed Event Webhook post SendGrid
  would send (ECDSA P-256 over timestamp + body), with our custom args echoed on every event.
"""
from __future__ import annotations

import base64
import binascii
import json
import secrets
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from invoicer.providers.simulate import Reply, Request, Simulator


def _errors(*items: tuple[str, str | None]) -> Reply:
    return Reply(400, {"errors": [{"message": m, "field": f, "help": None} for m, f in items]})


class SendGridSimulator(Simulator):
    def __init__(self):
        super().__init__()
        self.api_key = "SG." + secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(32)
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.public_key = base64.b64encode(self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
        self.messages: dict[str, dict] = {}

    def rate_limited(self, request: Request) -> Reply:
        return Reply(429, {"errors": [{"field": None, "message": "too many requests"}]},
                     {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset": str(int(time.time()) + 1)})

    def _validate(self, body) -> list[tuple[str, str | None]]:
        if not isinstance(body, dict):
            return [("Bad Request", None)]
        problems = []
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
            problems.append(("The personalizations field is required and must have at least one personalization.",
                             "personalizations"))
        else:
            for i, p in enumerate(personalizations):
                if not (p.get("to") and all("@" in str(t.get("email", "")) for t in p["to"])):
                    problems.append(("The to array is required for all personalization objects, and must have at "
                                     "least one email object with a valid email address.",
                                     f"personalizations.{i}.to"))
                custom = p.get("custom_args") or {}
                if not all(isinstance(v, str) for v in custom.values()):
                    problems.append(("Custom args values must be strings.", f"personalizations.{i}.custom_args"))
                if len(json.dumps(custom).encode()) > 10000:
                    problems.append(("Custom args may not exceed 10,000 bytes.", f"personalizations.{i}.custom_args"))
        if "@" not in str((body.get("from") or {}).get("email", "")):
            problems.append(("The from object must be provided for every email send.", "from"))
        if not body.get("subject") and not body.get("template_id") and not all(
                p.get("subject") for p in personalizations or []):
            problems.append(("The subject is required.", "subject"))
        content = body.get("content")
        if not body.get("template_id"):
            if not content or not all(c.get("type") and c.get("value") for c in content):
                problems.append(("Unless a valid template_id is provided, the content parameter is required and "
                                 "each content value must be at least one character.", "content"))
            elif content[0]["type"] != "text/plain" and any(c["type"] == "text/plain" for c in content):
                problems.append(("If present, text/plain content must be first.", "content"))
        for i, a in enumerate(body.get("attachments") or []):
            try:
                base64.b64decode(a.get("content", ""), validate=True)
            except (binascii.Error, ValueError):
                problems.append(("The attachment content must be base64 encoded.", f"attachments.{i}.content"))
            if not a.get("filename"):
                problems.append(("The attachment filename parameter is required.", f"attachments.{i}.filename"))
        categories = body.get("categories") or []
        if len(categories) > 10 or len(set(categories)) != len(categories) or any(len(c) > 255 for c in categories):
            problems.append(("Categories: at most 10, unique, each at most 255 characters.", "categories"))
        return problems

    def send(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"errors": [{"field": None, "message": "The provided authorization grant is invalid, "
                                                                       "expired, or revoked"}]})
        try:
            body = request.json()
        except ValueError:
            return _errors(("Bad Request", None))
        problems = self._validate(body)
        if problems:
            return _errors(*problems)
        message_id = secrets.token_urlsafe(16)[:22]
        with self.lock:
            self.messages[message_id] = body
        return Reply(202, b"", {"X-Message-Id": message_id, "Content-Type": "text/plain"})

    routes = [("POST", r"/v3/mail/send", send)]

    # ------------------------------------------------------------ test helpers

    def sign(self, body: bytes, timestamp: int | None = None) -> dict:
        t = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(t.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": t, "Content-Type": "application/json"}

    def events(self, message_id: str, *kinds: str, timestamp: int | None = None, **extra) -> tuple[bytes, dict]:
        """The Event Webhook post for one sent message: (body, signed headers)."""
        mail = self.messages[message_id]
        p = mail["personalizations"][0]
        out = []
        for kind in kinds:
            e = {"email": p["to"][0]["email"], "timestamp": int(time.time()), "event": kind,
                 "sg_event_id": secrets.token_urlsafe(16), "sg_message_id": f"{message_id}.filter0001.1.0",
                 "category": mail.get("categories", []), **p.get("custom_args", {}), **extra}
            if kind == "bounce":
                e.setdefault("type", "bounce")
                e.setdefault("reason", "550 5.1.1 The email account does not exist")
            out.append(e)
        body = json.dumps(out).encode()
        return body, self.sign(body, timestamp)

    def channel(self, url: str, **extra) -> dict:
        return {"provider": "sendgrid", "base_url": url, "api_key_env": "INVOICER_SANDBOX_SENDGRID_KEY",
                "from": "Acme Billing <billing@acme.example>", "webhook_public_key": self.public_key, **extra}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_SENDGRID_KEY": self.api_key}
