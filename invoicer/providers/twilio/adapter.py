"""Twilio Programmable Messaging through the official `twilio` library: SMS with the invoice link.

The library's HTTP client is replaced by one (`_Http`) that sends to the configured base URL through
invoicer's pooled session, so Twilio's answers become our typed errors (429 / 20429 -> RateLimited,
401 -> AuthFailed, 400 21211 invalid To -> Rejected, a timeout after sending -> OutcomeUnknown).

Channel options (tenants file, `channels.sms: {provider: twilio, ...}`):
  account_sid             the account (AC...) (required)
  auth_token_env          environment variable with the auth token (Basic auth, and it signs StatusCallbacks)
  api_key_env, api_secret_env  optional: authenticate with an API key (SK...) instead; the auth token is
                          still needed to verify StatusCallbacks
  from                    the sending number (E.164), short code or alphanumeric sender id, or
  messaging_service_sid   a Messaging Service (MG...) that picks the sender
  status_callback         URL Twilio posts status changes to (default
                          {INVOICER_PUBLIC_URL}/v1/webhooks/twilio/{tenant})
  base_url                API root (default https://api.twilio.com; tests point it at the simulator)
  per_second              optional cap on creates per second for this account (all workers)

Sent once: Twilio has no idempotency key. After an unknown outcome, `find_message` lists the messages
to that number (newest first) and matches the exact text (which names the invoice and is the same on
every attempt); only when none matches is the SMS sent again.
"""
from __future__ import annotations

import os
from contextlib import nullcontext

from twilio.base.exceptions import TwilioException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from invoicer.config import settings
from invoicer.errors import AuthFailed, MappingMissing, Rejected
from invoicer.providers import http
from invoicer.providers.base import Message, Provider, Sent, WebhookEvent
from invoicer.providers.ratelimit import Rate
from invoicer.providers.registry import register
from invoicer.providers.twilio import transform, webhooks

SLUG = "twilio"
DEFAULT_BASE = "https://api.twilio.com"
LOOKBACK = 50  # messages to one number searched after an unknown outcome


_message = http.json_message(transform.error_text)


class _Http(HttpClient):
    """The twilio library's transport: its requests go to `base` through invoicer.providers.http."""

    def __init__(self, base: str):
        super().__init__(logger=None, is_async=False, timeout=None)
        self.base = base

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False) -> Response:
        for prefix in (DEFAULT_BASE, "https://api.us1.twilio.com"):
            if url.startswith(prefix):
                url = self.base + url[len(prefix):]
        resp = http.call(method, url, slug=SLUG, message=_message, params=params, data=data, headers=headers,
                         auth=auth, allow_redirects=allow_redirects)
        return Response(resp.status_code, resp.text, resp.headers)


@register
class Twilio(Provider):
    slug = SLUG
    capabilities = frozenset({"send_sms", "find_message", "parse_webhook"})

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        if not options.get("account_sid"):
            problems.append(f"{name}.account_sid: the Twilio account SID is not set")
        if not options.get("auth_token_env") and not options.get("api_key_env"):
            problems.append(f"{name}.auth_token_env: name the environment variable with the auth token")
        if not options.get("from") and not options.get("messaging_service_sid"):
            problems.append(f"{name}.from: the sending number (or messaging_service_sid) is not set")
        return problems

    def _client(self) -> Client:
        sid = self.options.get("account_sid")
        if not sid:
            raise MappingMissing("twilio: channel option account_sid is not set")
        if self.options.get("api_key_env"):
            user, password = self.env_secret("api_key_env", "API key SID"), self.env_secret("api_secret_env", "API secret")
        else:
            user, password = sid, self.env_secret("auth_token_env", "auth token")
        return Client(user, password, account_sid=sid,
                      http_client=_Http(http.base_url(SLUG, self.options, DEFAULT_BASE)))

    def _slot(self):
        per_second = self.options.get("per_second")
        if not per_second or self.ctx is None:
            return nullcontext()
        return self.ctx.limiter.slot(f"{SLUG}:{self.options['account_sid']}", [Rate(int(per_second), 1)])

    def status_callback(self, tenant: str) -> str:
        return self.options.get("status_callback") or f"{settings().public_url.rstrip('/')}/v1/webhooks/twilio/{tenant}"

    def send_sms(self, message: Message) -> Sent:
        client = self._client()
        params = transform.create_params(message, self.options, self.status_callback(message.tenant))
        with self._slot():
            try:
                created = client.messages.create(**params)
            except TwilioException as exc:  # the library's own refusals (bad arguments), not HTTP errors
                raise Rejected(f"twilio: {exc}") from exc
        resource = {"status": created.status, "num_segments": created.num_segments}
        return Sent(external_id=created.sid, detail=transform.sent_detail(resource, message))

    def find_message(self, message: Message, kind: str) -> Sent | None:
        client = self._client()
        sender = transform.sender(self.options)
        filters = {"to": message.to, "limit": LOOKBACK, "page_size": LOOKBACK}
        if "from_" in sender:
            filters["from_"] = sender["from_"]
        for m in client.messages.list(**filters):
            resource = {"to": m.to, "body": m.body, "direction": m.direction, "status": m.status,
                        "num_segments": m.num_segments}
            if transform.same_message(resource, message):
                return Sent(external_id=m.sid, detail=transform.sent_detail(resource, message))
        return None

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        token = os.environ.get(self.options.get("auth_token_env") or "", "").strip()
        if not token:
            raise AuthFailed("twilio webhook: the auth token (auth_token_env) is not available")
        # the URL Twilio signed is the one we gave it; behind a proxy the request's own URL may differ
        path = url.split("://", 1)[-1].partition("/")[2]
        urls = [url, self.options.get("status_callback"), f"{settings().public_url.rstrip('/')}/{path}"]
        return webhooks.parse(headers, body, urls, token)
