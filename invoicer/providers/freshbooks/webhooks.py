"""FreshBooks webhook callbacks: verify `X-FreshBooks-Hmac-SHA256` and normalise.

FreshBooks POSTs form data (`name=invoice.update&object_id=...&account_id=...&business_id=...&identity_id=
...&user_id=...`). When a callback is registered it first sends the `verifier` (unsigned); every later
delivery carries `X-FreshBooks-Hmac-SHA256` = base64(HMAC-SHA256(verifier, the JSON string of the form
fields)), the JSON made as Python's `json.dumps` of the form dict in the order sent (FreshBooks' webhook
docs, quoted in the SDK's user guide: amcintosh/freshbooks-python-sdk docs/.../webhooks.md). The events
carry ids only, no amounts; acting on one twice is harmless.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl

from ...errors import AuthFailed, Rejected
from ..base import WebhookEvent

HEADER = "x-freshbooks-hmac-sha256"
TYPES = {"invoice.create": "invoice.created", "invoice.update": "invoice.updated",
         "invoice.delete": "invoice.voided", "payment.create": "payment.created"}


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


def sign(fields: dict, verifier: str) -> str:
    return base64.b64encode(hmac.new(verifier.encode(), json.dumps(fields).encode(), hashlib.sha256).digest()).decode()


def parse(headers: dict, body: bytes, verifier: str, account_id: str | None = None) -> list[WebhookEvent]:
    try:
        fields = form(body)
    except UnicodeDecodeError:
        raise Rejected("freshbooks webhook: not form data") from None
    given = next((v for k, v in headers.items() if k.lower() == HEADER), None)
    if given is None and "verifier" in fields and set(fields) <= {"verifier", "name", "object_id", "account_id",
                                                                   "business_id", "identity_id", "user_id"}:
        return []  # the registration's verification post: nothing happened to an invoice
    if not given or not hmac.compare_digest(given.strip().encode(), sign(fields, verifier).encode()):
        raise AuthFailed("freshbooks webhook: missing or invalid X-FreshBooks-Hmac-SHA256", status=401)
    if not fields.get("name") or not fields.get("object_id"):
        raise Rejected("freshbooks webhook: no event name or object_id")
    if account_id and fields.get("account_id") and fields["account_id"] != account_id:
        return []
    return [WebhookEvent(type=TYPES.get(fields["name"], "other"), external_id=fields["object_id"], raw=fields)]
