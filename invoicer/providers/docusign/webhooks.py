"""DocuSign Connect: verify `X-DocuSign-Signature-N` and normalise envelope events.

Scheme (DocuSign's "HMAC security for Connect" guide): each `X-DocuSign-Signature-<n>` header (n = 1..,
one per active Connect key) is the base64 HMAC-SHA256 of the raw request body keyed with a Connect key.
Any one that matches our key is enough (DocuSign sends one per key while keys are rotated). The message
carries no timestamp, so a replayed delivery verifies again: it is deduplicated downstream (the
`job.signed` event it becomes has an id fixed by the envelope).

Format: Connect's JSON SIM messages ("event", "generatedDateTime", "data": {"accountId", "envelopeId",
"envelopeSummary"}; sample in ../shared/vendor-specs/docusign/connect.schema-v2.json). The configuration
must include the envelope's recipients and custom fields ("Include ... Recipients, Custom Fields").

Events: `envelope-completed` -> type `job.signed`, with the completing signer's name and time (raw
`signed_by`, `signed_at`); other `envelope-*` / `recipient-*` events -> type `envelope.<what>` (recorded
against the invoice, nothing else). Errors: no matching signature -> AuthFailed (401); a verified body that
is not a Connect JSON message, or a completion without its signer -> Rejected (422).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime

from ...errors import AuthFailed, Rejected
from ..base import WebhookEvent
from . import transform

HEADER = "x-docusign-signature-"
MAX_HEADERS = 100  # DocuSign allows up to 100 Connect keys per account


def signature(body: bytes | str, key: str) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return base64.b64encode(hmac.new(key.encode("utf-8"), raw, hashlib.sha256).digest()).decode("ascii")


def sign(body: bytes | str, keys: str | list[str]) -> dict[str, str]:
    """The headers DocuSign sends for a body, one X-DocuSign-Signature-n per key."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    return {f"X-DocuSign-Signature-{i}": signature(body, k) for i, k in enumerate(keys, 1)}


def verify(headers: dict, body: bytes | str, keys: list[str]) -> None:
    """AuthFailed unless one X-DocuSign-Signature-n header matches one of our Connect keys."""
    keys = [k for k in keys if k]
    if not keys:
        raise AuthFailed("docusign connect: no Connect key configured")
    given = [v.strip() for k, v in (headers or {}).items() if k.lower().startswith(HEADER)
             and k.lower()[len(HEADER):].isdigit()][:MAX_HEADERS]
    if not given:
        raise AuthFailed("docusign connect: no X-DocuSign-Signature header")
    expected = [signature(body, k) for k in keys]
    if not any(hmac.compare_digest(g.encode(), e.encode()) for g in given for e in expected):
        raise AuthFailed("docusign connect: the signature does not verify")


def _signer(summary: dict) -> tuple[str, str] | None:
    """(name, signed time) of the signer who completed the envelope: the last one to sign."""
    signers = [s for s in ((summary.get("recipients") or {}).get("signers") or [])
               if isinstance(s, dict) and s.get("status") == "completed" and s.get("name")]
    if not signers:
        return None
    last = max(signers, key=lambda s: str(s.get("signedDateTime") or ""))
    when = last.get("signedDateTime") or summary.get("completedDateTime")
    try:
        datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return None
    return str(last["name"]), str(when)


def parse(body: bytes | str) -> list[WebhookEvent]:
    """One Connect JSON message as our events (already verified)."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Rejected("docusign connect: the body is not JSON (configure Connect's JSON SIM format)") from None
    if not isinstance(message, dict) or not isinstance(message.get("data"), dict) or not message.get("event"):
        raise Rejected("docusign connect: not a Connect message (event and data are required)")
    data = message["data"]
    summary = data.get("envelopeSummary") if isinstance(data.get("envelopeSummary"), dict) else {}
    envelope_id = str(data.get("envelopeId") or summary.get("envelopeId") or "")
    if not envelope_id:
        raise Rejected("docusign connect: data.envelopeId is missing")
    event = str(message["event"])
    raw = {"event": event, "envelope_id": envelope_id, "account_id": data.get("accountId"),
           "generated_at": message.get("generatedDateTime"), "status": summary.get("status")}
    reference = transform.key_of(summary)
    if event == "envelope-completed":
        signer = _signer(summary)
        if signer is None:
            raise Rejected("docusign connect: envelope-completed without a completed signer and its signing time; "
                           "include the recipients in the Connect configuration")
        raw.update(signed_by=signer[0], signed_at=signer[1])
        return [WebhookEvent(type="job.signed", external_id=envelope_id, reference=reference, raw=raw)]
    return [WebhookEvent(type=f"envelope.{event.replace('-', '_')}", external_id=envelope_id, reference=reference,
                         raw=raw)]
