"""Pure mapping for Google Workspace (no I/O): the service-account assertion, Gmail's raw MIME
message and its Message-ID search, Drive's multipart upload and link permission, and Google's error
body turned into our typed errors.

Contracts: the discovery documents in ../shared/vendor-specs/google/ (gmail.v1.json, drive.v3.json)
and Google's pages on service accounts (https://developers.google.com/identity/protocols/oauth2/service-account),
Gmail sending (https://developers.google.com/workspace/gmail/api/guides/sending), Drive uploads with
a pregenerated id (https://developers.google.com/workspace/drive/api/guides/manage-uploads) and the
error formats of both APIs (.../gmail/api/guides/handle-errors, .../drive/api/guides/handle-errors).
"""
from __future__ import annotations

import base64
import json
import uuid
from email.errors import MessageError

from invoicer.errors import AuthFailed, RateLimited, Rejected, Unavailable
from invoicer.providers.base import Message
from invoicer.providers.smtp import transform as smtp

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_URI = "https://oauth2.googleapis.com/token"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GMAIL_READ = "https://www.googleapis.com/auth/gmail.metadata"  # enough for messages.list with q
DRIVE_FILE = "https://www.googleapis.com/auth/drive.file"
ASSERTION_LIFETIME = 3600  # Google takes at most one hour
PDF = "application/pdf"
# a 403 with one of these reasons is a quota, not a refusal (Gmail and Drive "Resolve errors" pages)
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded", "quotaExceeded",
                "sharingRateLimitExceeded"}
DAILY_REASONS = {"dailyLimitExceeded", "quotaExceeded"}


# ---------------------------------------------------------------- auth

def claims(key: dict, user: str, scopes: list[str], now: int) -> dict:
    """The JWT claim set of a service account acting for `user` (domain-wide delegation)."""
    return {"iss": key["client_email"], "sub": user, "scope": " ".join(scopes),
            "aud": key.get("token_uri") or TOKEN_URI, "iat": now, "exp": now + ASSERTION_LIFETIME}


def service_account(text: str) -> dict:
    """The service account's JSON key (as Google's console gives it) with the fields we need."""
    try:
        key = json.loads(text)
    except ValueError:
        raise AuthFailed("google: the service account key is not JSON (give the key file's content)") from None
    missing = [f for f in ("client_email", "private_key") if not (isinstance(key, dict) and key.get(f))]
    if missing:
        raise AuthFailed(f"google: the service account key has no {', '.join(missing)}")
    return key


# ---------------------------------------------------------------- Gmail

def mime(message: Message, options: dict, user: str) -> bytes:
    """The whole email, as SMTP would send it: our Message-ID (from the delivery key, the same on
    every attempt), X-Invoicer-Delivery, text + HTML, the PDF attached when given. From defaults to
    the sending user (Gmail sends as that user or one of its verified send-as aliases)."""
    try:
        return bytes(smtp.to_mime(message, {**options, "from": options.get("from") or user}))
    except (ValueError, TypeError, MessageError) as exc:  # an address the email library cannot write
        raise Rejected(f"gmail: the message cannot be built ({type(exc).__name__}: {exc})") from None


def send_body(raw: bytes) -> dict:
    """users.messages.send JSON body: the RFC 2822 message, base64url (Message.raw, format byte)."""
    return {"raw": base64.urlsafe_b64encode(raw).decode()}


def message_id(message: Message, options: dict, user: str) -> str:
    sender = options.get("from") or user
    return smtp.message_id(message.key, options.get("message_id_domain") or smtp.domain_of(sender))


def search_query(msgid: str) -> str:
    """messages.list `q` that finds a message by its Message-ID header (Gmail search operator)."""
    return f"rfc822msgid:{msgid.strip('<>')}"


# ---------------------------------------------------------------- Drive

def file_name(doc: dict, options: dict) -> str:
    pattern = str(options.get("name") or "{number}.pdf")
    return pattern.format(number=doc["number"], tenant=doc["tenant"], customer=doc["customer"]["name"],
                          job=doc["job"]["number"], issued=doc["issued_on"].isoformat())


def file_metadata(doc: dict, options: dict, file_id: str, key: str) -> dict:
    """The File resource for files.create: the reserved id, the tenant's folder, our reference kept in
    appProperties (private to our app) so a person or a search can tell it is ours."""
    meta = {"id": file_id, "name": file_name(doc, options), "mimeType": PDF,
            "appProperties": {"invoicer_key": key[:100], "invoicer_invoice": doc["number"]},
            "description": f"Invoice {doc['number']} ({doc['tenant']})"}
    if options.get("folder_id"):
        meta["parents"] = [str(options["folder_id"])]
    return meta


def multipart(metadata: dict, data: bytes, boundary: str | None = None) -> tuple[bytes, str]:
    """multipart/related body for uploadType=multipart: the metadata part (JSON) then the media."""
    boundary = boundary or f"invoicer-{uuid.uuid4().hex}"
    head = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps(metadata)}\r\n--{boundary}\r\nContent-Type: {metadata.get('mimeType', PDF)}\r\n\r\n")
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/related; boundary={boundary}"


def permission(options: dict) -> dict | None:
    """permissions.create body for the tenant's link sharing: `share: anyone` (anyone with the link
    can view) or `share: domain` (anyone in `share_domain`); None = not shared."""
    share = options.get("share")
    if share == "anyone":
        return {"type": "anyone", "role": "reader", "allowFileDiscovery": False}
    if share == "domain":
        return {"type": "domain", "role": "reader", "domain": str(options["share_domain"]),
                "allowFileDiscovery": False}
    return None


FILE_FIELDS = "id,name,webViewLink,parents,md5Checksum,size,appProperties"


# ---------------------------------------------------------------- errors

def error_of(body) -> dict:
    """Google's error body {"error": {"code", "message", "errors": [{"domain", "reason", "message"}],
    "status"}}; the token endpoint's {"error": "invalid_grant", "error_description"} too."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return {"message": f"{body['error']}: {body.get('error_description') or ''}".strip(": "),
                "errors": [{"reason": body["error"]}]}
    return {}


def reasons(body) -> list[str]:
    return [str(e.get("reason")) for e in error_of(body).get("errors") or [] if isinstance(e, dict)]


def error_text(body, fallback: str = "") -> str:
    error = error_of(body)
    text = str(error.get("message") or fallback)[:250]
    found = reasons(body)
    return f"{text} ({', '.join(found)})" if found else text


def typed(status: int, body, what: str, retry_after: float | None = None):
    """The error a Google answer means. 429, and a 403 whose reason is a quota, is RateLimited (a
    daily quota waits an hour); other 401/403 AuthFailed; 5xx Unavailable; other 4xx Rejected."""
    why = reasons(body)
    detail = f"google {what} answered {status}: {error_text(body)}"
    if status == 429 or (status == 403 and RATE_REASONS & set(why)):
        wait = retry_after if retry_after is not None else (3600.0 if DAILY_REASONS & set(why) else None)
        return RateLimited(detail, retry_after=wait, status=status)
    if status in (401, 403):
        return AuthFailed(detail, status=status)
    if status in (408, 409) or status >= 500:
        return Unavailable(detail, retry_after=retry_after, status=status)
    return Rejected(detail, status=status)
