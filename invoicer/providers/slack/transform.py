"""Pure mapping for Slack: our finance message -> a Block Kit message (no I/O).

chat.postMessage (https://docs.slack.dev/reference/methods/chat.postMessage): `channel`, `text` (the
fallback and screen-reader text: the tenant's `slack` template), `blocks` (header; the text; fields
customer, job, total, due; buttons to the PDF and the payment page), `metadata` carrying our
delivery key (event_type `invoicer_invoice`), by which conversations.history finds the message after
an unknown outcome. An incoming webhook takes the same text and blocks (no channel, no metadata).
"""
from __future__ import annotations

from invoicer.errors import AuthFailed, RateLimited, Rejected, Unavailable
from invoicer.notify import slack_escape
from invoicer.providers.base import Message

EVENT_TYPE = "invoicer_invoice"
HEADER_MAX, BUTTON_MAX, TEXT_MAX = 150, 75, 3000

AUTH = {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired", "no_permission",
        "missing_scope", "org_login_required", "ekm_access_denied", "not_allowed_token_type", "team_access_not_granted"}
LATER = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited", "rate_limited"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blocks(message: Message) -> list[dict]:
    d = message.data
    out = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"Invoice {d.get('number')} issued", HEADER_MAX)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(message.text, TEXT_MAX)},
         "fields": [{"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(d.get(key))}"}
                    for label, key in (("Customer", "customer"), ("Job", "job"), ("Total", "total"), ("Due", "due"))]},
    ]
    buttons = [{"type": "button", "text": {"type": "plain_text", "text": label}, "url": d[key],
                "action_id": f"invoicer_{key}"} for label, key in (("View PDF", "pdf_url"), ("Payment page", "pay_url"))
               if d.get(key)]
    if buttons:
        out.append({"type": "actions", "elements": buttons})
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(f"{d.get('tenant')} · invoicer")}]})
    return out


def post_message(message: Message, channel: str) -> dict:
    """The chat.postMessage JSON body."""
    return {"channel": channel, "text": message.text, "blocks": blocks(message), "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {
                "delivery": message.key, "tenant": message.tenant, "invoice": str(message.data.get("number"))}}}


def webhook_message(message: Message) -> dict:
    return {"text": message.text, "blocks": blocks(message), "unfurl_links": False}


def is_ours(listed: dict, key: str) -> bool:
    meta = listed.get("metadata") or {}
    return meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("delivery") == key


def api_error(body: dict, retry_after: float | None = None):
    """Slack answers most errors as HTTP 200 with {"ok": false, "error": "..."}: the typed error."""
    code = str(body.get("error") or "unknown_error")
    detail = f"slack: {code}"
    if code in ("ratelimited", "rate_limited"):
        return RateLimited(detail, retry_after=retry_after)
    if code in AUTH:
        return AuthFailed(detail)
    if code in LATER:
        return Unavailable(detail, retry_after=retry_after)
    return Rejected(detail)
