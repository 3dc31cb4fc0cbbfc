"""A small, faithful stand-in of the Stripe API for exactly what the adapter uses.

Follows https://docs.stripe.com/api (customers, invoices, invoiceitems, search), /idempotency,
/rate-limits, /error-handling and the response shapes of stripe/openapi fixtures3.json (see
../shared/vendor-specs/stripe/). What it does:
- auth: `Authorization: Bearer <key>` (or Basic with the key as user); a missing or unknown key gets
  Stripe's 401 body;
- form-encoded bodies in Stripe's bracket notation; every request's parameters (POST bodies, GET query
  strings) checked against Stripe's own declaration of them when the `stripe` package is installed
  (`schema.validator()`: unknown names at any depth, integers, booleans, enums, nested objects), refused
  with Stripe's 400 ("Received unknown parameter: x", param "x"); `spec=False` turns that off, and
  without the package only the top-level names below are checked. A name Stripe takes but this simulator
  does not model is refused as unsupported ("This simulator does not support x.");
- Idempotency-Key on POST: the first answer (2xx, and 5xx from the endpoint) is replayed with
  `Idempotent-Replayed: true`; the same key with other parameters or another path -> 400
  idempotency_error; the same key while the first request still runs -> 409 idempotency_error;
  parameter errors are not saved (Stripe saves only once the endpoint starts executing);
- limits: 25 requests/s per key in test mode (`_test_` keys), 100 live, and 20/s on the search
  endpoints, counted over a sliding second of `clock`; the 429 body is Stripe's `rate_limit` error;
- search with Stripe's query language subset we use (`metadata['k']:'v'`, `email:'v'`, ... joined
  by AND/OR), optionally lagging writes by `search_lag` seconds, as Stripe's search does;
- totals computed from the invoice items: subtotal = total = sum of item amounts (no tax or discount
  objects are supported here), amount_due = max(total, 0), amount_remaining = amount_due - paid;
- finalize assigns a number (`<customer prefix>-0001`, or the custom `number`) and a
  `hosted_invoice_url` served by this simulator at /i/<id>; a zero amount due is paid at once;
- helpers for tests: `event()`, `signed()`, `pay()`, `void()` emit signed webhook deliveries,
  `fail_with()` queues a vendor error (with Stripe-Should-Retry if wanted), `fault_on()` aims a base
  fault ("drop", "500", ...) at the next request to one endpoint, `reset()` forgets everything.
Assumptions not confirmed in Stripe's docs are marked "(unconfirmed)" below.
"""
from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import secrets
import string
import threading
import time
from collections import deque
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import parse_qsl

from invoicer.providers.simulate import Reply, Request, Simulator
from invoicer.providers.stripe import schema, transform, webhooks

_ALNUM = string.ascii_letters + string.digits

CUSTOMER_PARAMS = {"address", "description", "email", "expand", "invoice_prefix", "invoice_settings", "metadata",
                   "name", "phone", "preferred_locales", "shipping", "tax_exempt"}
INVOICE_PARAMS = {"auto_advance", "automatic_tax", "collection_method", "currency", "custom_fields", "customer",
                  "days_until_due", "default_tax_rates", "description", "discounts", "due_date", "effective_at",
                  "expand", "footer", "metadata", "number", "pending_invoice_items_behavior", "rendering",
                  "statement_descriptor"}
ITEM_PARAMS = {"amount", "currency", "customer", "description", "discountable", "discounts", "expand", "invoice",
               "metadata", "period", "price_data", "pricing", "quantity", "quantity_decimal", "subscription",
               "tax_behavior", "tax_code", "tax_rates", "unit_amount_decimal"}
FINALIZE_PARAMS = {"auto_advance", "expand"}
SEND_PARAMS = {"expand"}
SEARCH_FIELDS = {"metadata", "email", "name", "phone", "status", "customer", "number", "currency", "total"}


class _Fail(Exception):
    def __init__(self, reply: Reply):
        self.reply = reply


def _error(status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
           param: str | None = None, headers: dict | None = None) -> Reply:
    err = {"message": message, "type": type}
    if code:
        err["code"] = code
        err["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        err["param"] = param
    return Reply(status, {"error": err}, dict(headers or {}))


def _bad(message: str, param: str | None = None, code: str | None = None) -> _Fail:
    return _Fail(_error(400, message, code=code, param=param))


def _missing(kind: str, ident: str, param: str) -> _Fail:
    return _Fail(_error(404 if param == "id" else 400, f"No such {kind}: '{ident}'", code="resource_missing",
                        param=param))


def _int(params: dict, name: str, minimum: int | None = None) -> int | None:
    if name not in params:
        return None
    value = params[name]
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise _bad(f"Invalid integer: {value}", name)
    number = int(value)
    if minimum is not None and number < minimum:
        raise _bad(f"This value must be greater than or equal to {minimum}.", name)
    return number


def _bool(value, name: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise _bad(f"Invalid boolean: {value}", name)


def _decimal(params: dict, name: str) -> Decimal | None:
    if name not in params:
        return None
    value = params[name]
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError):
        raise _bad(f"Invalid decimal: {value}", name) from None
    if not number.is_finite() or -number.as_tuple().exponent > 12:
        raise _bad(f"Invalid decimal: {value} (at most 12 decimal places)", name)
    return number


def _metadata(params: dict) -> dict:
    meta = params.get("metadata", {})
    if meta == "":
        return {}
    if not isinstance(meta, dict):
        raise _bad("Invalid object", "metadata")
    if len(meta) > 50:
        raise _bad("You can have at most 50 metadata keys.", "metadata")
    for k, v in meta.items():
        if not isinstance(v, str):
            raise _bad("Invalid value for metadata: nested objects are not supported", f"metadata[{k}]")
        if len(k) > 40:
            raise _bad(f"Metadata keys can have at most 40 characters; {k!r} has {len(k)}.", f"metadata[{k}]")
        if len(v) > 500:
            raise _bad(f"Metadata values can have at most 500 characters; {k!r} has {len(v)}.", f"metadata[{k}]")
    return dict(meta)


def _currency(value, param: str = "currency") -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{3}", value):
        raise _bad(f"Invalid currency: {value}. Stripe expects a three-letter ISO code in lowercase.", param)
    return value


class StripeSimulator(Simulator):
    """Stripe for tests and the sandbox. `customers`, `invoices`, `items` hold what it was sent.

    `spec`: None checks every request against the stripe package's parameter types when it is installed
    (`schema.validator()`), False never, True insists on it (RuntimeError without the package); a callable
    `(operation, params) -> [problem, ...]` is used as given. The checker in use is `self.spec`."""

    def __init__(self, api_keys=("sk_test_sim",), webhook_secret: str = "whsec_sim_secret", clock=time.time,
                 spec=None):
        super().__init__()
        if spec is None or spec is True:
            checker = schema.validator()
            if checker is None and spec is True:
                raise RuntimeError("StripeSimulator(spec=True) needs the stripe package (pip install stripe)")
            spec = checker
        elif spec is False:
            spec = None
        elif not callable(spec):
            raise TypeError("spec: None, False, True or a callable (operation, params) -> problems")
        self.spec = spec
        self.api_keys = set(api_keys)
        self.webhook_secret = webhook_secret
        self._state = threading.RLock()
        self.reset(clock)

    # the sandbox hook (invoicer/sandbox.py)
    def platform(self, url: str) -> dict:
        return {"provider": "stripe", "base_url": url, "api_key_env": "INVOICER_SANDBOX_STRIPE_KEY",
                "webhook_secret_env": "INVOICER_SANDBOX_STRIPE_WEBHOOK_SECRET", "account": "sandbox"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_STRIPE_KEY": sorted(self.api_keys)[0],
                "INVOICER_SANDBOX_STRIPE_WEBHOOK_SECRET": self.webhook_secret}

    def tokens(self) -> None:
        return None

    def reset(self, clock=time.time) -> None:
        """Forget everything received and stored (one served simulator can then serve many tests)."""
        with self.lock, self._state:
            self.forget()
            self.stall_seconds = 35.0
            self._reset(clock)

    def _reset(self, clock) -> None:
        self.clock = clock
        self.customers: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.sent: list[str] = []  # ids of invoices sent (POST /send)
        self.idempotency: dict[tuple[str, str], tuple[tuple, Reply]] = {}
        self.in_flight: set[tuple[str, str]] = set()
        self.search_lag = 0.0  # seconds: objects newer than this are not found by search yet
        self.rate_limits = True
        self.retry_after: str | None = None  # Stripe does not document Retry-After on 429 (unconfirmed)
        self.failures: deque[Reply] = deque()
        self._hits: dict[str, deque] = {}
        self._seq = itertools.count(1)

    # ------------------------------------------------------------ plumbing

    def _id(self, prefix: str) -> str:
        return f"{prefix}_" + "".join(secrets.choice(_ALNUM) for _ in range(24))

    def _now(self) -> int:
        return int(self.clock())

    def fail_with(self, status: int, message: str = "An unknown error occurred", type: str = "api_error",
                  code: str | None = None, should_retry: str | None = None) -> None:
        """The next authenticated request gets this error from the endpoint (saved under its
        Idempotency-Key when 5xx, as Stripe saves errors from endpoints that began executing)."""
        headers = {"Stripe-Should-Retry": should_retry} if should_retry is not None else {}
        self.failures.append(_error(status, message, type=type, code=code, headers=headers))

    def rate_limited(self, request: Request) -> Reply:
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return _error(429, "Request rate limit exceeded. Learn more about rate limits here "
                           "https://stripe.com/docs/rate-limits.", code="rate_limit", headers=headers)

    def _auth(self, request: Request) -> str | Reply:
        value = request.headers.get("authorization", "")
        key = ""
        if value.startswith("Bearer "):
            key = value[7:].strip()
        elif value.startswith("Basic "):
            try:
                key = base64.b64decode(value[6:]).decode().split(":", 1)[0]
            except ValueError:
                key = ""
        headers = {"WWW-Authenticate": 'Bearer realm="Stripe"'}
        if not key:
            return _error(401, "You did not provide an API key. You need to provide your API key in the "
                               "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                               "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                               "or we can help at https://support.stripe.com/.", headers=headers)
        if key not in self.api_keys:
            return _error(401, f"Invalid API Key provided: {key[:8]}{'*' * 12}{key[-4:]}", headers=headers)
        return key

    def _over_limit(self, request: Request, key: str) -> bool:
        now = self.clock()
        buckets = [(key, 25 if "_test_" in key else 100)]
        if request.path.endswith("/search"):
            buckets.append((f"{key}:search", 20))
        with self._state:
            for name, limit in buckets:
                hits = self._hits.setdefault(name, deque())
                while hits and hits[0] <= now - 1:
                    hits.popleft()
                if len(hits) >= limit:
                    return True
            for name, _ in buckets:
                self._hits[name].append(now)
        return False

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path.startswith("/i/"):
            return Simulator.handle(self, request)  # the hosted invoice page is public
        key = self._auth(request)
        if isinstance(key, Reply):
            return self._finish(key, request)
        if self.rate_limits and self._over_limit(request, key):
            return self._finish(self.rate_limited(request), request)
        idem = request.headers.get("idempotency-key") if request.method == "POST" else None
        if not idem:
            return self._finish(self._run(request), request)
        slot = (key, idem)
        fingerprint = (request.method, request.path, tuple(sorted(parse_qsl(request.body.decode(),
                                                                            keep_blank_values=True))))
        with self._state:
            saved = self.idempotency.get(slot)
            if saved is not None:
                if saved[0] != fingerprint:
                    return self._finish(_error(
                        400, f"Keys for idempotent requests can only be used with the same parameters they were "
                             f"first used with. Try using a key other than '{idem}' if you meant to execute a "
                             f"different request.", type="idempotency_error"), request)
                replay = copy.deepcopy(saved[1])
                replay.headers["Idempotent-Replayed"] = "true"
                replay.headers["Original-Request"] = replay.headers.pop("Request-Id", "")
                return self._finish(replay, request)
            if slot in self.in_flight:
                return self._finish(_error(409, "There is currently another in-progress request using this "
                                                "Stripe-Idempotency-Key (that probably means you submitted twice, "
                                                "and the other request is still going through): " + idem +
                                                ". Please try again later.", type="idempotency_error"), request)
            self.in_flight.add(slot)
        try:
            reply = self._finish(self._run(request), request)
        except BaseException:
            with self._state:
                self.in_flight.discard(slot)
            raise
        with self._state:  # saved and released at once: a concurrent retry sees one or the other
            if reply.status < 400 or reply.status >= 500:
                reply.headers["Idempotency-Key"] = idem
                self.idempotency[slot] = (fingerprint, copy.deepcopy(reply))
            self.in_flight.discard(slot)
        return reply

    def _finish(self, reply: Reply, request: Request) -> Reply:
        reply.headers.setdefault("Request-Id", "req_" + "".join(secrets.choice(_ALNUM) for _ in range(14)))
        reply.headers.setdefault("Stripe-Version", request.headers.get("stripe-version")
                                 or transform.DEFAULT_API_VERSION)
        return reply

    def _run(self, request: Request) -> Reply:
        with self._state:
            if self.failures:
                return self.failures.popleft()
            try:
                if request.method == "POST":
                    ctype = request.headers.get("content-type", "")
                    if request.body and "application/x-www-form-urlencoded" not in ctype:
                        raise _bad("Invalid request: the body must be application/x-www-form-urlencoded")
                    try:
                        request.stripe_form = transform.decode(parse_qsl(request.body.decode(),
                                                                         keep_blank_values=True))
                    except ValueError as exc:
                        raise _bad(f"Invalid request: {exc}") from None
                reply = Simulator.handle(self, request)
            except _Fail as fail:
                return fail.reply
        if reply.status == 404 and isinstance(reply.body, dict) and isinstance(reply.body.get("error"), str):
            return _error(404, f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                               f"https://stripe.com/docs or we can help at https://support.stripe.com/.")
        return reply

    @staticmethod
    def _form(request: Request) -> dict:
        return getattr(request, "stripe_form", None) or {}

    def _params(self, request: Request, operation: str) -> dict:
        """The request's parameters (the form of a POST, the query string of a GET), refused the way Stripe
        refuses them when they do not fit the operation's declared parameters (schema.OPERATIONS)."""
        if request.method == "POST":
            params = self._form(request)
        elif self.spec is None:
            return {}  # GET handlers read request.query themselves
        else:
            try:
                params = transform.decode([(k, v) for k, values in request.query.items() for v in values])
            except ValueError as exc:
                raise _bad(f"Invalid request: {exc}") from None
        if self.spec is not None:
            problems = self.spec(operation, params)
            if problems:
                first = problems[0]
                raise _bad(str(first), getattr(first, "param", None), getattr(first, "code", None))
        return params

    def _only(self, params: dict, allowed: set[str]) -> None:
        """Refuse names outside `allowed` (what this simulator models)."""
        for name in params:
            if name not in allowed:
                if self.spec is not None:  # the spec took it: a real Stripe parameter, just not simulated
                    raise _bad(f"This simulator does not support {name}.", name)
                raise _bad(f"Received unknown parameter: {name}", name, code="parameter_unknown")

    @staticmethod
    def _q(request: Request, name: str) -> str | None:
        values = request.query.get(name)
        return values[0] if values else None

    # ------------------------------------------------------------ views

    def _invoice_items(self, invoice_id: str) -> list[dict]:
        return sorted((i for i in self.items.values() if i["invoice"] == invoice_id), key=lambda i: i["_seq"])

    def _item_view(self, item: dict) -> dict:
        view = {k: copy.deepcopy(v) for k, v in item.items() if not k.startswith("_")}
        return view

    def _line_view(self, item: dict) -> dict:
        return {
            "id": "il_" + item["id"][3:], "object": "line_item", "amount": item["amount"],
            "currency": item["currency"], "description": item["description"], "discount_amounts": [],
            "discountable": item["discountable"], "discounts": [], "invoice": item["invoice"], "livemode": False,
            "metadata": dict(item["metadata"]),
            "parent": {"type": "invoice_item_details", "invoice_item_details": {
                "invoice_item": item["id"], "proration": False, "proration_details": {"credited_items": None},
                "subscription": None}},
            "period": dict(item["period"]), "pretax_credit_amounts": [],
            "pricing": copy.deepcopy(item["pricing"]), "quantity": item["quantity"],
            "quantity_decimal": item["quantity_decimal"], "subscription": None,
            "subtotal": item["amount"], "taxes": [],
        }

    def _totals(self, inv: dict) -> dict:
        items = self._invoice_items(inv["id"])
        subtotal = sum(i["amount"] for i in items)
        due = max(subtotal, 0)
        return {"subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": subtotal,
                "total_excluding_tax": subtotal, "amount_due": due,
                "amount_remaining": max(due - inv["amount_paid"], 0),
                "amount_overpaid": max(inv["amount_paid"] - due, 0)}

    def _invoice_view(self, inv: dict) -> dict:
        view = {k: copy.deepcopy(v) for k, v in inv.items() if not k.startswith("_")}
        view.update(self._totals(inv))
        lines = [self._line_view(i) for i in self._invoice_items(inv["id"])]
        view["lines"] = {"object": "list", "data": lines[:10], "has_more": len(lines) > 10,
                         "url": f"/v1/invoices/{inv['id']}/lines"}
        return view

    # ------------------------------------------------------------ customers

    def _create_customer(self, request: Request) -> Reply:
        p = self._params(request, "customers.create")
        self._only(p, CUSTOMER_PARAMS)
        now = self._now()
        addr = p.get("address") if isinstance(p.get("address"), dict) else {}
        cid = self._id("cus")
        customer = {
            "id": cid, "object": "customer",
            "address": {k: addr.get(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}
            if addr else None,
            "balance": 0, "created": now, "currency": None, "default_source": None, "delinquent": False,
            "description": p.get("description"), "discount": None, "email": p.get("email"),
            "invoice_prefix": p.get("invoice_prefix") or secrets.token_hex(4).upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": False, "metadata": _metadata(p), "name": p.get("name"), "next_invoice_sequence": 1,
            "phone": p.get("phone"), "preferred_locales": [], "shipping": None, "tax_exempt": "none",
            "test_clock": None, "_seq": next(self._seq),
        }
        self.customers[cid] = customer
        return Reply(200, self._public(customer))

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    def _get_customer(self, request: Request) -> Reply:
        self._params(request, "customers.retrieve")
        c = self.customers.get(request.params["id"])
        if c is None:
            raise _missing("customer", request.params["id"], "id")
        return Reply(200, self._public(c))

    def _list_customers(self, request: Request) -> Reply:
        self._params(request, "customers.list")
        found = [c for c in self.customers.values()
                 if self._q(request, "email") is None or c["email"] == self._q(request, "email")]
        return self._page(request, found, "/v1/customers", self._public)

    def _search_customers(self, request: Request) -> Reply:
        self._params(request, "customers.search")
        return self._search(request, self.customers.values(), "/v1/customers/search", self._public)

    # ------------------------------------------------------------ invoices

    def _create_invoice(self, request: Request) -> Reply:
        p = self._params(request, "invoices.create")
        self._only(p, INVOICE_PARAMS)
        if not p.get("customer"):
            raise _bad("Missing required param: customer.", "customer")
        customer = self.customers.get(p["customer"])
        if customer is None:
            raise _missing("customer", p["customer"], "customer")
        method = p.get("collection_method", "charge_automatically")
        if method not in ("charge_automatically", "send_invoice"):
            raise _bad("Invalid collection_method: must be one of charge_automatically or send_invoice",
                       "collection_method")
        days = _int(p, "days_until_due")
        due = _int(p, "due_date")
        if method == "send_invoice":
            if days is None and due is None:
                raise _bad("Missing required param: days_until_due or due_date (collection_method=send_invoice).",
                           "days_until_due")
            if days is not None and days < 1:  # (unconfirmed wording; Stripe refuses 0)
                raise _bad("days_until_due must be at least 1.", "days_until_due")
        elif days is not None or due is not None:
            raise _bad("days_until_due and due_date can only be set when collection_method is send_invoice.",
                       "days_until_due" if days is not None else "due_date")
        currency = _currency(p["currency"]) if "currency" in p else (customer["currency"] or "usd")
        auto_advance = _bool(p["auto_advance"], "auto_advance") if "auto_advance" in p else False
        tax = p.get("automatic_tax") or {}
        if not isinstance(tax, dict) or set(tax) - {"enabled", "liability"}:
            raise _bad("Received unknown parameter: automatic_tax", "automatic_tax")
        if "enabled" in tax and _bool(tax["enabled"], "automatic_tax[enabled]"):
            raise _bad("This simulator does not compute automatic tax.", "automatic_tax[enabled]")
        if p.get("discounts", "") != "":
            raise _bad("This simulator supports no coupons: pass discounts= (empty) or leave it out.", "discounts")
        fields = p.get("custom_fields", [])
        if fields == "":
            fields = []
        if not isinstance(fields, list) or len(fields) > 4:
            raise _bad("custom_fields: at most 4 custom fields", "custom_fields")
        for i, f in enumerate(fields):
            if not isinstance(f, dict) or set(f) != {"name", "value"}:
                raise _bad("Each custom field needs exactly a name and a value.", f"custom_fields[{i}]")
            if len(f["name"]) > transform.CUSTOM_FIELD_NAME_MAX:
                raise _bad("Custom field names can be at most 40 characters.", f"custom_fields[{i}][name]")
            if len(f["value"]) > transform.CUSTOM_FIELD_VALUE_MAX:
                raise _bad("Custom field values can be at most 140 characters.", f"custom_fields[{i}][value]")
        number = p.get("number")
        if number is not None and any(i["number"] == number for i in self.invoices.values()):
            raise _bad(f"Invoice number {number} is already in use.", "number")  # (unconfirmed wording)
        behaviour = p.get("pending_invoice_items_behavior", "exclude")
        if behaviour not in ("exclude", "include"):
            raise _bad("Invalid pending_invoice_items_behavior: must be one of exclude or include",
                       "pending_invoice_items_behavior")
        now = self._now()
        iid = self._id("in")
        inv = {
            "id": iid, "object": "invoice", "account_country": "US", "account_name": "Simulated account",
            "amount_paid": 0, "amount_shipping": 0, "attempt_count": 0, "attempted": False,
            "auto_advance": auto_advance,
            "automatic_tax": {"enabled": False, "liability": None, "status": None, "disabled_reason": None,
                              "provider": None},
            "billing_reason": "manual", "collection_method": method, "created": now, "currency": currency,
            "custom_fields": fields or None, "customer": customer["id"], "customer_address": customer["address"],
            "customer_email": customer["email"], "customer_name": customer["name"],
            "customer_phone": customer["phone"], "default_tax_rates": [], "description": p.get("description"),
            "discounts": [], "due_date": due if due is not None else (now + days * 86400 if days else None),
            "effective_at": None, "ending_balance": None, "footer": p.get("footer"), "hosted_invoice_url": None,
            "invoice_pdf": None, "issuer": {"type": "self"}, "livemode": False, "metadata": _metadata(p),
            "number": number, "period_end": now, "period_start": now, "starting_balance": 0, "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                                   "voided_at": None},
            "total_discount_amounts": [], "total_taxes": [], "webhooks_delivered_at": None,
            "_seq": next(self._seq), "_days_until_due": days,
        }
        self.invoices[iid] = inv
        if customer["currency"] is None:
            customer["currency"] = currency
        if behaviour == "include":
            for item in self.items.values():
                if item["customer"] == customer["id"] and item["invoice"] is None and item["currency"] == currency:
                    item["invoice"] = iid
        return Reply(200, self._invoice_view(inv))

    def _invoice(self, ident: str, param: str = "id") -> dict:
        inv = self.invoices.get(ident)
        if inv is None:
            raise _missing("invoice", ident, param)
        return inv

    def _get_invoice(self, request: Request) -> Reply:
        self._params(request, "invoices.retrieve")
        return Reply(200, self._invoice_view(self._invoice(request.params["id"])))

    def _list_invoices(self, request: Request) -> Reply:
        self._params(request, "invoices.list")
        customer, status = self._q(request, "customer"), self._q(request, "status")
        found = [i for i in self.invoices.values()
                 if (customer is None or i["customer"] == customer) and (status is None or i["status"] == status)]
        return self._page(request, found, "/v1/invoices", self._invoice_view)

    def _search_invoices(self, request: Request) -> Reply:
        self._params(request, "invoices.search")
        return self._search(request, self.invoices.values(), "/v1/invoices/search", self._invoice_view)

    def _finalize(self, request: Request) -> Reply:
        p = self._params(request, "invoices.finalize_invoice")
        self._only(p, FINALIZE_PARAMS)
        inv = self._invoice(request.params["id"])
        if inv["status"] != "draft":
            raise _bad("This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                       code="invoice_not_editable")
        totals = self._totals(inv)
        if inv["currency"].upper() in transform.THREE_DECIMAL and totals["amount_due"] % 10:
            # Stripe: three-decimal payment amounts must end in 0 (where exactly an invoice is refused: unconfirmed)
            raise _bad(f"Invalid amount_due {totals['amount_due']}: amounts in {inv['currency'].upper()} must be "
                       f"a multiple of 10.", code="amount_invalid")
        now = self._now()
        customer = self.customers[inv["customer"]]
        if inv["number"] is None:
            inv["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
            customer["next_invoice_sequence"] += 1
        if "auto_advance" in p:
            inv["auto_advance"] = _bool(p["auto_advance"], "auto_advance")
        base = f"http://{request.headers.get('host', '127.0.0.1')}"
        inv["hosted_invoice_url"] = f"{base}/i/{inv['id']}"
        inv["invoice_pdf"] = f"{base}/i/{inv['id']}/pdf"
        inv["status_transitions"]["finalized_at"] = now
        inv["effective_at"] = now
        if inv["_days_until_due"]:
            inv["due_date"] = now + inv["_days_until_due"] * 86400
        inv["status"] = "open"
        if totals["amount_due"] == 0:
            inv["status"] = "paid"
            inv["status_transitions"]["paid_at"] = now
        return Reply(200, self._invoice_view(inv))

    def _send(self, request: Request) -> Reply:
        self._only(self._params(request, "invoices.send_invoice"), SEND_PARAMS)
        inv = self._invoice(request.params["id"])
        if inv["status"] != "open":
            raise _bad(f"You can only send invoices that are open; this one is {inv['status']}.",
                       code="invoice_not_editable")  # (unconfirmed wording)
        if inv["collection_method"] != "send_invoice":
            raise _bad("You can only manually send an invoice if its collection method is 'send_invoice'.")
        self.sent.append(inv["id"])
        return Reply(200, self._invoice_view(inv))

    def _hosted(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None or inv["hosted_invoice_url"] is None:
            return Reply(404, "<h1>Invoice not found</h1>", {"Content-Type": "text/html; charset=utf-8"})
        view = self._invoice_view(inv)
        amount = transform.from_stripe(view["amount_remaining"], inv["currency"])
        return Reply(200, f"<h1>Invoice {inv['number']}</h1><p>Amount due: {amount} {inv['currency'].upper()}"
                          f"</p><p>Status: {inv['status']}</p>", {"Content-Type": "text/html; charset=utf-8"})

    # ------------------------------------------------------------ invoice items

    def _create_item(self, request: Request) -> Reply:
        p = self._params(request, "invoiceitems.create")
        self._only(p, ITEM_PARAMS)
        for unsupported in ("price_data", "pricing", "quantity_decimal", "subscription", "tax_rates", "discounts"):
            if unsupported in p:
                raise _bad(f"This simulator does not support {unsupported}.", unsupported)
        if not p.get("customer"):
            raise _bad("Missing required param: customer.", "customer")
        customer = self.customers.get(p["customer"])
        if customer is None:
            raise _missing("customer", p["customer"], "customer")
        inv = None
        if p.get("invoice"):
            inv = self._invoice(p["invoice"], "invoice")
            if inv["status"] != "draft":
                raise _bad(f"Invoice {inv['id']} is no longer editable: only draft invoices take new items.",
                           "invoice", code="invoice_not_editable")  # (unconfirmed wording)
            if inv["customer"] != customer["id"]:
                raise _bad("The invoice belongs to another customer.", "invoice")
        currency = _currency(p["currency"]) if "currency" in p else (inv["currency"] if inv else customer["currency"])
        if currency is None:
            raise _bad("Missing required param: currency.", "currency")
        if inv and currency != inv["currency"]:
            raise _bad(f"The currency {currency} does not match the invoice's currency {inv['currency']}.",
                       "currency")
        amount = _int(p, "amount")
        unit = _decimal(p, "unit_amount_decimal")
        quantity = _int(p, "quantity", minimum=0)
        if (amount is None) == (unit is None):
            raise _bad("You must pass exactly one of amount or unit_amount_decimal (price_data and pricing are "
                       "not simulated).", "amount")
        if amount is not None and quantity not in (None, 1):
            raise _bad("This simulator does not combine amount with quantity.", "quantity")  # (unconfirmed)
        quantity = 1 if quantity is None else quantity
        if unit is not None:
            # quantity x unit amount, rounded half up to an integer (Stripe's rounding rule: unconfirmed)
            amount = int((unit * quantity).to_integral_value(rounding=ROUND_HALF_UP))
        now = self._now()
        discountable = _bool(p["discountable"], "discountable") if "discountable" in p else amount >= 0
        item = {
            "id": self._id("ii"), "object": "invoiceitem", "amount": amount, "currency": currency,
            "customer": customer["id"], "customer_account": None, "date": now,
            "description": p.get("description"), "discountable": discountable, "discounts": [],
            "invoice": inv["id"] if inv else None, "livemode": False, "metadata": _metadata(p),
            "net_amount": amount, "parent": None, "period": {"start": now, "end": now},
            "pricing": {"type": "price_details" if unit is None else "unit_amount_decimal",
                        "unit_amount_decimal": format(unit, "f") if unit is not None else format(amount, "d")},
            "proration": False, "quantity": quantity, "quantity_decimal": str(quantity), "tax_rates": [],
            "test_clock": None, "_seq": next(self._seq),
        }
        if customer["currency"] is None:
            customer["currency"] = currency
        self.items[item["id"]] = item
        return Reply(200, self._item_view(item))

    def _list_items(self, request: Request) -> Reply:
        self._params(request, "invoiceitems.list")
        invoice, customer = self._q(request, "invoice"), self._q(request, "customer")
        found = [i for i in self.items.values()
                 if (invoice is None or i["invoice"] == invoice) and (customer is None or i["customer"] == customer)]
        return self._page(request, found, "/v1/invoiceitems", self._item_view)

    # ------------------------------------------------------------ lists and search

    def _limit(self, request: Request) -> int:
        raw = self._q(request, "limit") or "10"
        if not raw.isdigit() or not 1 <= int(raw) <= 100:
            raise _bad("Invalid integer: limit must be between 1 and 100.", "limit")
        return int(raw)

    def _page(self, request: Request, objects, url: str, view) -> Reply:
        ordered = sorted(objects, key=lambda o: (o.get("created", o.get("date")), o["_seq"]), reverse=True)
        after = self._q(request, "starting_after")
        if after:
            ids = [o["id"] for o in ordered]
            if after not in ids:
                raise _missing("object", after, "starting_after")
            ordered = ordered[ids.index(after) + 1:]
        limit = self._limit(request)
        return Reply(200, {"object": "list", "data": [view(o) for o in ordered[:limit]],
                           "has_more": len(ordered) > limit, "url": url})

    _CLAUSE = re.compile(r"""\s*(?:(?P<field>[a-z_]+)(?:\[(?P<kq>['"])(?P<key>.*?)(?P=kq)\])?)\s*:\s*"""
                         r"""(?P<vq>['"])(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)\s*""")

    def _parse_query(self, query: str) -> tuple[str, list[tuple[str, str | None, str]]]:
        clauses, joiner, pos = [], None, 0
        while True:
            m = self._CLAUSE.match(query, pos)
            if not m:
                raise _bad(f"Invalid query: {query!r}. See https://stripe.com/docs/search#search-query-language.",
                           "query")
            field = m.group("field")
            if field not in SEARCH_FIELDS or (field == "metadata") != (m.group("key") is not None):
                raise _bad(f"Field '{field}' is an unsupported search field.", "query")
            value = re.sub(r"\\(.)", r"\1", m.group("value"))
            clauses.append((field, m.group("key"), value))
            pos = m.end()
            if pos >= len(query):
                break
            word = re.match(r"(AND|OR)\s+", query[pos:])
            if not word or (joiner and joiner != word.group(1)):
                raise _bad(f"Invalid query: {query!r} (use AND or OR, not both).", "query")
            joiner = word.group(1)
            pos += word.end()
        return joiner or "AND", clauses

    def _search(self, request: Request, objects, url: str, view) -> Reply:
        query = self._q(request, "query")
        if not query:
            raise _bad("Missing required param: query.", "query")
        joiner, clauses = self._parse_query(query)
        horizon = self.clock() - self.search_lag

        def hit(obj, field, key, value):
            if field == "metadata":
                return (obj.get("metadata") or {}).get(key) == value
            current = self._invoice_view(obj)[field] if obj["object"] == "invoice" and field == "total" \
                else obj.get(field)
            return str(current) == value if current is not None else False

        test = all if joiner == "AND" else any
        found = [o for o in objects if o["created"] <= horizon and test(hit(o, *c) for c in clauses)]
        ordered = sorted(found, key=lambda o: (o["created"], o["_seq"]), reverse=True)
        limit = self._limit(request)
        return Reply(200, {"object": "search_result", "data": [view(o) for o in ordered[:limit]],
                           "has_more": len(ordered) > limit, "next_page": None, "url": url})

    # ------------------------------------------------------------ webhooks (test helpers)

    def event(self, type: str, invoice_id: str) -> dict:
        with self._state:
            obj = self._invoice_view(self._invoice(invoice_id))
        return {"id": self._id("evt"), "object": "event", "api_version": transform.DEFAULT_API_VERSION,
                "created": self._now(), "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": type}

    def signed(self, event: dict, secret: str | None = None, timestamp: int | None = None) -> tuple[bytes, dict]:
        """The body and headers Stripe would POST to a webhook endpoint for this event."""
        body = json.dumps(event).encode()
        header = webhooks.sign(body, secret or self.webhook_secret, self._now() if timestamp is None else timestamp)
        return body, {"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"}

    def pay(self, invoice_id: str, amount: int | None = None, **sign) -> tuple[bytes, dict]:
        """Record a payment (all that remains, or `amount`); the signed event it makes."""
        with self._state:
            inv = self._invoice(invoice_id)
            if inv["status"] != "open":
                raise ValueError(f"{invoice_id} is {inv['status']}, not open")
            remaining = self._totals(inv)["amount_remaining"]
            inv["amount_paid"] += remaining if amount is None else min(amount, remaining)
            if self._totals(inv)["amount_remaining"] == 0:
                inv["status"] = "paid"
                inv["status_transitions"]["paid_at"] = self._now()
                kind = "invoice.paid"
            else:
                kind = "invoice.updated"
        return self.signed(self.event(kind, invoice_id), **sign)

    def void(self, invoice_id: str, **sign) -> tuple[bytes, dict]:
        with self._state:
            inv = self._invoice(invoice_id)
            inv["status"] = "void"
            inv["status_transitions"]["voided_at"] = self._now()
        return self.signed(self.event("invoice.voided", invoice_id), **sign)

    routes = [
        ("GET", r"/v1/customers/search", _search_customers),
        ("GET", r"/v1/customers", _list_customers),
        ("POST", r"/v1/customers", _create_customer),
        ("GET", r"/v1/customers/(?P<id>[^/]+)", _get_customer),
        ("GET", r"/v1/invoices/search", _search_invoices),
        ("GET", r"/v1/invoices", _list_invoices),
        ("POST", r"/v1/invoices", _create_invoice),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", _get_invoice),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/finalize", _finalize),
        ("POST", r"/v1/invoices/(?P<id>[^/]+)/send", _send),
        ("GET", r"/v1/invoiceitems", _list_items),
        ("POST", r"/v1/invoiceitems", _create_item),
        ("GET", r"/i/(?P<id>[^/]+)", _hosted),
    ]


SIMULATOR = StripeSimulator
