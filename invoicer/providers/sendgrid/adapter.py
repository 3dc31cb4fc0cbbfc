"""Twilio SendGrid v3 Mail Send through the official `sendgrid` library (pointed at `base_url`).

Channel options (tenants file, `channels.email: {provider: sendgrid, ...}`):
  api_key_env          environment variable holding the API key (Mail Send permission) (required)
  from                 the verified sender, "Name <address>" (required)
  reply_to             optional
  ip_pool_name         optional
  webhook_public_key   the Event Webhook verification key (base64 DER, from the signed-webhook settings;
                       public, not a secret), or webhook_public_key_env naming a variable with it
  webhook_tolerance    seconds a signed event's timestamp may be from now (default 600)
  base_url             API root (default https://api.sendgrid.com; EU: https://api.eu.sendgrid.com)
  timeout              seconds (default 30)

Sent once: SendGrid has no idempotency key and no look-up on the Mail Send API (the Email Activity
API is a paid add-on, not used). After an unknown outcome the delivery is not sent again: it waits in
`review`, and the first signed event SendGrid sends for it (found by our `invoicer_delivery` custom
arg) settles it as sent; a person checks the rest (docs/notifications.md).
"""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
from http.client import HTTPException

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.providers.base import Message, Provider, Sent, WebhookEvent
from invoicer.providers import http
from invoicer.providers.registry import register
from invoicer.providers.sendgrid import transform, webhooks

SLUG = "sendgrid"
DEFAULT_BASE = "https://api.sendgrid.com"


def _typed(exc: HTTPError):
    status = exc.status_code
    try:
        text = transform.error_text(json.loads(exc.body or b"null"))
    except ValueError:
        text = (exc.body or b"")[:300].decode(errors="replace")
    detail = f"sendgrid answered {status}: {text}"
    headers = exc.headers or {}
    if status == 429:
        reset = headers.get("X-RateLimit-Reset")
        after = max(0.0, float(reset) - time.time()) if reset and reset.isdigit() else None
        return RateLimited(detail, retry_after=after, status=status)
    if status in (401, 403):
        return AuthFailed(detail, status=status)
    if status in (408, 409) or status >= 500:
        return Unavailable(detail, status=status)
    return Rejected(detail, status=status)


@register
class SendGrid(Provider):
    slug = SLUG
    capabilities = frozenset({"send_email", "parse_webhook"})
    resend_after_unknown = False  # no look-up: an unknown outcome waits for its event or a person

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        if not options.get("api_key_env"):
            problems.append(f"{name}.api_key_env: name the environment variable with the API key")
        if "@" not in str(options.get("from") or ""):
            problems.append(f"{name}.from: the verified sender address is not set")
        return problems

    def _client(self) -> SendGridAPIClient:
        key = self.env_secret("api_key_env", "the API key")
        client = SendGridAPIClient(api_key=key, host=http.base_url(SLUG, self.options, DEFAULT_BASE))
        client.client.timeout = float(self.options.get("timeout", http.READ_TIMEOUT))
        return client

    def send_email(self, message: Message) -> Sent:
        body = transform.mail_body(message, self.options)
        client = self._client()
        try:
            resp = client.send(body)
        except HTTPError as exc:
            raise _typed(exc) from exc
        except urllib.error.URLError as exc:  # nothing was sent: refused, unresolvable, connect timeout
            raise Unavailable(f"sendgrid: cannot connect ({type(exc.reason).__name__})") from exc
        except (socket.timeout, ConnectionError, HTTPException) as exc:  # lost after sending
            raise OutcomeUnknown(f"sendgrid: no answer after sending ({type(exc).__name__})") from exc
        message_id = resp.headers.get("X-Message-Id") if resp.headers else None
        return Sent(external_id=message_id or message.key, detail={"status": "sent", "sendgrid_status": resp.status_code})

    def _public_key(self) -> str:
        key = self.options.get("webhook_public_key") or os.environ.get(self.options.get("webhook_public_key_env") or "")
        if not key:
            raise AuthFailed("sendgrid webhook: no webhook_public_key configured")
        return str(key).strip()

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        tolerance = int(self.options.get("webhook_tolerance", webhooks.TOLERANCE))
        return webhooks.parse(headers, body, self._public_key(), tolerance=tolerance)
