"""Zoho Books webhooks (workflow rules on invoices and customer payments): verify and normalise.

A webhook made "secure" with a secret token carries `X-Zoho-Webhook-Signature`: the hex HMAC-SHA256,
keyed by the token, of the query string's key-value pairs sorted by key (each key then value, joined
with nothing) followed by the raw JSON body. That is Zoho's published rule for its Billing webhooks
("How Do I Secure My Webhooks", zoho.com/billing/kb/webhooks/securing-webhooks.html); that Books signs the
same way is NOT confirmed. Zoho signs no timestamp; the events only restate an invoice's state, so
acting on a replay twice is harmless (pipeline.apply_webhook is idempotent).

Payloads (the default JSON of a workflow webhook): {"invoice": {...}} for an invoice rule,
{"payment": {..., "invoices": [{"invoice_id", "amount_applied"}]}} for a customer-payment rule.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

from ...errors import AuthFailed, Rejected
from ..base import WebhookEvent
from .transform import amount

HEADER = "x-zoho-webhook-signature"


def signed_text(body: bytes, url: str = "") -> bytes:
    pairs = sorted(parse_qsl(urlsplit(url).query, keep_blank_values=True)) if url else []
    return "".join(k + v for k, v in pairs).encode() + body


def sign(body: bytes, secret: str, url: str = "") -> str:
    return hmac.new(secret.encode(), signed_text(body, url), hashlib.sha256).hexdigest()


def _header(headers: dict, name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def parse(headers: dict, body: bytes, secret: str, url: str = "",
          organization_id: str | None = None) -> list[WebhookEvent]:
    given = (_header(headers, HEADER) or "").strip()
    if not given or not hmac.compare_digest(given.encode(), sign(body, secret, url).encode()):
        raise AuthFailed("zoho_books webhook: missing or invalid X-Zoho-Webhook-Signature", status=401)
    try:
        payload = json.loads(body or b"{}", parse_float=Decimal)
        if not isinstance(payload, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError) as exc:
        raise Rejected(f"zoho_books webhook: not a Zoho payload ({exc})") from None
    if organization_id and payload.get("organization_id") and str(payload["organization_id"]) != str(organization_id):
        return []
    if isinstance(payload.get("invoice"), dict):
        inv = payload["invoice"]
        if not inv.get("invoice_id"):
            raise Rejected("zoho_books webhook: an invoice without invoice_id")
        status = str(inv.get("status", ""))
        paid = amount(inv.get("total")) - amount(inv.get("balance"))
        kind = {"paid": "invoice.paid", "partially_paid": "invoice.payment_partial",
                "void": "invoice.voided"}.get(status, "other")
        return [WebhookEvent(type=kind, external_id=str(inv["invoice_id"]),
                             amount_paid=paid if kind in ("invoice.paid", "invoice.payment_partial") else None, raw=payload)]
    if isinstance(payload.get("payment"), dict):
        # a payment says how much went to each invoice, not what is paid in all: the invoice is re-read
        return [WebhookEvent(type="invoice.payment_received", external_id=str(applied["invoice_id"]), raw=payload)
                for applied in payload["payment"].get("invoices") or [] if applied.get("invoice_id")]
    return []
