"""A small, faithful stand-in of Google's token endpoint, Gmail and Drive for what invoicer uses.

Follows the discovery documents in ../shared/vendor-specs/google/ (paths, parameters, field names)
and Google's pages on service accounts, Gmail sending and errors, and Drive uploads:
- `POST /token`: the JWT bearer grant; the assertion is verified with the service account's public
  key (RS256; iss = the account, aud = Google's token URI, at most one hour, not expired), `sub` must
  be a user of the domain and every scope must be delegated to the account; answers
  {access_token, expires_in, token_type} or {error, error_description} (400 invalid_grant,
  401 unauthorized_client);
- Gmail `users.messages.send` (upload `uploadType=media` with message/rfc822, or JSON `raw`),
  100 quota units, and `users.messages.list` with `q=rfc822msgid:...`, 5 units; a per-user quota in
  units a minute (429 rateLimitExceeded); From rewritten to the user unless it is a send-as alias;
- Drive `files.generateIds`, `files.create` (`uploadType=multipart`, multipart/related: JSON metadata
  then the media) with a generated id (a second create with it: 409), `files.get`, and
  `permissions.create`; a parent must be a folder the user can write to (404 notFound);
- errors as Google sends them: {"error": {"code", "message", "errors": [{"domain", "reason",
  "message"}], "status"}}; 401 authError, 403 insufficientPermissions, 429 rateLimitExceeded, and a
  403 userRateLimitExceeded when `limit_status = 403`.
Tests and `invoicer sandbox` only.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import json
import secrets
import threading
import time
from collections import deque
from email.utils import getaddresses, parseaddr

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from invoicer.providers.google import transform
from invoicer.providers.simulate import Reply, Request, Simulator

KEY_ENV = "INVOICER_SANDBOX_GOOGLE_KEY"
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED"}


def error(code: int, message: str, reason: str, domain: str = "global", **extra) -> Reply:
    return Reply(code, {"error": {"code": code, "message": message,
                                  "errors": [{"message": message, "domain": domain, "reason": reason, **extra}],
                                  "status": STATUS.get(code, "UNKNOWN")}})


def _pick(resource: dict, fields: str | None) -> dict:
    if not fields:
        return {k: resource[k] for k in ("kind", "id", "name", "mimeType") if k in resource}
    wanted = [f.strip() for f in fields.split(",")]
    return {k: v for k, v in resource.items() if k in wanted}


class GoogleSimulator(Simulator):
    def __init__(self, user: str = "billing@acme.example", domain: str = "acme.example"):
        super().__init__()
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "invoicer@acme-project.iam.gserviceaccount.com"
        self.key_id = secrets.token_hex(20)
        self.user, self.domain = user, domain
        self.url = ""
        self._state = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock, self._state:
            self.forget()
            self.users = {self.user}
            self.aliases = {self.user: {self.user}}
            self.delegated = {transform.GMAIL_SEND, transform.GMAIL_READ, transform.DRIVE_FILE}
            self.tokens_issued: dict[str, tuple[str, set, float]] = {}  # token -> (user, scopes, expires)
            self.token_calls = 0
            self.quota_per_minute = 15000  # Gmail units per user a minute
            self.limit_status = 429
            self.units: dict[str, deque] = {}
            self.messages: dict[str, dict] = {}
            self.folder = "1FolderInvoices" + secrets.token_hex(6)
            self.folders = {self.folder: {self.user}}
            self.generated: dict[str, str] = {}  # id -> user it was generated for
            self.files: dict[str, dict] = {}
            self.media: dict[str, bytes] = {}
            self.permissions: dict[str, dict[str, dict]] = {}

    # ------------------------------------------------------------ sandbox and tests

    def key(self) -> dict:
        """The service account's JSON key, as Google's console gives it."""
        pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "acme-project", "private_key_id": self.key_id,
                "private_key": pem, "client_email": self.client_email, "client_id": "1043",
                "token_uri": transform.TOKEN_URI}

    def env(self) -> dict[str, str]:
        return {KEY_ENV: json.dumps(self.key())}

    def tokens(self) -> None:
        return None  # the adapter gets its own tokens with the service account's key

    def _common(self, url: str) -> dict:
        self.url = url
        return {"base_url": url, "token_url": f"{url}/token", "service_account_env": KEY_ENV, "user": self.user}

    def platform(self, url: str, **extra) -> dict:
        return {"provider": "drive", **self._common(url), "folder_id": self.folder, **extra}

    def channel(self, url: str, **extra) -> dict:
        return {"provider": "gmail", **self._common(url), "from": f"Acme Billing <{self.user}>", **extra}

    def expire_tokens(self) -> None:
        with self._state:
            self.tokens_issued.clear()

    def sent_to(self, address: str) -> list[dict]:
        return [m for m in self.messages.values() if address in m["to"]]

    # ------------------------------------------------------------ plumbing

    def rate_limited(self, request: Request) -> Reply:
        if self.limit_status == 403:
            return error(403, "User rate limit exceeded.", "userRateLimitExceeded", "usageLimits")
        return error(429, "User-rate limit exceeded.  Retry after 2026-11-25T15:00:00.000Z", "rateLimitExceeded",
                     "usageLimits")

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        with self._state:
            self.token_calls += 1
        if form.get("grant_type") != transform.JWT_GRANT:
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "
                                                                                     f"{form.get('grant_type')}"})
        try:
            claims = jwt.decode(form.get("assertion", ""), self.private_key.public_key(), algorithms=["RS256"],
                                audience=transform.TOKEN_URI, options={"require": ["iss", "aud", "exp", "iat"]})
        except jwt.PyJWTError as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature. ({exc})"})
        if claims["iss"] != self.client_email:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT: iss"})
        if claims["exp"] - claims["iat"] > 3600:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a "
                                                                             "short-lived token (60 minutes)"})
        if claims.get("sub") not in self.users:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid email or User ID"})
        scopes = set(str(claims.get("scope") or "").split())
        if not scopes or not scopes <= self.delegated:
            return Reply(401, {"error": "unauthorized_client", "error_description": "Client is unauthorized to "
                               "retrieve access tokens using this method, or client not authorized for any of the "
                               "scopes requested."})
        token = "ya29." + secrets.token_urlsafe(40)
        with self._state:
            self.tokens_issued[token] = (claims["sub"], scopes, time.time() + 3599)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _authorise(self, request: Request, scopes: set[str]):
        value = request.headers.get("authorization", "")
        with self._state:
            held = self.tokens_issued.get(value.removeprefix("Bearer "))
        if not value.startswith("Bearer ") or held is None or held[2] < time.time():
            return None, error(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                    "token, login cookie or other valid authentication credential.", "authError",
                               location="Authorization", locationType="header")
        if not scopes & held[1]:
            return None, error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
        user_id = request.params.get("user")
        if user_id not in (None, "me", held[0]):
            return None, error(403, f"Delegation denied for {held[0]}", "forbidden")
        return held[0], None

    def _spend(self, user: str, units: int) -> Reply | None:
        now = time.time()
        with self._state:
            window = self.units.setdefault(user, deque())
            while window and window[0][0] <= now - 60:
                window.popleft()
            if sum(u for _, u in window) + units > self.quota_per_minute:
                return self.rate_limited(None)
            window.append((now, units))
        return None

    # ------------------------------------------------------------ Gmail

    def send(self, request: Request) -> Reply:
        user, refused = self._authorise(request, {transform.GMAIL_SEND, "https://mail.google.com/"})
        if refused:
            return refused
        if request.path.startswith("/upload/"):
            if request.query.get("uploadType", [""])[0] != "media" or \
                    not request.headers.get("content-type", "").startswith("message/"):
                return error(400, "Media type 'application/octet-stream' is not supported. Valid media types: "
                                  "[message/*]", "badContent")
            raw = request.body
        else:
            try:
                import base64

                raw = base64.urlsafe_b64decode(request.json()["raw"])
            except (ValueError, KeyError, TypeError):
                return error(400, "'raw' RFC822 payload message string or uploading message via /upload/* URL "
                                  "required", "invalidArgument")
        if len(raw) > 36700160:
            return error(413, "Request Entity Too Large", "uploadTooLarge")
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        to = [a for _, a in getaddresses([str(v) for v in mail.get_all("To") or []]) if "@" in a]
        if not to:
            return error(400, "Invalid To header", "invalidArgument")
        limited = self._spend(user, 100)
        if limited:
            return limited
        sender = parseaddr(str(mail.get("From") or ""))[1]
        if sender not in self.aliases.get(user, set()):
            del mail["From"]
            mail["From"] = user  # Gmail sends as the user when From is not one of its send-as aliases
        message_id = str(mail.get("Message-ID") or f"<{secrets.token_hex(8)}@mail.gmail.com>")
        gid = secrets.token_hex(8)
        with self._state:
            self.messages[gid] = {"id": gid, "threadId": gid, "labelIds": ["SENT"], "user": user, "to": to,
                                  "message_id": message_id, "subject": str(mail.get("Subject") or ""),
                                  "mail": mail}
        return Reply(200, {"id": gid, "threadId": gid, "labelIds": ["SENT"]})

    def list_messages(self, request: Request) -> Reply:
        user, refused = self._authorise(request, {transform.GMAIL_READ, "https://mail.google.com/",
                                                  "https://www.googleapis.com/auth/gmail.readonly"})
        if refused:
            return refused
        limited = self._spend(user, 5)
        if limited:
            return limited
        q = request.query.get("q", [""])[0]
        if not q.startswith("rfc822msgid:"):  # the only search this stand-in knows
            return error(400, f"Invalid query: {q}", "invalidArgument")
        wanted = q.removeprefix("rfc822msgid:").strip("<>")
        with self._state:
            found = [{"id": m["id"], "threadId": m["threadId"]} for m in self.messages.values()
                     if m["user"] == user and m["message_id"].strip("<>") == wanted]
        return Reply(200, {"messages": found, "resultSizeEstimate": len(found)} if found else {"resultSizeEstimate": 0})

    # ------------------------------------------------------------ Drive

    def generate_ids(self, request: Request) -> Reply:
        user, refused = self._authorise(request, {transform.DRIVE_FILE})
        if refused:
            return refused
        count = int(request.query.get("count", ["10"])[0])
        if not 1 <= count <= 1000:
            return error(400, "Invalid value for count", "invalid", location="count", locationType="parameter")
        ids = ["1" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y") for _ in range(count)]
        with self._state:
            self.generated.update({i: user for i in ids})
        return Reply(200, {"kind": "drive#generatedIds", "space": request.query.get("space", ["drive"])[0],
                           "ids": ids})

    def _parts(self, request: Request) -> tuple[dict, bytes, str] | Reply:
        ctype = request.headers.get("content-type", "")
        if request.query.get("uploadType", [""])[0] != "multipart" or not ctype.startswith("multipart/related"):
            return error(400, "Bad Request", "badRequest")
        boundary = ctype.partition("boundary=")[2].strip('"')
        chunks = request.body.split(f"--{boundary}".encode())
        parts = [c for c in chunks[1:] if not c.startswith(b"--")]
        if len(parts) != 2:
            return error(400, "Multipart request must have exactly two parts: metadata and media", "badContent")
        out = []
        for part in parts:
            head, _, body = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
            out.append((head.decode(errors="replace").lower(), body.removesuffix(b"\r\n")))
        if "application/json" not in out[0][0]:
            return error(400, "The metadata part must be JSON", "badContent")
        try:
            meta = json.loads(out[0][1])
        except ValueError:
            return error(400, "Invalid JSON payload received.", "parseError")
        media_type = out[1][0].partition("content-type:")[2].strip().split(";")[0]
        return meta, out[1][1], media_type

    def create_file(self, request: Request) -> Reply:
        user, refused = self._authorise(request, {transform.DRIVE_FILE})
        if refused:
            return refused
        parsed = self._parts(request)
        if isinstance(parsed, Reply):
            return parsed
        meta, data, media_type = parsed
        unknown = set(meta) - {"id", "name", "mimeType", "parents", "appProperties", "properties", "description"}
        if unknown:
            return error(400, f"Invalid field selection {sorted(unknown)[0]}", "invalidParameter")
        with self._state:
            file_id = meta.get("id") or "1" + secrets.token_urlsafe(24)
            if "id" in meta and self.generated.get(file_id) != user:
                return error(400, "The provided file ID is not usable.", "fileIdNotUsable", location="file.id",
                             locationType="other")
            if file_id in self.files:
                return error(409, "A file already exists with the provided ID.", "fileIdInUse")
            for parent in meta.get("parents") or []:
                if user not in self.folders.get(parent, set()):
                    return error(404, f"File not found: {parent}.", "notFound", location="fileId",
                                 locationType="parameter")
            file = {"kind": "drive#file", "id": file_id, "name": meta.get("name") or "Untitled",
                    "mimeType": meta.get("mimeType") or media_type, "parents": meta.get("parents") or ["root"],
                    "appProperties": meta.get("appProperties") or {}, "description": meta.get("description"),
                    "md5Checksum": hashlib.md5(data).hexdigest(), "size": str(len(data)), "owner": user,
                    "webViewLink": f"https://drive.google.com/file/d/{file_id}/view?usp=drivesdk"}
            self.files[file_id] = file
            self.media[file_id] = data
        return Reply(200, _pick(file, request.query.get("fields", [None])[0]))

    def get_file(self, request: Request) -> Reply:
        user, refused = self._authorise(request, {transform.DRIVE_FILE})
        if refused:
            return refused
        file_id = request.params["id"]
        with self._state:
            file = self.files.get(file_id)
        if file is None or file["owner"] != user:
            return error(404, f"File not found: {file_id}.", "notFound", location="fileId", locationType="parameter")
        return Reply(200, _pick(file, request.query.get("fields", [None])[0]))

    def create_permission(self, request: Request) -> Reply:
        user, refused = self._authorise(request, {transform.DRIVE_FILE})
        if refused:
            return refused
        file_id = request.params["id"]
        body = request.json() or {}
        if file_id not in self.files or self.files[file_id]["owner"] != user:
            return error(404, f"File not found: {file_id}.", "notFound", location="fileId", locationType="parameter")
        kind, role = body.get("type"), body.get("role")
        if kind not in ("user", "group", "domain", "anyone") or role not in ("reader", "commenter", "writer"):
            return error(400, "The permission type or role is not valid.", "invalid", location="permission")
        if kind == "domain" and not body.get("domain"):
            return error(400, "A domain must be specified for this permission type.", "required")
        pid = "anyoneWithLink" if kind == "anyone" else f"{kind}:{body.get('domain') or body.get('emailAddress')}"
        permission = {"kind": "drive#permission", "id": pid, "type": kind, "role": role}
        with self._state:
            self.permissions.setdefault(file_id, {})[pid] = {**permission, **body}
        return Reply(200, _pick(permission, request.query.get("fields", [None])[0]) or permission)

    routes = [
        ("POST", r"/token", _token),
        ("POST", r"/upload/gmail/v1/users/(?P<user>[^/]+)/messages/send", send),
        ("POST", r"/gmail/v1/users/(?P<user>[^/]+)/messages/send", send),
        ("GET", r"/gmail/v1/users/(?P<user>[^/]+)/messages", list_messages),
        ("GET", r"/drive/v3/files/generateIds", generate_ids),
        ("POST", r"/upload/drive/v3/files", create_file),
        ("GET", r"/drive/v3/files/(?P<id>[^/]+)", get_file),
        ("POST", r"/drive/v3/files/(?P<id>[^/]+)/permissions", create_permission),
    ]


SIMULATOR = GoogleSimulator
