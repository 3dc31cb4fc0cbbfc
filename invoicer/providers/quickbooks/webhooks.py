"""QuickBooks Online webhooks: verify `intuit-signature` and normalise the notifications.

Intuit signs the raw body: `intuit-signature` = base64(HMAC-SHA256(verifier token, body)), the token being the
app's webhook "Verifier Token" as UTF-8 (Intuit, "Managing webhooks notifications"). One app has one endpoint
URL for every connected company, so each entry keeps the notifications of its own company (`realm_id`).
Two body formats are read, both signed the same way:
  * the original one: {"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [
      {"name": "Invoice"|"Payment"|..., "id", "operation": "Create"|"Update"|"Delete"|"Void"|..., "lastUpdated"}]}}]}
  * CloudEvents, which Intuit moved every app to in 2026 (blog "Upcoming change to webhooks payload
    structure", 2025-11-12): a JSON array of {"specversion": "1.0", "id", "source", "type":
    "qbo.<entity>.<operation>.v1", "time", "intuitentityid", "intuitaccountid", "data"}.
A notification carries ids only, no amounts. Kept here, and nothing else:
  * an Invoice created, updated or emailed -> `invoice.changed` (ask QuickBooks for its payment status now);
  * a Payment created or updated -> `payment.changed` (fetch it, follow Line[].LinkedTxn to the invoices).
A deleted or voided Payment cannot be fetched: the invoice it touched is notified as updated by QuickBooks
when its Balance changes (not confirmed by Intuit's pages), and the hourly poll asks again in any case.
Intuit signs no timestamp: a replayed body verifies; acting on it twice is harmless (status is asked
again, and a status already recorded changes nothing).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from ...errors import AuthFailed, Rejected
from ..base import WebhookEvent

HEADER = "intuit-signature"
KINDS = {("invoice", "create"): "invoice.changed", ("invoice", "update"): "invoice.changed",
         ("invoice", "emailed"): "invoice.changed",
         ("payment", "create"): "payment.changed", ("payment", "update"): "payment.changed"}
# CloudEvents operations are past participles (qbo.invoice.created.v1); the original format's are verbs
_OPERATIONS = {"created": "create", "updated": "update", "deleted": "delete", "voided": "void", "merged": "merge",
               "emailed": "emailed"}


def sign(body: bytes, token: str) -> str:
    return base64.b64encode(hmac.new(token.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def verify(headers: dict, body: bytes, token: str) -> bool:
    given = next((v for k, v in headers.items() if k.lower() == HEADER), None)
    return bool(given) and bool(token) and hmac.compare_digest(given.strip().encode(), sign(body, token).encode())


def _entities(payload) -> list[tuple[str, str, str, str, dict]]:
    """(realm, entity name, id, operation, the vendor's own item) of each change, in either format."""
    out = []
    if isinstance(payload, list):  # CloudEvents
        for e in payload:
            if not isinstance(e, dict) or not isinstance(e.get("type"), str):
                raise Rejected("quickbooks webhook: a CloudEvent without type")
            parts = e["type"].split(".")
            if len(parts) < 3 or parts[0] != "qbo":
                continue  # not an accounting entity event
            out.append((str(e.get("intuitaccountid") or ""), parts[1], str(e.get("intuitentityid") or ""),
                        _OPERATIONS.get(parts[2].lower(), parts[2].lower()), e))
        return out
    if not isinstance(payload, dict) or not isinstance(payload.get("eventNotifications"), list):
        raise Rejected("quickbooks webhook: neither eventNotifications nor a CloudEvents array")
    for n in payload["eventNotifications"]:
        entities = ((n or {}).get("dataChangeEvent") or {}).get("entities") if isinstance(n, dict) else None
        if not isinstance(entities, list):
            raise Rejected("quickbooks webhook: an eventNotification without dataChangeEvent.entities")
        for e in entities:
            if not isinstance(e, dict):
                raise Rejected("quickbooks webhook: an entity is not an object")
            out.append((str(n.get("realmId") or ""), str(e.get("name") or ""), str(e.get("id") or ""),
                        str(e.get("operation") or "").lower(), e))
    return out


def parse(headers: dict, body: bytes, token: str, realm_id: str | None) -> list[WebhookEvent]:
    """The invoice and payment changes of company `realm_id` in one verified delivery.

    AuthFailed: missing or wrong signature (answer 401, nothing read). Rejected: signed, but not Intuit's."""
    if not verify(headers, body, token):
        raise AuthFailed("quickbooks webhook: missing or invalid intuit-signature", status=401)
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise Rejected("quickbooks webhook: the body is not JSON") from None
    out, seen = [], set()
    for realm, name, entity_id, operation, item in _entities(payload):
        kind = KINDS.get((name.lower(), operation))
        if kind is None or not entity_id or (realm_id and realm != str(realm_id)) or (kind, entity_id) in seen:
            continue  # another company of the same app, a change that says nothing about a payment, or again
        seen.add((kind, entity_id))
        out.append(WebhookEvent(type=kind, external_id=entity_id, raw={"account": realm, "notification": item}))
    return out
