"""A small, faithful stand-in of Twilio's Messages API (2010-04-01) for what the adapter uses.

Follows https://www.twilio.com/docs/messaging/api/message-resource, /docs/usage/webhooks and the spec in
../shared/vendor-specs/twilio/ (response fields, status enum):
- Basic auth with the account SID + auth token, or an API key SID + secret; else 401 with Twilio's
  body (code 20003);
- POST .../Messages.json (form): `To` required and E.164 (else 400 code 21211), one of `From` /
  `MessagingServiceSid` (else 21603), `Body` or `MediaUrl` (else 21602); 201 with the message
  resource, status `queued`, `num_segments` as Twilio computes it (GSM-7 / UCS-2) as a string ("0"
  when a Messaging Service sends, as Twilio documents);
- GET .../Messages.json with To / From / PageSize filters, newest first, Twilio's page envelope;
  GET .../Messages/{Sid}.json;
- 429 with code 20429 ("Too Many Requests") as a fault;
- `advance(sid, status)` moves a message on and returns the StatusCallback Twilio would post (URL,
  form parameters, X-Twilio-Signature), signed with the auth token.
"""
from __future__ import annotations

import base64
import itertools
import re
import secrets
from email.utils import formatdate
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from invoicer import notify
from invoicer.providers.simulate import Reply, Request, Simulator

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"code": code, "message": message,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})


class TwilioSimulator(Simulator):
    def __init__(self):
        super().__init__()
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.api_key, self.api_secret = "SK" + secrets.token_hex(16), secrets.token_urlsafe(24)
        self.messages: dict[str, dict] = {}
        self.callbacks: dict[str, str] = {}
        self._seq = itertools.count(1)

    def rate_limited(self, request: Request) -> Reply:
        return _error(429, 20429, "Too Many Requests")

    def _auth(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return (user, password) in ((self.account_sid, self.auth_token), (self.api_key, self.api_secret))

    def _guard(self, request: Request) -> Reply | None:
        if not self._auth(request):
            return _error(401, 20003, "Authenticate")
        if request.params["account"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        return None

    def _resource(self, m: dict) -> dict:
        return {k: v for k, v in m.items() if not k.startswith("_")}

    def create(self, request: Request) -> Reply:
        if (denied := self._guard(request)) is not None:
            return denied
        form = {k: v[-1] for k, v in request.form().items()}
        to, sender, service = form.get("To", ""), form.get("From"), form.get("MessagingServiceSid")
        if not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender and not service:
            return _error(400, 21603, "The 'From' phone number is required to send a message")
        if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
            return _error(400, 21602, "Message body is required.")
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        body = form.get("Body", "")
        m = {"sid": sid, "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
             "direction": "outbound-api", "from": sender or None, "to": to, "messaging_service_sid": service,
             "status": "queued" if sender else "accepted", "num_segments": "0" if service else str(notify.segments(body)["segments"]),
             "num_media": str(len(request.form().get("MediaUrl", []))), "date_created": now, "date_updated": now,
             "date_sent": None, "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
             "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
             "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
             "_seq": next(self._seq)}
        with self.lock:
            self.messages[sid] = m
            if form.get("StatusCallback"):
                self.callbacks[sid] = form["StatusCallback"]
        return Reply(201, self._resource(m))

    def list(self, request: Request) -> Reply:
        if (denied := self._guard(request)) is not None:
            return denied
        q = {k: v[-1] for k, v in request.query.items()}
        size = min(int(q.get("PageSize", 50)), 1000)
        with self.lock:
            found = [m for m in sorted(self.messages.values(), key=lambda m: -m["_seq"])
                     if q.get("To") in (None, m["to"]) and q.get("From") in (None, m["from"])]
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return Reply(200, {"messages": [self._resource(m) for m in found[:size]], "end": min(size, len(found)) - 1,
                           "first_page_uri": f"{uri}?PageSize={size}&Page=0", "next_page_uri": None, "page": 0,
                           "page_size": size, "previous_page_uri": None, "start": 0, "uri": f"{uri}?{urlencode(q)}"})

    def fetch(self, request: Request) -> Reply:
        if (denied := self._guard(request)) is not None:
            return denied
        m = self.messages.get(request.params["sid"])
        return Reply(200, self._resource(m)) if m else _error(404, 20404, "The requested resource was not found")

    routes = [
        ("POST", r"/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json", create),
        ("GET", r"/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json", list),
        ("GET", r"/2010-04-01/Accounts/(?P<account>AC\w+)/Messages/(?P<sid>SM\w+)\.json", fetch),
    ]

    # ------------------------------------------------------------ test helpers

    def advance(self, sid: str, status: str, error_code: str | None = None, url: str | None = None,
                ) -> tuple[str, dict, dict]:
        """The message moves to `status`; the callback Twilio would post: (url, form params, headers)."""
        with self.lock:
            m = self.messages[sid]
            m["status"] = status
            if error_code:
                m["error_code"] = int(error_code)
        url = url or self.callbacks[sid]
        params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "From": m["from"] or "",
                  "MessageSid": sid, "MessageStatus": status, "SmsSid": sid, "SmsStatus": status, "To": m["to"]}
        if error_code:
            params["ErrorCode"] = error_code
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        return url, params, {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}

    def channel(self, url: str, **extra) -> dict:
        """The channels.sms entry for a tenants file pointing at this simulator."""
        return {"provider": "twilio", "base_url": url, "account_sid": self.account_sid,
                "auth_token_env": "INVOICER_SANDBOX_TWILIO_TOKEN", "from": "+14075550199", **extra}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_TWILIO_TOKEN": self.auth_token}
