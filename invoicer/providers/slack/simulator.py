"""A small, faithful stand-in of the Slack Web API methods we use and of an incoming webhook.

Follows https://docs.slack.dev/reference/methods/chat.postMessage, /conversations.history,
/messaging/sending-messages-using-incoming-webhooks, /apis/web-api/rate-limits and the specs in
../shared/vendor-specs/slack/ (argument names, error codes):
- `Authorization: Bearer xoxb-...`; errors as HTTP 200 {"ok": false, "error": "..."} (not_authed,
  invalid_auth, channel_not_found, not_in_channel, no_text, invalid_blocks, invalid_metadata_format);
- chat.postMessage (JSON or form): checks the blocks we send (header/section/actions/context, text
  lengths, button URLs) and the metadata shape; answers {"ok", "channel", "ts", "message"};
- conversations.history: newest first, `limit`, `oldest`; metadata only with include_all_metadata;
- incoming webhook POST /services/T.../B.../...: "ok" as text, or 400 invalid_payload / 404 no_service;
- 429 with Retry-After and {"ok": false, "error": "ratelimited"} as a fault; `fail_with(error)`
  queues an ok:false answer for the next call.
"""
from __future__ import annotations

import itertools
import json
import secrets
import time
from collections import deque
from urllib.parse import parse_qs

from invoicer.providers.simulate import Reply, Request, Simulator

BLOCK_TYPES = {"header", "section", "actions", "context", "divider"}


def _err(code: str) -> Reply:
    return Reply(200, {"ok": False, "error": code})


class SlackSimulator(Simulator):
    def __init__(self):
        super().__init__()
        self.token = "xoxb-" + secrets.token_hex(12)
        self.channel_id = "C" + secrets.token_hex(5).upper()
        self.webhook_path = f"/services/T{secrets.token_hex(4).upper()}/B{secrets.token_hex(4).upper()}/" \
                            f"{secrets.token_urlsafe(18)}"
        self.channels: dict[str, list[dict]] = {self.channel_id: []}
        self.member_of = {self.channel_id}
        self.webhook_posts: list[dict] = []
        self.errors: deque[str] = deque()
        self._ts = itertools.count(1)

    def rate_limited(self, request: Request) -> Reply:
        return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})

    def fail_with(self, *errors: str) -> None:
        self.errors.extend(errors)

    def _args(self, request: Request) -> dict:
        ctype = request.headers.get("content-type", "")
        if request.method == "GET":
            return {k: v[-1] for k, v in request.query.items()}
        if ctype.startswith("application/json"):
            return request.json() or {}
        form = {k: v[-1] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        for name in ("blocks", "metadata"):
            if name in form:
                form[name] = json.loads(form[name])
        return form

    def _guard(self, request: Request) -> Reply | None:
        if self.errors:
            return _err(self.errors.popleft())
        auth = request.headers.get("authorization", "")
        if not auth:
            return _err("not_authed")
        if auth != f"Bearer {self.token}":
            return _err("invalid_auth")
        return None

    @staticmethod
    def _blocks_ok(blocks) -> bool:
        if not isinstance(blocks, list) or len(blocks) > 50:
            return False
        for b in blocks:
            kind = b.get("type")
            if kind not in BLOCK_TYPES:
                return False
            if kind == "header" and not (b["text"]["type"] == "plain_text" and 0 < len(b["text"]["text"]) <= 150):
                return False
            if kind == "section":
                fields = b.get("fields") or []
                if not b.get("text") and not fields or len(fields) > 10:
                    return False
                if any(len(t["text"]) > 2000 for t in fields) or len((b.get("text") or {}).get("text", "")) > 3000:
                    return False
            if kind == "actions":
                for e in b.get("elements") or []:
                    if e.get("type") != "button" or len(e["text"]["text"]) > 75 or len(e.get("url", "")) > 3000:
                        return False
        return True

    def post_message(self, request: Request) -> Reply:
        if (denied := self._guard(request)) is not None:
            return denied
        args = self._args(request)
        channel = args.get("channel")
        if channel not in self.channels:
            return _err("channel_not_found")
        if channel not in self.member_of:
            return _err("not_in_channel")
        if not args.get("text") and not args.get("blocks"):
            return _err("no_text")
        if "blocks" in args and not self._blocks_ok(args["blocks"]):
            return _err("invalid_blocks")
        meta = args.get("metadata")
        if meta is not None and not (isinstance(meta, dict) and isinstance(meta.get("event_type"), str)
                                     and isinstance(meta.get("event_payload"), dict)):
            return _err("invalid_metadata_format")
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = {"type": "message", "subtype": "bot_message", "text": args.get("text", ""), "ts": ts,
                   "bot_id": "B0INVOICER", "blocks": args.get("blocks", []), "metadata": meta}
        with self.lock:
            self.channels[channel].append(message)
        return Reply(200, {"ok": True, "channel": channel, "ts": ts,
                           "message": {k: v for k, v in message.items() if k != "metadata"}})

    def history(self, request: Request) -> Reply:
        if (denied := self._guard(request)) is not None:
            return denied
        args = self._args(request)
        if args.get("channel") not in self.channels:
            return _err("channel_not_found")
        oldest = float(args.get("oldest") or 0)
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = min(int(args.get("limit") or 100), 999)
        found = [m for m in reversed(self.channels[args["channel"]]) if float(m["ts"]) > oldest][:limit]
        return Reply(200, {"ok": True, "has_more": False, "messages": [
            {k: v for k, v in m.items() if with_meta or k != "metadata"} for m in found]})

    def webhook(self, request: Request) -> Reply:
        if request.path != self.webhook_path:
            return Reply(404, "no_service", {"Content-Type": "text/html"})
        try:
            payload = request.json()
        except ValueError:
            return Reply(400, "invalid_payload", {"Content-Type": "text/html"})
        if not payload or not (payload.get("text") or payload.get("blocks")) or \
                ("blocks" in payload and not self._blocks_ok(payload["blocks"])):
            return Reply(400, "invalid_payload" if not payload.get("blocks") else "invalid_blocks",
                         {"Content-Type": "text/html"})
        with self.lock:
            self.webhook_posts.append(payload)
        return Reply(200, "ok", {"Content-Type": "text/html"})

    routes = [
        ("POST", r"/api/chat\.postMessage", post_message),
        ("GET", r"/api/conversations\.history", history),
        ("POST", r"/api/conversations\.history", history),
        ("POST", r"/services/.+", webhook),
    ]

    def channel(self, url: str, **extra) -> dict:
        """The channels.slack entry for a tenants file pointing at this simulator (bot token)."""
        return {"provider": "slack", "base_url": url, "token_env": "INVOICER_SANDBOX_SLACK_TOKEN",
                "channel": self.channel_id, **extra}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_SLACK_TOKEN": self.token,
                "INVOICER_SANDBOX_SLACK_WEBHOOK": f"{getattr(self, 'url', '')}{self.webhook_path}"}
