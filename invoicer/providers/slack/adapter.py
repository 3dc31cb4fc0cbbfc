"""Slack: a Block Kit message to the finance channel per invoice, by bot token or incoming webhook.

Channel options (tenants file, `channels.slack: {provider: slack, ...}`):
  token_env        environment variable with the bot token (xoxb-..., scopes chat:write and, for the
                   look-up after an unknown outcome, channels:history / groups:history)
  channel          the channel id (C...) the bot is a member of
  webhook_url_env  instead of a bot: environment variable with an incoming webhook URL (a secret)
  base_url         Web API root (default https://slack.com; tests point it at the simulator)

chat.postMessage allows about one message per second per channel: the shared limiter holds us to that;
a 429 is retried after its Retry-After. Web API errors come as HTTP 200 `{"ok": false, "error": ...}`
and become typed errors (transform.api_error). Sent once: every message carries our delivery key in
its metadata; after an unknown outcome conversations.history (with include_all_metadata) is read and
a message with our key is taken as sent. An incoming webhook cannot be read back: there an unknown
outcome waits for review instead of posting twice.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext

from invoicer.errors import MappingMissing
from invoicer.providers import http
from invoicer.providers.base import Message, Provider, Sent
from invoicer.providers.ratelimit import Rate
from invoicer.providers.registry import register
from invoicer.providers.slack import transform

SLUG = "slack"
DEFAULT_BASE = "https://slack.com"
HISTORY = 100  # messages read back after an unknown outcome


@register
class Slack(Provider):
    slug = SLUG
    capabilities = frozenset({"send_chat", "find_message"})

    def __init__(self, options=None, ctx=None):
        super().__init__(options, ctx)
        if self.options.get("webhook_url_env") and not self.options.get("token_env"):
            self.capabilities = frozenset({"send_chat"})  # a webhook cannot be read back

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        if options.get("webhook_url_env"):
            return []
        problems = []
        if not options.get("token_env"):
            problems.append(f"{name}.token_env: name the variable with the bot token (or give webhook_url_env)")
        if not options.get("channel"):
            problems.append(f"{name}.channel: the finance channel id is not set")
        return problems

    def _api(self, method: str, verb: str = "POST", **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self.env_secret('token_env', 'the bot token')}"}
        url = f"{http.base_url(SLUG, self.options, DEFAULT_BASE)}/api/{method}"
        resp = http.call(verb, url, slug=SLUG, headers=headers, **kwargs)
        body = resp.json()
        if not body.get("ok"):
            raise transform.api_error(body, http.retry_after(resp))
        return body

    def _slot(self, channel: str):
        if self.ctx is None:
            return nullcontext()
        return self.ctx.limiter.slot(f"{SLUG}:{channel}", [Rate(1, 1)])

    def send_chat(self, message: Message) -> Sent:
        if "find_message" not in self.capabilities:
            url = self.env_secret("webhook_url_env", "the incoming webhook URL")
            with self._slot("webhook-" + hashlib.sha256(url.encode()).hexdigest()[:16]):  # never the URL itself
                http.call("POST", url, slug=SLUG, json=transform.webhook_message(message))
            return Sent(external_id=message.key, detail={"status": "sent", "via": "webhook"})
        channel = str(self.options.get("channel") or "")
        if not channel:
            raise MappingMissing("slack: channel option `channel` is not set")
        with self._slot(channel):
            body = self._api("chat.postMessage", json=transform.post_message(message, channel))
        return Sent(external_id=body["ts"], detail={"status": "sent", "channel": body.get("channel")})

    def find_message(self, message: Message, kind: str) -> Sent | None:
        channel = str(self.options.get("channel") or "")
        body = self._api("conversations.history", "GET", params={
            "channel": channel, "limit": HISTORY, "include_all_metadata": "true"})
        for listed in body.get("messages") or []:
            if transform.is_ours(listed, message.key):
                return Sent(external_id=listed["ts"], detail={"status": "sent", "channel": channel})
        return None
