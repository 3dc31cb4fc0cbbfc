"""A small, faithful stand-in of DocuSign (OAuth service and eSignature REST v2.1) for exactly what the
adapter uses, plus Connect messages for tests.

Follows the eSignature REST API reference (Envelopes: create, get, listStatusChanges; the envelope
definition in ../shared/vendor-specs/docusign/esignature-v2.1.envelopes-create.subset.json), DocuSign's
"JWT Grant" and "userinfo" guides, the rate-limit article (hourly limit, 30-second burst limit, the
X-RateLimit-* headers) and "HMAC security for Connect". What it does:
- `POST /oauth/token` with the JWT bearer grant: the assertion is checked with the integration's public
  key (RS256; iss = integration key, sub = the user, aud = this server's host, exp at most an hour after
  iat, scope with `signature` and `impersonation`); answers {access_token, token_type, expires_in: 3600};
  errors {error, error_description} (invalid_grant, consent_required when `consented` is False);
- `GET /oauth/userinfo`: {sub, name, email, accounts: [{account_id, is_default, account_name, base_uri}]}
  with base_uri = this server;
- bearer auth on /restapi/v2.1/accounts/{accountId}/...: an unknown or expired token is 401
  AUTHORIZATION_INVALID_TOKEN; another account is 400 USER_NOT_ACCOUNT_MEMBER (code unconfirmed);
- `POST .../envelopes`: the body is checked (keys of the envelope definition, a PDF in documentBase64, a
  signer with email, name and recipientId, sign-here tabs on a known document placed by page and
  position or anchor, an emailSubject when sent, status sent or created) and stored; 201 {envelopeId,
  uri, statusDateTime, status};
- `GET .../envelopes` (listStatusChanges): from_date required unless envelope_ids or transaction_ids are
  given; filters custom_field=name=value, transaction_ids, envelope_ids, status; include=custom_fields,
  recipients; answers {resultSetSize, totalSetSize, startPosition, endPosition, envelopes} (counts as
  strings, as DocuSign writes them);
- `GET .../envelopes/{envelopeId}`;
- limits per account: `hourly` calls per clock hour and `burst` per rolling 30 s; past them 429
  {errorCode: HOURLY_APIINVOCATION_LIMIT_EXCEEDED | BURST_APIINVOCATION_LIMIT_EXCEEDED, message} with
  X-RateLimit-Reset (Unix time of the next hour); every answer carries X-RateLimit-Limit/-Remaining/-Reset
  and X-BurstLimit-Limit/-Remaining; the base fault "429" answers the hourly limit the same way;
- `complete(envelope_id)` signs an envelope as the customer would, `connect(envelope_id)` gives the
  Connect JSON SIM message and its X-DocuSign-Signature-1 header for it.
Not modelled: templates, embedded signing, documents other than PDF, envelope updates, the legacy XML
Connect format. A repeated transactionId is not refused (what DocuSign does is unconfirmed); the
adapter's lookup is what prevents a second envelope.
"""
from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from urllib.parse import urlsplit

from invoicer.providers.simulate import Reply, Request, Simulator

from . import webhooks

ACCOUNT = "a1b2c3d4-0000-4000-8000-00000000acc7"
USER = "5e1f0000-1111-4222-8333-000000005e12"
ENVELOPE_KEYS = {"emailSubject", "emailBlurb", "documents", "recipients", "customFields", "transactionId", "status",
                 "eventNotification", "brandId", "notification", "expireAfter", "expireEnabled"}
SIGNER_KEYS = {"email", "name", "recipientId", "routingOrder", "tabs", "clientUserId", "note", "roleName"}
TAB_KEYS = {"documentId", "recipientId", "pageNumber", "xPosition", "yPosition", "anchorString", "anchorUnits",
            "anchorXOffset", "anchorYOffset", "tabLabel", "optional", "scaleValue", "anchorIgnoreIfNotPresent"}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _err(status: int, code: str, message: str, headers: dict | None = None) -> Reply:
    return Reply(status, {"errorCode": code, "message": message}, headers or {})


class _Fail(Exception):
    def __init__(self, reply: Reply):
        self.reply = reply


def _bad(code: str, message: str) -> _Fail:
    return _Fail(_err(400, code, message))


class DocuSignSimulator(Simulator):
    """DocuSign for tests and the sandbox. `envelopes[id]` holds what it was sent (with the PDF bytes)."""

    def __init__(self, integration_key: str = "sim-integration-key-0001", user_id: str = USER,
                 account_id: str = ACCOUNT, connect_key: str = "sim-connect-hmac-key", hourly: int = 3000,
                 burst: int = 500, key_bits: int = 2048):
        super().__init__()
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.integration_key, self.user_id, self.account_id = integration_key, user_id, account_id
        self.connect_key, self.hourly, self.burst = connect_key, hourly, burst
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
        self.private_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
        self.public_key = key.public_key()
        self.url = ""  # set by the sandbox or a test: the base_uri userinfo names and the JWT audience
        self._state = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock, self._state:
            self.forget()
            self.envelopes: dict[str, dict] = {}
            self.tokens_issued: dict[str, float] = {}  # access token -> expiry
            self.token_calls = 0
            self.consented = True
            self.hour_start, self.hour_count = 0.0, 0
            self.recent: deque = deque()

    # ------------------------------------------------------------ the sandbox hook

    def platform(self, url: str) -> dict:
        self.url = url
        return {"provider": "docusign", "oauth_url": url, "user_id": self.user_id, "account_id": self.account_id}

    def env(self) -> dict[str, str]:
        return {"INVOICER_DOCUSIGN_INTEGRATION_KEY": self.integration_key,
                "INVOICER_DOCUSIGN_PRIVATE_KEY": self.private_key_pem,
                "INVOICER_DOCUSIGN_CONNECT_KEY": self.connect_key}

    def tokens(self) -> None:
        return None  # the adapter makes its own JWT assertions with the integration's key

    # ------------------------------------------------------------ for tests

    def expire_tokens(self) -> None:
        with self._state:
            self.tokens_issued.clear()

    def api_calls(self, method: str | None = None, suffix: str = "") -> list[Request]:
        return [r for r in self.received if r.path.startswith("/restapi/") and (method is None or r.method == method)
                and r.path.endswith(suffix)]

    def complete(self, envelope_id: str, name: str | None = None, at: float | None = None) -> dict:
        """The signer signs: the envelope and its signer become completed."""
        when = _iso(at if at is not None else time.time())
        with self._state:
            env = self.envelopes[envelope_id]
            for s in env["recipients"]["signers"]:
                s.update(status="completed", signedDateTime=when, deliveredDateTime=when)
                if name:
                    s["name"] = name
            env.update(status="completed", completedDateTime=when, statusChangedDateTime=when)
            return env

    def connect(self, envelope_id: str, event: str = "envelope-completed", key: str | None = None
                ) -> tuple[bytes, dict]:
        """The Connect JSON SIM message for an envelope's current state, and its signature header."""
        with self._state:
            env = self.envelopes[envelope_id]
            summary = {**self._summary(env, {"custom_fields", "recipients"}), "emailSubject": env["emailSubject"],
                       "completedDateTime": env.get("completedDateTime")}
        message = {"event": event, "apiVersion": "v2.1", "uri": f"/restapi/v2.1/accounts/{env['account']}"
                   f"/envelopes/{envelope_id}", "retryCount": 0, "configurationId": 10000001,
                   "generatedDateTime": _iso(time.time()),
                   "data": {"accountId": env["account"], "userId": self.user_id, "envelopeId": envelope_id,
                            "envelopeSummary": summary}}
        body = json.dumps(message).encode()
        return body, {"Content-Type": "application/json", **webhooks.sign(body, key or self.connect_key)}

    # ------------------------------------------------------------ plumbing

    def _limits(self, now: float) -> tuple[dict, Reply | None]:
        """Count one API call for the account; (headers, the 429 if over a limit)."""
        hour = now - now % 3600
        if hour != self.hour_start:
            self.hour_start, self.hour_count = hour, 0
        while self.recent and self.recent[0] <= now - 30:
            self.recent.popleft()
        reset = str(int(hour + 3600))
        over = None
        if self.hour_count >= self.hourly:
            over = _err(429, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                        f"The maximum number of hourly API invocations has been exceeded. The hourly limit is "
                        f"{self.hourly}.")
        elif len(self.recent) >= self.burst:
            over = _err(429, "BURST_APIINVOCATION_LIMIT_EXCEEDED",
                        f"The maximum number of burst API invocations has been exceeded. The burst limit is "
                        f"{self.burst}.")
        else:
            self.hour_count += 1
            self.recent.append(now)
        headers = {"X-RateLimit-Limit": str(self.hourly), "X-RateLimit-Remaining": str(self.hourly - self.hour_count),
                   "X-RateLimit-Reset": reset, "X-BurstLimit-Limit": str(self.burst),
                   "X-BurstLimit-Remaining": str(self.burst - len(self.recent))}
        if over is not None:
            over.headers.update(headers)
        return headers, over

    def rate_limited(self, request: Request) -> Reply:
        now = time.time()
        return _err(429, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
                    f"The maximum number of hourly API invocations has been exceeded. The hourly limit is "
                    f"{self.hourly}.", {"X-RateLimit-Reset": str(int(now - now % 3600 + 3600)),
                                        "X-RateLimit-Remaining": "0"})

    def handle(self, request: Request) -> Reply:
        if request.path == "/oauth/token" and request.method == "POST":
            return self._token(request)
        value = request.headers.get("authorization", "")
        token = value[7:].strip() if value.startswith("Bearer ") else ""
        with self._state:
            if self.tokens_issued.get(token, 0) <= time.time():
                return _err(401, "AUTHORIZATION_INVALID_TOKEN",
                            "The access token provided is expired, revoked or malformed.")
            if request.path == "/oauth/userinfo" and request.method == "GET":
                return self._userinfo()
            if not request.path.startswith("/restapi/"):
                return _err(404, "RESOURCE_NOT_FOUND", f"no route {request.method} {request.path}")
            headers, over = self._limits(time.time())
            if over is not None:
                return over
            try:
                reply = Simulator.handle(self, request)
            except _Fail as fail:
                reply = fail.reply
            reply.headers.update(headers)
            return reply

    def _token(self, request: Request) -> Reply:
        import jwt

        form = {k: v[0] for k, v in request.form().items()}
        with self._state:
            self.token_calls += 1
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"],
                                audience=urlsplit(self.url).netloc or None,
                                options={"require": ["exp", "iat", "iss", "sub", "aud"]})
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant", "error_description": "no_valid_keys_or_signatures"})
        if claims["iss"] != self.integration_key:
            return Reply(400, {"error": "invalid_grant", "error_description": "issuer_not_found"})
        if claims["sub"] != self.user_id:
            return Reply(400, {"error": "invalid_grant", "error_description": "user_not_found"})
        if claims["exp"] - claims["iat"] > 3600:
            return Reply(400, {"error": "invalid_grant", "error_description": "invalid_request"})
        if not {"signature", "impersonation"} <= set(str(claims.get("scope") or "").split()):
            return Reply(400, {"error": "invalid_scope"})
        if not self.consented:
            return Reply(400, {"error": "consent_required"})
        token = "eyJ0eXAiOiJNVCJ9.sim." + uuid.uuid4().hex
        with self._state:
            self.tokens_issued[token] = time.time() + 3600
        return Reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _userinfo(self) -> Reply:
        return Reply(200, {"sub": self.user_id, "name": "Integration User", "email": "integration@acme.example",
                           "accounts": [{"account_id": self.account_id, "is_default": True,
                                         "account_name": "Acme Heating & Cooling", "base_uri": self.url}]})

    # ------------------------------------------------------------ envelopes

    def _account(self, request: Request) -> str:
        account = request.params["account"]
        if account != self.account_id:
            raise _bad("USER_NOT_ACCOUNT_MEMBER", "The user is not a member of the specified account.")
        return account

    def _create(self, request: Request) -> Reply:
        account = self._account(request)
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise _bad("INVALID_REQUEST_BODY", "The request body is missing or improperly formatted.") from None
        if not isinstance(body, dict):
            raise _bad("INVALID_REQUEST_BODY", "The request body is missing or improperly formatted.")
        if set(body) - ENVELOPE_KEYS:
            raise _bad("INVALID_REQUEST_BODY", f"Unexpected property {sorted(set(body) - ENVELOPE_KEYS)[0]}.")
        status = body.get("status") or "created"
        if status not in ("sent", "created"):
            raise _bad("INVALID_ENVELOPE_STATUS", f"The envelope status {status!r} is not valid on create.")
        docs = {}
        for d in body.get("documents") or []:
            try:
                data = base64.b64decode(d.get("documentBase64") or "", validate=True)
            except (binascii.Error, ValueError):
                raise _bad("INVALID_REQUEST_BODY", "documentBase64 is not valid base64.") from None
            if not d.get("documentId") or not d.get("name") or not data.startswith(b"%PDF"):
                raise _bad("FORMAT_CONVERSION_ERROR", "The data could not be converted: a PDF with documentId and "
                                                      "name is expected.")
            docs[str(d["documentId"])] = data
        signers = (body.get("recipients") or {}).get("signers") or []
        if status == "sent":
            if not docs:
                raise _bad("ENVELOPE_IS_INCOMPLETE", "The Envelope is not Complete. A Complete Envelope Requires "
                                                     "Documents, Recipients, Tabs, and a Subject Line.")
            if not signers:
                raise _bad("ENVELOPE_IS_INCOMPLETE", "The Envelope is not Complete: no recipients.")
            if not str(body.get("emailSubject") or "").strip():
                raise _bad("ENVELOPE_IS_INCOMPLETE", "The Envelope is not Complete: no subject line.")
        if len(str(body.get("emailSubject") or "")) > 100:
            raise _bad("INVALID_EMAIL_SUBJECT", "The email subject is longer than 100 characters.")
        ids = set()
        for s in signers:
            if set(s) - SIGNER_KEYS:
                raise _bad("INVALID_REQUEST_BODY", f"Unexpected signer property {sorted(set(s) - SIGNER_KEYS)[0]}.")
            if "@" not in str(s.get("email") or ""):
                raise _bad("INVALID_EMAIL_ADDRESS_FOR_RECIPIENT", "The email address for the recipient is invalid.")
            if not s.get("name") or not s.get("recipientId") or s["recipientId"] in ids:
                raise _bad("INVALID_RECIPIENT_ID" if s.get("name") else "RECIPIENT_NAME_REQUIRED",
                           "Each signer needs a name and a unique recipientId.")
            ids.add(s["recipientId"])
            tabs = (s.get("tabs") or {}).get("signHereTabs") or []
            if status == "sent" and not tabs:
                raise _bad("ENVELOPE_IS_INCOMPLETE", "The Envelope is not Complete: a signer has no tabs.")
            for t in tabs:
                if set(t) - TAB_KEYS or str(t.get("documentId")) not in docs:
                    raise _bad("INVALID_REQUEST_BODY", "A sign-here tab names an unknown property or document.")
                if not t.get("anchorString") and not all(str(t.get(k) or "").isdigit()
                                                         for k in ("pageNumber", "xPosition", "yPosition")):
                    raise _bad("INVALID_TAB_POSITION", "A tab needs pageNumber, xPosition and yPosition, or an "
                                                       "anchorString.")
        for f in (body.get("customFields") or {}).get("textCustomFields") or []:
            if len(str(f.get("value") or "")) > 100:
                raise _bad("INVALID_REQUEST_BODY", "A custom field value is longer than 100 characters.")
        now = _iso(time.time())
        envelope_id = str(uuid.uuid4())
        with self._state:
            self.envelopes[envelope_id] = {
                "envelopeId": envelope_id, "account": account, "status": status, "createdDateTime": now,
                "sentDateTime": now if status == "sent" else None, "statusChangedDateTime": now,
                "emailSubject": body.get("emailSubject"), "transactionId": body.get("transactionId"),
                "customFields": body.get("customFields") or {"textCustomFields": []},
                "recipients": {"signers": [{**s, "status": "sent" if status == "sent" else "created"}
                                           for s in signers]},
                "documents": docs, "created_at": time.time()}
        return Reply(201, {"envelopeId": envelope_id, "uri": f"/envelopes/{envelope_id}", "statusDateTime": now,
                           "status": status})

    def _summary(self, env: dict, include: set[str]) -> dict:
        out = {k: env[k] for k in ("envelopeId", "status", "createdDateTime", "sentDateTime",
                                   "statusChangedDateTime", "emailSubject", "transactionId") if env.get(k)}
        out["envelopeUri"] = f"/envelopes/{env['envelopeId']}"
        if "custom_fields" in include:
            out["customFields"] = env["customFields"]
        if "recipients" in include:
            out["recipients"] = {"signers": [{k: v for k, v in s.items() if k != "tabs"}
                                             for s in env["recipients"]["signers"]]}
        return out

    def _list(self, request: Request) -> Reply:
        account = self._account(request)
        q = {k: v[0] for k, v in request.query.items()}
        ids = [x for x in (q.get("envelope_ids") or "").split(",") if x]
        transactions = [x for x in (q.get("transaction_ids") or "").split(",") if x]
        start = None
        if q.get("from_date"):
            try:
                start = datetime.fromisoformat(q["from_date"].replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise _bad("INVALID_REQUEST_PARAMETER", "from_date is not a valid date.") from None
        elif not (ids or transactions):
            raise _bad("INVALID_REQUEST_PARAMETER", "The request contained at least one invalid parameter. "
                                                    "A from_date is required.")
        field = value = None
        if q.get("custom_field"):
            field, _, value = q["custom_field"].partition("=")
        include = set((q.get("include") or "").split(","))
        statuses = set(filter(None, (q.get("status") or "").split(",")))
        found = []
        with self._state:
            for env in sorted(self.envelopes.values(), key=lambda e: e["created_at"]):
                if env["account"] != account or (start is not None and env["created_at"] < start):
                    continue
                if ids and env["envelopeId"] not in ids or transactions and env["transactionId"] not in transactions:
                    continue
                if statuses and env["status"] not in statuses:
                    continue
                if field is not None and not any(f.get("name") == field and str(f.get("value")) == value
                                                 for f in env["customFields"].get("textCustomFields") or []):
                    continue
                found.append(self._summary(env, include))
        out = {"resultSetSize": str(len(found)), "totalSetSize": str(len(found)), "startPosition": "0",
               "endPosition": str(max(0, len(found) - 1))}
        if found:
            out["envelopes"] = found
        return Reply(200, out)

    def _get(self, request: Request) -> Reply:
        self._account(request)
        with self._state:
            env = self.envelopes.get(request.params["envelope"])
            if env is None:
                return _err(404, "ENVELOPE_DOES_NOT_EXIST", "The envelope specified either does not exist or you "
                                                            "have no rights to it.")
            include = set((request.query.get("include") or [""])[0].split(","))
            return Reply(200, self._summary(env, include))

    _ACC = r"/restapi/v2\.1/accounts/(?P<account>[\w-]+)"
    routes = [
        ("POST", rf"{_ACC}/envelopes", _create),
        ("GET", rf"{_ACC}/envelopes", _list),
        ("GET", rf"{_ACC}/envelopes/(?P<envelope>[\w-]+)", _get),
    ]


SIMULATOR = DocuSignSimulator
