"""A small, faithful stand-in of PayPal's REST API for exactly what the adapter uses (tests and sandbox).

Endpoints (same paths as PayPal): POST /v1/oauth2/token, POST /v2/invoicing/invoices, GET
/v2/invoicing/invoices/{id}, POST /v2/invoicing/invoices/{id}/send, POST /v2/invoicing/search-invoices,
POST /v1/notifications/verify-webhook-signature, and the payer's page /invoice/p/{id}.

What it reproduces, and from where (developer.paypal.com/docs/api/invoicing/v2/, /api/rest/authentication/,
/api/rest/webhooks/, read 2026-11; the specs in ../shared/vendor-specs/paypal/):
- OAuth 2 client credentials: Basic client id:secret, `grant_type=client_credentials`; the token lives
  `token_ttl` seconds (PayPal: 32400); a wrong client gets 401 `invalid_client`; an unknown or
  expired bearer token gets 401 AUTHENTICATION_FAILURE;
- request bodies checked against the specs (invoice, notification, search_data,
  verify_webhook_signature: types, patterns, lengths, readOnly fields, undeclared properties) when the
  files are there, refused as 400 INVALID_REQUEST with PayPal's `details[]`;
- error bodies `{name, message, debug_id, details: [{field, issue, description}], links}`;
- rate limit: `rate_limit` requests per second per token (PayPal publishes no figure), 429
  RATE_LIMIT_REACHED;
- invoices: created as DRAFT; `Prefer: return=representation` answers 201 with the invoice, else with
  a link; amounts = sum of quantity x unit_amount (rounded half up to the currency's decimals:
  unconfirmed), less the invoice-level discount (amount or percent), plus the custom amount; item taxes
  and item discounts are not modelled (refused as unsupported); one currency per invoice; a
  second invoice with the same `invoice_number` -> 422 DUPLICATE_INVOICE_NUMBER (issue name from
  PayPal's troubleshooting pages, status unconfirmed);
- send: a DRAFT becomes SENT with `detail.metadata.recipient_view_url` (served here) and answers the
  payer-view link; sending again -> 422 INVOICE_ALREADY_SENT;
- search by exact invoice number (PayPal's matching rule is not documented), newest first;
- webhooks: `deliver()` signs an event the way this simulator checks it: the signature covers
  transmission id, time, webhook id and the CRC32 of the exact event bytes (PayPal's real scheme is an
  RSA signature over the same four values, checked against its certificate). verify-webhook-signature
  recomputes it over the `webhook_event` bytes exactly as the request carries them, so a re-serialised
  event fails as it does at PayPal.
Test helpers: `pay()`, `cancel()` change an invoice and return the signed delivery; `event()`,
`deliver()` build others; `fault_on()` aims a fault.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import secrets
import string
import threading
import time
import zlib
from collections import deque
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from invoicer.providers import openapi
from invoicer.providers.paypal import transform
from invoicer.providers.simulate import Reply, Request, Simulator

INVOICING = openapi.SPECS / "paypal" / "invoicing_v2.json"
NOTIFICATIONS = openapi.SPECS / "paypal" / "notifications_webhooks_v1.json"
_ALNUM = string.ascii_uppercase + string.digits
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-sim"


class _Fail(Exception):
    def __init__(self, reply: Reply):
        super().__init__(str(reply.body))
        self.reply = reply


def error(status: int, name: str, message: str, issue: str | None = None, field: str | None = None,
          description: str | None = None) -> Reply:
    body: dict = {"name": name, "message": message, "debug_id": secrets.token_hex(7)}
    if issue:
        body["details"] = [{k: v for k, v in {"field": field, "location": "body", "issue": issue,
                                               "description": description or message}.items() if v}]
    body["links"] = [{"href": "https://developer.paypal.com/docs/api/invoicing/#errors", "rel": "information_link"}]
    return Reply(status, body)


def _invalid(issue: str, field: str, description: str) -> _Fail:
    return _Fail(error(400, "INVALID_REQUEST", "Request is not well-formed, syntactically incorrect, or violates "
                                               "schema.", issue, field, description))


def _business(issue: str, description: str, field: str | None = None) -> _Fail:
    return _Fail(error(422, "UNPROCESSABLE_ENTITY", "The requested action could not be performed, semantically "
                                                    "incorrect, or failed business validation.", issue, field,
                       description))


def _now(clock) -> str:
    return datetime.fromtimestamp(clock(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PayPalSimulator(Simulator):
    """PayPal for tests and the sandbox. `invoices` holds what it was sent; `emailed` the ids PayPal emailed."""

    def __init__(self, client_id: str = "AYsim-client-id", client_secret: str = "EFsim-client-secret",
                 webhook_id: str = "8PT597110X687430LKGECATA", clock=time.time, spec: bool = True):
        super().__init__()
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.spec = spec and INVOICING.exists() and NOTIFICATIONS.exists()
        self._signing_key = secrets.token_bytes(32)  # stands in for PayPal's certificate key
        self._state = threading.RLock()
        self.reset(clock)

    def reset(self, clock=time.time) -> None:
        with self.lock, self._state:
            self.forget()
            self.clock = clock
            self.token_ttl = 32400
            self.rate_limit = 20
            self.honour_prefer = True  # False: create answers with a link only, as without the Prefer header
            self.access_tokens: dict[str, float] = {}  # token -> expires at
            self.invoices: dict[str, dict] = {}
            self.emailed: list[str] = []
            self.failures: deque[Reply] = deque()
            self._windows.clear()
            self._seq = itertools.count(1)

    # ------------------------------------------------------------ the sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "paypal", "base_url": url, "client_id_env": "INVOICER_SANDBOX_PAYPAL_CLIENT_ID",
                "client_secret_env": "INVOICER_SANDBOX_PAYPAL_CLIENT_SECRET", "webhook_id": self.webhook_id,
                "account": "sandbox"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_PAYPAL_CLIENT_ID": self.client_id,
                "INVOICER_SANDBOX_PAYPAL_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> None:
        return None  # client credentials come from the environment (env())

    # ------------------------------------------------------------ plumbing

    def fail_with(self, status: int, name: str, message: str = "simulated", issue: str | None = None) -> None:
        """The next authenticated API request gets this error."""
        self.failures.append(error(status, name, message, issue))

    def rate_limited(self, request: Request) -> Reply:
        return error(429, "RATE_LIMIT_REACHED", "Too many requests. Blocked due to rate limiting.")

    def expire_tokens(self) -> None:
        with self._state:
            self.access_tokens = {t: 0.0 for t in self.access_tokens}

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path.startswith("/invoice/p/"):
            return Simulator.handle(self, request)  # the payer's page is public
        if request.path == "/v1/oauth2/token":
            return self._token(request)
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        with self._state:
            alive = self.access_tokens.get(token, 0.0) > self.clock()
        if not alive:
            return Reply(401, {"name": "AUTHENTICATION_FAILURE", "message": "Authentication failed due to invalid "
                               "authentication credentials or a missing Authorization header.",
                               "links": [{"href": "https://developer.paypal.com/docs/api/overview/#error",
                                          "rel": "information_link"}]})
        if self.over_limit(token, self.rate_limit, self.clock()):
            return self.rate_limited(request)
        with self._state:
            if self.failures:
                return self.failures.popleft()
            try:
                return Simulator.handle(self, request)
            except _Fail as fail:
                return fail.reply

    def _token(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") \
                else ("", "", "")
        except ValueError:
            user = password = ""
        if (user, password) != (self.client_id, self.client_secret):
            return Reply(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if request.form().get("grant_type") != ["client_credentials"]:
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"})
        token = "A21AA" + secrets.token_urlsafe(40)
        with self._state:
            self.access_tokens[token] = self.clock() + self.token_ttl
        return Reply(200, {"scope": "https://uri.paypal.com/services/invoicing", "access_token": token,
                           "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": self.token_ttl,
                           "nonce": f"{_now(self.clock)}{secrets.token_hex(8)}"})

    def _body(self, request: Request, schema: str | None, spec=INVOICING):
        try:
            body = request.json()
        except ValueError:
            raise _invalid("MALFORMED_REQUEST_JSON", "/", "The request JSON is not well formed.") from None
        if self.spec and schema:
            checked = body
            if schema == "verify_webhook_signature" and isinstance(body, dict):
                checked = {**body, "webhook_event": {}}  # PayPal's own event, forwarded untouched (its spec
                # marks every event field read-only, as they are for us)
            extra = openapi.unknown(str(spec), schema, checked)
            if extra:
                raise _invalid("UNKNOWN_FIELD", "/" + extra[0], f"The field {extra[0]} is not defined.")
            problems = openapi.errors(openapi.validator(str(spec), schema), checked)
            if problems:
                where, _, what = problems[0].partition(": ")
                issue = "MISSING_REQUIRED_PARAMETER" if "required" in what else "INVALID_PARAMETER_SYNTAX"
                raise _invalid(issue, "/" + where, what)
        return body

    # ------------------------------------------------------------ invoices

    def _dec(self, m, field: str, currency: str) -> Decimal:
        if not isinstance(m, dict) or m.get("currency_code") != currency:
            raise _business("CURRENCY_MISMATCH", f"All amounts must be in {currency}.", field)
        try:
            value = Decimal(m.get("value"))
        except (TypeError, InvalidOperation):
            raise _invalid("INVALID_PARAMETER_SYNTAX", field, "Invalid amount.") from None
        places = transform.decimals(currency)
        if value != value.quantize(Decimal(1).scaleb(-places)):
            raise _invalid("INVALID_PARAMETER_SYNTAX", field, f"{currency} supports {places} decimal places.")
        return value

    def _amounts(self, inv: dict) -> None:
        """PayPal's figures for the invoice as sent: item total, discount, custom, total, due."""
        cur = inv["detail"]["currency_code"]
        q = Decimal(1).scaleb(-transform.decimals(cur))
        item_total = Decimal(0)
        for i, item in enumerate(inv["items"]):
            if item.get("tax") or item.get("discount"):
                raise _business("UNSUPPORTED", "This simulator does not model item taxes or discounts.", f"/items/{i}")
            line = Decimal(item["quantity"]) * self._dec(item["unit_amount"], f"/items/{i}/unit_amount", cur)
            item_total += line.quantize(q, rounding=ROUND_HALF_UP)
            item.setdefault("id", "ITEM-" + "".join(secrets.choice(_ALNUM) for _ in range(17)))
        breakdown = (inv.get("amount") or {}).get("breakdown") or {}
        disc = (breakdown.get("discount") or {}).get("invoice_discount") or {}
        if "amount" in disc:
            discount = self._dec(disc["amount"], "/amount/breakdown/discount/invoice_discount/amount", cur)
        else:
            discount = (item_total * Decimal(disc.get("percent") or 0) / 100).quantize(q, rounding=ROUND_HALF_UP)
        custom = breakdown.get("custom") or {}
        extra = self._dec(custom["amount"], "/amount/breakdown/custom/amount", cur) if custom.get("amount") else 0
        total = item_total - discount + extra
        if total < 0:
            raise _business("INVALID_TOTAL", "The total amount for the invoice cannot be negative.", "/amount")
        money = lambda v: {"currency_code": cur, "value": format(Decimal(v).quantize(q), "f")}  # noqa: E731
        out = {"item_total": money(item_total), "tax_total": money(0)}
        if discount:
            out["discount"] = {"invoice_discount": {**disc, "amount": money(discount)}}
        if custom:
            out["custom"] = {**custom, "amount": money(extra)}
        inv["amount"] = {**money(total), "breakdown": out}
        inv["due_amount"] = money(total)
        inv["payments"] = {"paid_amount": money(0), "transactions": []}

    def _links(self, inv: dict, host: str) -> list[dict]:
        base = f"http://{host}/v2/invoicing/invoices/{inv['id']}"
        links = [{"href": base, "rel": "self", "method": "GET"}]
        if inv["status"] == "DRAFT":
            links.append({"href": f"{base}/send", "rel": "send", "method": "POST"})
        if inv["detail"]["metadata"].get("recipient_view_url"):
            links.append({"href": inv["detail"]["metadata"]["recipient_view_url"], "rel": "payer-view",
                          "method": "GET"})
        return links

    def _view(self, inv: dict, request: Request) -> dict:
        out = {k: copy.deepcopy(v) for k, v in inv.items() if k != "seq"}
        out["links"] = self._links(inv, request.headers.get("host", "127.0.0.1"))
        return out

    def _create(self, request: Request) -> Reply:
        inv = copy.deepcopy(self._body(request, "invoice"))
        detail = inv.get("detail") or {}
        if not inv.get("items"):
            raise _invalid("MISSING_REQUIRED_PARAMETER", "/items", "The invoice must have at least one item.")
        number = detail.get("invoice_number") or f"{next(self._seq):04d}"
        if any(i["detail"]["invoice_number"] == number for i in self.invoices.values()):
            raise _business("DUPLICATE_INVOICE_NUMBER", "Invoice number is already used by another invoice.",
                            "/detail/invoice_number")
        now = _now(self.clock)
        detail.update(invoice_number=number, invoice_date=detail.get("invoice_date") or now[:10],
                      metadata={"create_time": now, "created_by_flow": "REGULAR_SINGLE"})
        inv.update(id="INV2-" + "-".join("".join(secrets.choice(_ALNUM) for _ in range(4)) for _ in range(4)),
                   status="DRAFT", detail=detail, seq=next(self._seq))
        self._amounts(inv)
        self.invoices[inv["id"]] = inv
        if self.honour_prefer and "return=representation" in request.headers.get("prefer", ""):
            return Reply(201, self._view(inv, request))
        return Reply(201, self._links(inv, request.headers.get("host", "127.0.0.1"))[0])

    def _invoice(self, ident: str) -> dict:
        inv = self.invoices.get(ident)
        if inv is None:
            raise _Fail(error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
                              "INVALID_RESOURCE_ID",
                              "invoice_id", "Requested resource ID was not found."))
        return inv

    def _get(self, request: Request) -> Reply:
        return Reply(200, self._view(self._invoice(request.params["id"]), request))

    def _send(self, request: Request) -> Reply:
        inv = self._invoice(request.params["id"])
        note = self._body(request, "notification") or {}
        if inv["status"] != "DRAFT":
            raise _business("INVOICE_ALREADY_SENT", "Invoice already sent.")
        view = f"http://{request.headers.get('host', '127.0.0.1')}/invoice/p/#{inv['id'].replace('INV2-', '')}"
        inv["status"] = "SENT"
        inv["detail"]["metadata"].update(first_sent_time=_now(self.clock), last_sent_time=_now(self.clock),
                                         recipient_view_url=view)
        if note.get("send_to_recipient", True):
            self.emailed.append(inv["id"])
        return Reply(200, {"href": view, "rel": "payer-view", "method": "GET"})

    def _search(self, request: Request) -> Reply:
        flt = self._body(request, "search_data")
        found = [i for i in self.invoices.values()
                 if "invoice_number" not in flt or i["detail"]["invoice_number"] == flt["invoice_number"]]
        found.sort(key=lambda i: i["seq"], reverse=True)
        size = int((request.query.get("page_size") or ["20"])[0])
        page = int((request.query.get("page") or ["1"])[0])
        items = found[(page - 1) * size: page * size]
        return Reply(200, {"items": [self._view(i, request) for i in items], "links": []})

    def _payer_page(self, request: Request) -> Reply:
        return Reply(200, "<html><body>PayPal invoice (simulated)</body></html>", {"Content-Type": "text/html"})

    # ------------------------------------------------------------ webhooks

    def _signature(self, transmission_id: str, at: str, webhook_id: str, event_bytes: bytes) -> str:
        message = f"{transmission_id}|{at}|{webhook_id}|{zlib.crc32(event_bytes)}".encode()
        # hex, not PayPal's base64: the spec's pattern for transmission_sig wants a word character first
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _verify(self, request: Request) -> Reply:
        body = self._body(request, "verify_webhook_signature", NOTIFICATIONS)
        text = request.body.decode()
        at = text.rfind('"webhook_event"')
        if at < 0:
            raise _invalid("MISSING_REQUIRED_PARAMETER", "/webhook_event", "webhook_event is required.")
        try:
            colon = text.index(":", at) + 1
            start = colon + len(text[colon:]) - len(text[colon:].lstrip())
            _, end = json.JSONDecoder().raw_decode(text, start)
        except ValueError:
            raise _invalid("MISSING_REQUIRED_PARAMETER", "/webhook_event", "webhook_event is required.") from None
        raw = text[start:end].encode()  # the event exactly as this request carries it
        expected = self._signature(body.get("transmission_id", ""), body.get("transmission_time", ""),
                                   body.get("webhook_id", ""), raw)
        ok = (body.get("webhook_id") == self.webhook_id and body.get("cert_url") == CERT_URL
              and body.get("auth_algo") == "SHA256withRSA"
              and hmac.compare_digest(expected, body.get("transmission_sig", "")))
        return Reply(200, {"verification_status": "SUCCESS" if ok else "FAILURE"})

    def event(self, event_type: str, invoice_id: str) -> dict:
        with self._state:
            inv = {k: copy.deepcopy(v) for k, v in self._invoice(invoice_id).items() if k != "seq"}
        return {"id": "WH-" + "".join(secrets.choice(_ALNUM) for _ in range(17)), "event_version": "1.0",
                "create_time": _now(self.clock), "resource_type": "invoices", "event_type": event_type,
                "summary": f"An invoice event: {event_type}", "resource": {"invoice": inv}}

    def deliver(self, event: dict) -> tuple[bytes, dict]:
        """The body and headers PayPal would POST to the webhook's URL for this event."""
        body = json.dumps(event, indent=1).encode()  # PayPal's own spacing is not ours: kept byte for byte
        tid, at = secrets.token_hex(16), _now(self.clock)
        return body, {"PAYPAL-TRANSMISSION-ID": tid, "PAYPAL-TRANSMISSION-TIME": at,
                      "PAYPAL-TRANSMISSION-SIG": self._signature(tid, at, self.webhook_id, body),
                      "PAYPAL-CERT-URL": CERT_URL, "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                      "Content-Type": "application/json"}

    def pay(self, invoice_id: str, amount: Decimal | str | None = None) -> tuple[bytes, dict]:
        """Record a payment (all that is due, or `amount`); the signed delivery it makes."""
        with self._state:
            inv = self._invoice(invoice_id)
            if inv["status"] not in ("SENT", "UNPAID", "PARTIALLY_PAID"):
                raise ValueError(f"{invoice_id} is {inv['status']}")
            due = Decimal(inv["due_amount"]["value"])
            got = due if amount is None else min(Decimal(amount), due)
            paid = Decimal(inv["payments"]["paid_amount"]["value"]) + got
            fmt = lambda v: format(v, "f")  # noqa: E731
            inv["payments"]["paid_amount"]["value"] = fmt(paid)
            inv["payments"]["transactions"].append({"payment_id": secrets.token_hex(8).upper(), "method": "PAYPAL",
                                                    "amount": {**inv["due_amount"], "value": fmt(got)}})
            inv["due_amount"]["value"] = fmt(due - got)
            inv["status"] = "PAID" if due - got == 0 else "PARTIALLY_PAID"
            kind = f"INVOICING.INVOICE.{inv['status']}"
        return self.deliver(self.event(kind, invoice_id))

    def cancel(self, invoice_id: str) -> tuple[bytes, dict]:
        with self._state:
            self._invoice(invoice_id)["status"] = "CANCELLED"
        return self.deliver(self.event("INVOICING.INVOICE.CANCELLED", invoice_id))

    routes = [
        ("POST", r"/v2/invoicing/invoices", _create),
        ("GET", r"/v2/invoicing/invoices/(?P<id>[^/]+)", _get),
        ("POST", r"/v2/invoicing/invoices/(?P<id>[^/]+)/send", _send),
        ("POST", r"/v2/invoicing/search-invoices", _search),
        ("POST", r"/v1/notifications/verify-webhook-signature", _verify),
        ("GET", r"/invoice/p/(?P<id>.*)", _payer_page),
    ]


SIMULATOR = PayPalSimulator
