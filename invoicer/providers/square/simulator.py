"""A small, faithful stand-in of the Square API for exactly what the adapter uses (tests and sandbox).

Endpoints (same paths as Square): POST /v2/customers, POST /v2/customers/search, GET
/v2/customers/{id}, POST /v2/orders, GET /v2/orders/{id}, POST /v2/invoices, GET /v2/invoices/{id},
POST /v2/invoices/search, POST /v2/invoices/{id}/publish, and the public payment page /pay/{id}.

What it reproduces, and from where (developer.squareup.com/reference/square, read 2026-11; the
OpenAPI spec in ../shared/vendor-specs/square/):
- auth: `Authorization: Bearer <access token>`; a missing or unknown token gets Square's 401 body
  `{"errors": [{"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED", ...}]}`. `Square-Version`
  must look like YYYY-MM-DD (else INVALID_SQUARE_VERSION_FORMAT) and is echoed back;
- request bodies checked against the spec's request schemas when the spec file is there (types,
  enums, lengths, readOnly fields refused) plus property names the spec does not declare (refused
  as UNKNOWN_BODY_PARAMETER); the spec-less product runs without that check;
- `idempotency_key` in create bodies: the same key with the same body replays the first answer;
  with another body -> 400 IDEMPOTENCY_KEY_REUSED. How long Square keeps keys is not documented
  here (kept forever);
- rate limits: Square publishes no numbers; here `rate_limit` requests per second per token (20) over
  a sliding second of `clock`, answered 429 with `RATE_LIMIT_ERROR`/`RATE_LIMITED` and no Retry-After
  (unconfirmed either way);
- orders: ad hoc line items (`name`, `quantity` a whole-number string, `base_price_money`),
  ORDER- or LINE_ITEM-scoped FIXED_AMOUNT / FIXED_PERCENTAGE discounts, `pricing_blocklists.
  blocked_discounts`; an ORDER amount discount is spread over the eligible lines in proportion (largest
  remainder), percentages round half to even (Square's documented banker's rounding); totals as
  Square names them. Every amount must be in the location's currency (CURRENCY_MISMATCH). Taxes,
  service charges, catalog items and decimal quantities are not modelled (refused as unsupported);
- invoices: need an OPEN order of the same location not already invoiced, a known
  `primary_recipient.customer_id`, exactly one BALANCE payment request with a `due_date`, a
  `delivery_method`, at least one accepted payment method; `invoice_number` unique per location
  (Square documents the uniqueness; the error's wording here is ours). Created as DRAFT, version 0;
  publish needs the current `version` (else 400 CONFLICT, wording unconfirmed), EMAIL delivery needs
  the customer's email and SMS a phone; it makes the invoice UNPAID with a `public_url` served here;
- search: invoices by location (exactly one) and customer (at most one), newest first, paged by
  cursor; customers by exact email (case-insensitive) or reference id, oldest first.
Test helpers: `pay()` (a payment, all or part) and `cancel()` return the signed `invoice.payment_made`
/ `invoice.canceled` delivery; `event()` and `signed()` build others; `fault_on()` aims a fault.
"""
from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import string
import threading
import time
from collections import deque
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from invoicer.providers import openapi
from invoicer.providers.simulate import Reply, Request, Simulator
from invoicer.providers.square import transform, webhooks

SPEC = openapi.SPECS / "square" / "api.invoices-subset.json"
_ALNUM = string.ascii_uppercase + string.digits
REQUEST_SCHEMAS = {("POST", "/v2/customers"): "CreateCustomerRequest",
                   ("POST", "/v2/customers/search"): "SearchCustomersRequest",
                   ("POST", "/v2/orders"): "CreateOrderRequest",
                   ("POST", "/v2/invoices"): "CreateInvoiceRequest",
                   ("POST", "/v2/invoices/search"): "SearchInvoicesRequest",
                   ("POST", "publish"): "PublishInvoiceRequest"}


class _Fail(Exception):
    def __init__(self, status: int, code: str, detail: str, field: str | None = None,
                 category: str = "INVALID_REQUEST_ERROR"):
        super().__init__(detail)
        self.reply = error(status, code, detail, field, category)


def error(status: int, code: str, detail: str, field: str | None = None,
          category: str = "INVALID_REQUEST_ERROR", headers: dict | None = None) -> Reply:
    err = {"category": category, "code": code, "detail": detail}
    if field:
        err["field"] = field
    return Reply(status, {"errors": [err]}, headers or {})


def _now_iso(clock) -> str:
    return datetime.fromtimestamp(clock(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SquareSimulator(Simulator):
    """Square for tests and the sandbox. `customers`, `orders`, `invoices` hold what it was sent."""

    def __init__(self, tokens=("EAAAsim-access-token",), location_id: str = "LSIM0000000001",
                 currency: str = "USD", signature_key: str = "sim-signature-key", clock=time.time,
                 spec: bool = True):
        super().__init__()
        self.access_tokens = set(tokens)
        self.location_id, self.home_currency = location_id, currency
        self.signature_key = signature_key
        self.spec = spec and SPEC.exists()
        self._state = threading.RLock()
        self.reset(clock)

    def reset(self, clock=time.time) -> None:
        """Forget everything received and stored (one served simulator can then serve many tests)."""
        with self.lock, self._state:
            self.forget()
            self.clock = clock
            self.currency = self.home_currency  # the location's currency (tests may change it)
            self.customers: dict[str, dict] = {}
            self.orders: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self.published: list[str] = []  # invoices Square itself delivered (EMAIL/SMS) on publish
            self.idempotency: dict[tuple, tuple[str, Reply]] = {}
            self.rate_limit = 20
            self.failures: deque[Reply] = deque()
            self._windows.clear()
            self._seq = itertools.count(1)

    # ------------------------------------------------------------ the sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "square", "base_url": url, "location_id": self.location_id, "currency": self.currency,
                "access_token_env": "INVOICER_SANDBOX_SQUARE_TOKEN",
                "webhook_signature_key_env": "INVOICER_SANDBOX_SQUARE_SIGNATURE_KEY", "account": "sandbox"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_SQUARE_TOKEN": next(iter(self.access_tokens)),
                "INVOICER_SANDBOX_SQUARE_SIGNATURE_KEY": self.signature_key}

    def tokens(self) -> None:
        return None  # the token comes from the environment (env())

    # ------------------------------------------------------------ plumbing

    def _id(self, n: int = 22) -> str:
        return "".join(secrets.choice(_ALNUM) for _ in range(n))

    def fail_with(self, status: int, code: str, detail: str = "simulated", category: str = "API_ERROR") -> None:
        """The next authenticated request gets this error."""
        self.failures.append(error(status, code, detail, category=category))

    def rate_limited(self, request: Request) -> Reply:
        return error(429, "RATE_LIMITED", "Rate limit exceeded. Please retry later.", category="RATE_LIMIT_ERROR")

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path.startswith("/pay/"):
            return Simulator.handle(self, request)  # the public payment page
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if token not in self.access_tokens:
            return error(401, "UNAUTHORIZED", "This request could not be authorized.",
                         category="AUTHENTICATION_ERROR")
        version = request.headers.get("square-version")
        if version and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", version):
            return error(400, "INVALID_SQUARE_VERSION_FORMAT", f"Invalid Square-Version: {version}")
        if self.over_limit(token, self.rate_limit, self.clock()):
            return self.rate_limited(request)
        reply = self._idempotent(request, token)
        reply.headers.setdefault("Square-Version", version or transform.DEFAULT_VERSION)
        return reply

    def _idempotent(self, request: Request, token: str) -> Reply:
        try:
            body = request.json() if request.method == "POST" else None
        except ValueError:
            return error(400, "EXPECTED_JSON_BODY", "The request body is not valid JSON.")
        key = body.get("idempotency_key") if isinstance(body, dict) else None
        if not key:
            return self._run(request, body)
        slot = (token, request.path, key)
        fingerprint = json.dumps([request.path, body], sort_keys=True)
        with self._state:
            saved = self.idempotency.get(slot)
            if saved is not None:
                if saved[0] != fingerprint:
                    return error(400, "IDEMPOTENCY_KEY_REUSED",
                                 "The idempotency key can only be retried with the same request data.",
                                 "idempotency_key")
                return copy.deepcopy(saved[1])
            reply = self._run(request, body)
            if reply.status < 400:
                self.idempotency[slot] = (fingerprint, copy.deepcopy(reply))
            return reply

    def _run(self, request: Request, body) -> Reply:
        with self._state:
            if self.failures:
                return self.failures.popleft()
            try:
                self._check_schema(request, body)
                return Simulator.handle(self, request)
            except _Fail as fail:
                return fail.reply

    def _check_schema(self, request: Request, body) -> None:
        if not self.spec or request.method != "POST":
            return
        name = REQUEST_SCHEMAS.get(("POST", "publish" if request.path.endswith("/publish") else request.path))
        if not name:
            return
        extra = openapi.unknown(str(SPEC), name, body)
        if extra:
            raise _Fail(400, "UNKNOWN_BODY_PARAMETER", f"Unknown body parameter: {extra[0]}", extra[0])
        problems = openapi.errors(openapi.validator(str(SPEC), name), body)
        if problems:
            field, _, message = problems[0].partition(": ")
            code = "MISSING_REQUIRED_PARAMETER" if "required" in message else "INVALID_VALUE"
            raise _Fail(400, code, message, field)

    def _money(self, m, field: str) -> int:
        if not isinstance(m, dict) or not isinstance(m.get("amount"), int):
            raise _Fail(400, "MISSING_REQUIRED_PARAMETER", f"Missing required parameter: {field}.amount", field)
        if m.get("currency") != self.currency:
            raise _Fail(400, "CURRENCY_MISMATCH", f"Currency {m.get('currency')} does not match the location's "
                                                  f"currency {self.currency}.", field)
        return m["amount"]

    def _m(self, amount: int) -> dict:
        return {"amount": int(amount), "currency": self.currency}

    # ------------------------------------------------------------ customers

    def _create_customer(self, request: Request) -> Reply:
        body = request.json()
        if not any(body.get(k) for k in ("given_name", "family_name", "company_name", "email_address", "phone_number")):
            raise _Fail(400, "BAD_REQUEST", "At least one of the following fields must be set: given_name, "
                                            "family_name, company_name, email_address, phone_number.")
        now = _now_iso(self.clock)
        c = {k: v for k, v in body.items() if k != "idempotency_key"}
        c.update(id=self._id(26), created_at=now, updated_at=now, creation_source="THIRD_PARTY", version=0,
                 preferences={"email_unsubscribed": False}, seq=next(self._seq))
        self.customers[c["id"]] = c
        return Reply(200, {"customer": self._public(c)})

    @staticmethod
    def _public(obj: dict) -> dict:
        return {k: v for k, v in obj.items() if k != "seq"}

    def _search_customers(self, request: Request) -> Reply:
        flt = ((request.json().get("query") or {}).get("filter") or {})
        found = sorted(self.customers.values(), key=lambda c: c["seq"])
        for field in ("email_address", "reference_id"):
            if field in flt:
                want = (flt[field] or {}).get("exact")
                if want is None:
                    raise _Fail(400, "BAD_REQUEST", "This simulator supports only exact customer filters.", field)
                fold = (lambda v: (v or "").lower()) if field == "email_address" else (lambda v: v or "")
                found = [c for c in found if fold(c.get(field)) == fold(want)]
        return Reply(200, {"customers": [self._public(c) for c in found]} if found else {})

    def _get_customer(self, request: Request) -> Reply:
        c = self.customers.get(request.params["id"])
        if c is None:
            raise _Fail(404, "NOT_FOUND", f"Customer with ID `{request.params['id']}` not found.")
        return Reply(200, {"customer": self._public(c)})

    # ------------------------------------------------------------ orders

    def _create_order(self, request: Request) -> Reply:
        order = copy.deepcopy(request.json().get("order") or {})
        if order.get("location_id") != self.location_id:
            raise _Fail(400, "NOT_FOUND", f"Location `{order.get('location_id')}` not found.", "order.location_id")
        if order.get("customer_id") and order["customer_id"] not in self.customers:
            raise _Fail(400, "NOT_FOUND", f"Customer `{order['customer_id']}` not found.", "order.customer_id")
        for unsupported in ("taxes", "service_charges", "fulfillments", "pricing_options"):
            if order.get(unsupported):
                raise _Fail(400, "BAD_REQUEST", f"This simulator does not support order.{unsupported}.",
                            f"order.{unsupported}")
        now = _now_iso(self.clock)
        order.update(id=self._id(27), state="OPEN", version=1, created_at=now, updated_at=now,
                     source={"name": "invoicer"})
        self._price(order)
        self.orders[order["id"]] = order
        return Reply(200, {"order": order})

    def _price(self, order: dict) -> None:
        """Square's figures for the order: gross per line, discounts spread, totals."""
        discounts = {d.get("uid") or f"d{i}": d for i, d in enumerate(order.get("discounts") or [])}
        lines = order.get("line_items") or []
        gross = []
        for i, li in enumerate(lines):
            field = f"order.line_items[{i}]"
            if li.get("catalog_object_id") or li.get("modifiers") or li.get("quantity_unit"):
                raise _Fail(400, "BAD_REQUEST", "This simulator supports only ad hoc line items.", field)
            if not li.get("name"):
                raise _Fail(400, "MISSING_REQUIRED_PARAMETER", "Ad hoc line items must have a name.", f"{field}.name")
            if not re.fullmatch(r"\d+", str(li.get("quantity") or "")) or int(li["quantity"]) < 1:
                raise _Fail(400, "INVALID_VALUE", "quantity must be a positive whole number without a "
                                                  "quantity_unit.", f"{field}.quantity")
            li.setdefault("uid", self._id(22))
            g = int(li["quantity"]) * self._money(li.get("base_price_money"), f"{field}.base_price_money")
            li["variation_total_price_money"] = li["gross_sales_money"] = self._m(g)
            li["applied_discounts"] = list(li.get("applied_discounts") or [])
            gross.append(g)
        applied = [0] * len(lines)
        for uid, d in discounts.items():
            d["uid"] = uid
            blocked = [i for i, li in enumerate(lines) if uid in {b.get("discount_uid") for b in
                                                                  (li.get("pricing_blocklists") or {}).get(
                                                                      "blocked_discounts") or []}]
            if d.get("scope") == "LINE_ITEM":
                eligible = [i for i, li in enumerate(lines) if uid in {a.get("discount_uid")
                                                                       for a in li["applied_discounts"]}]
            else:
                eligible = [i for i in range(len(lines)) if i not in blocked]
            base = {i: gross[i] - applied[i] for i in eligible}
            shares = self._discount_shares(d, base)
            for i, amount in shares.items():
                applied[i] += amount
                entry = next((a for a in lines[i]["applied_discounts"] if a.get("discount_uid") == uid), None)
                if entry is None:
                    entry = {"uid": self._id(22), "discount_uid": uid}
                    lines[i]["applied_discounts"].append(entry)
                entry["applied_money"] = self._m(amount)
            d["applied_money"] = self._m(sum(shares.values()))
        for i, li in enumerate(lines):
            li["total_discount_money"] = self._m(applied[i])
            li["total_tax_money"] = self._m(0)
            li["total_service_charge_money"] = self._m(0)
            li["total_money"] = self._m(gross[i] - applied[i])
        total = sum(gross) - sum(applied)
        order.update(total_money=self._m(total), total_tax_money=self._m(0), total_discount_money=self._m(sum(applied)),
                     total_tip_money=self._m(0), total_service_charge_money=self._m(0),
                     net_amount_due_money=self._m(total))

    def _discount_shares(self, d: dict, base: dict[int, int]) -> dict[int, int]:
        eligible = sum(base.values())
        if d.get("type") == "FIXED_AMOUNT":
            amount = min(self._money(d.get("amount_money"), "order.discounts.amount_money"), eligible)
            if d.get("scope") == "LINE_ITEM":  # the amount applies to each line it is applied to
                return {i: min(amount, b) for i, b in base.items()}
            if eligible == 0:
                return {i: 0 for i in base}
            exact = {i: Decimal(amount) * b / eligible for i, b in base.items()}
            shares = {i: int(v) for i, v in exact.items()}
            left = amount - sum(shares.values())
            for i in sorted(exact, key=lambda i: (-(exact[i] - shares[i]), i))[:left]:
                shares[i] += 1
            return shares
        if d.get("type") == "FIXED_PERCENTAGE":
            try:
                pct = Decimal(d.get("percentage"))
            except (TypeError, InvalidOperation):
                raise _Fail(400, "INVALID_VALUE", "percentage must be a decimal string", "order.discounts") from None
            return {i: int((b * pct / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) for i, b in base.items()}
        raise _Fail(400, "BAD_REQUEST", "Ad hoc discounts must be FIXED_AMOUNT or FIXED_PERCENTAGE.",
                    "order.discounts.type")

    def _get_order(self, request: Request) -> Reply:
        order = self.orders.get(request.params["id"])
        if order is None:
            raise _Fail(404, "NOT_FOUND", f"Order `{request.params['id']}` not found.")
        return Reply(200, {"order": order})

    # ------------------------------------------------------------ invoices

    def _create_invoice(self, request: Request) -> Reply:
        inv = copy.deepcopy(request.json().get("invoice") or {})
        order = self.orders.get(inv.get("order_id") or "")
        if order is None:
            raise _Fail(400, "NOT_FOUND", f"Order `{inv.get('order_id')}` not found.", "invoice.order_id")
        if order["state"] != "OPEN":
            raise _Fail(400, "BAD_REQUEST", "The order must be in the OPEN state.", "invoice.order_id")
        if any(i["order_id"] == order["id"] for i in self.invoices.values()):
            raise _Fail(400, "BAD_REQUEST", "An invoice already exists for this order.", "invoice.order_id")
        if inv.get("location_id", order["location_id"]) != order["location_id"]:
            raise _Fail(400, "BAD_REQUEST", "location_id must match the order's location.", "invoice.location_id")
        customer = (inv.get("primary_recipient") or {}).get("customer_id")
        if customer not in self.customers:
            raise _Fail(400, "NOT_FOUND", f"Customer `{customer}` not found.", "invoice.primary_recipient.customer_id")
        requests = inv.get("payment_requests") or []
        if len(requests) != 1 or requests[0].get("request_type") != "BALANCE":
            raise _Fail(400, "BAD_REQUEST", "This simulator supports one BALANCE payment request.",
                        "invoice.payment_requests")
        try:
            date.fromisoformat(requests[0].get("due_date") or "")
        except ValueError:
            raise _Fail(400, "INVALID_VALUE", "due_date must be YYYY-MM-DD.",
                        "invoice.payment_requests[0].due_date") from None
        if not inv.get("delivery_method"):
            raise _Fail(400, "MISSING_REQUIRED_PARAMETER", "Missing required parameter: delivery_method.",
                        "invoice.delivery_method")
        if not any((inv.get("accepted_payment_methods") or {}).values()):
            raise _Fail(400, "INVALID_VALUE", "At least one accepted payment method must be enabled.",
                        "invoice.accepted_payment_methods")
        number = inv.get("invoice_number") or f"{sum(1 for _ in self.invoices) + 1:07d}"
        if any(i["invoice_number"] == number and i["location_id"] == order["location_id"]
               for i in self.invoices.values()):
            raise _Fail(400, "BAD_REQUEST", f"Invoice number {number} is already used in this location.",
                        "invoice.invoice_number")
        now = _now_iso(self.clock)
        c = self.customers[customer]
        inv["primary_recipient"] = {k: v for k, v in {
            "customer_id": customer, "given_name": c.get("given_name"), "family_name": c.get("family_name"),
            "email_address": c.get("email_address"), "phone_number": c.get("phone_number")}.items() if v}
        requests[0].update(uid=self._id(36), automatic_payment_source="NONE", tipping_enabled=False,
                           computed_amount_money=dict(order["total_money"]),
                           total_completed_amount_money=self._m(0))
        inv.update(id="inv:0-" + self._id(28), version=0, location_id=order["location_id"], invoice_number=number,
                   status="DRAFT", timezone="Etc/UTC", created_at=now, updated_at=now, seq=next(self._seq),
                   store_payment_method_enabled=False)
        self.invoices[inv["id"]] = inv
        return Reply(200, {"invoice": self._public(inv)})

    def _invoice(self, ident: str) -> dict:
        inv = self.invoices.get(ident)
        if inv is None:
            raise _Fail(404, "NOT_FOUND", f"Invoice `{ident}` not found.")
        return inv

    def _get_invoice(self, request: Request) -> Reply:
        return Reply(200, {"invoice": self._public(self._invoice(request.params["id"]))})

    def _publish(self, request: Request) -> Reply:
        inv = self._invoice(request.params["id"])
        body = request.json()
        if body.get("version") != inv["version"]:
            raise _Fail(400, "CONFLICT", f"Invoice version {body.get('version')} does not match the current version "
                                         f"{inv['version']}.", "version")
        if inv["status"] != "DRAFT":
            raise _Fail(400, "BAD_REQUEST", "Only a DRAFT invoice can be published.")
        recipient = inv["primary_recipient"]
        need = {"EMAIL": "email_address", "SMS": "phone_number"}.get(inv["delivery_method"])
        if need and not recipient.get(need):
            raise _Fail(400, "BAD_REQUEST", f"The invoice recipient needs {need} for delivery method "
                                            f"{inv['delivery_method']}.", "invoice.primary_recipient")
        inv.update(status="UNPAID", version=inv["version"] + 1, updated_at=_now_iso(self.clock),
                   public_url=f"http://{request.headers.get('host', '127.0.0.1')}/pay/{inv['id']}",
                   next_payment_amount_money=dict(inv["payment_requests"][0]["computed_amount_money"]))
        if need:
            self.published.append(inv["id"])
        return Reply(200, {"invoice": self._public(inv)})

    def _search_invoices(self, request: Request) -> Reply:
        body = request.json()
        flt = (body.get("query") or {}).get("filter") or {}
        locations, customers = flt.get("location_ids") or [], flt.get("customer_ids") or []
        if len(locations) != 1 or len(customers) > 1:
            raise _Fail(400, "INVALID_VALUE", "Exactly one location and at most one customer may be given.",
                        "query.filter")
        found = [i for i in self.invoices.values() if i["location_id"] == locations[0]
                 and (not customers or i["primary_recipient"]["customer_id"] == customers[0])]
        descending = ((body.get("query") or {}).get("sort") or {}).get("order", "DESC") == "DESC"
        found.sort(key=lambda i: i["seq"], reverse=descending)
        start = int(body.get("cursor") or 0)
        limit = min(int(body.get("limit") or 100), 200)
        page = found[start:start + limit]
        out: dict = {"invoices": [self._public(i) for i in page]} if page else {}
        if start + limit < len(found):
            out["cursor"] = str(start + limit)
        return Reply(200, out)

    def _pay_page(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None or not inv.get("public_url"):
            return Reply(404, "Not found", {"Content-Type": "text/html"})
        due = inv["payment_requests"][0]["computed_amount_money"]
        return Reply(200, f"<html><body><h1>Invoice {inv['invoice_number']}</h1><p>{due['amount']} "
                          f"{due['currency']} ({inv['status']})</p></body></html>", {"Content-Type": "text/html"})

    # ------------------------------------------------------------ webhooks (test helpers)

    def event(self, type: str, invoice_id: str) -> dict:
        with self._state:
            inv = self._public(self._invoice(invoice_id))
        return {"merchant_id": "MLSIM00000001", "location_id": inv["location_id"], "type": type,
                "event_id": f"{self._id(8)}-{self._id(4)}-{self._id(4)}".lower(), "created_at": _now_iso(self.clock),
                "data": {"type": "invoice", "id": invoice_id, "object": {"invoice": inv}}}

    def signed(self, event: dict, url: str, key: str | None = None) -> tuple[bytes, dict]:
        """The body and headers Square would POST to the notification URL for this event."""
        body = json.dumps(event).encode()
        return body, {"x-square-hmacsha256-signature": webhooks.sign(body, url, key or self.signature_key),
                      "Content-Type": "application/json"}

    def pay(self, invoice_id: str, url: str, amount: int | None = None) -> tuple[bytes, dict]:
        """Record a payment (all that is due, or `amount`); the signed invoice.payment_made it makes."""
        with self._state:
            inv = self._invoice(invoice_id)
            if inv["status"] not in ("UNPAID", "PARTIALLY_PAID"):
                raise ValueError(f"{invoice_id} is {inv['status']}")
            req = inv["payment_requests"][0]
            due = req["computed_amount_money"]["amount"] - req["total_completed_amount_money"]["amount"]
            req["total_completed_amount_money"]["amount"] += due if amount is None else min(amount, due)
            left = req["computed_amount_money"]["amount"] - req["total_completed_amount_money"]["amount"]
            inv.update(status="PAID" if left == 0 else "PARTIALLY_PAID", version=inv["version"] + 1,
                       next_payment_amount_money=self._m(left), updated_at=_now_iso(self.clock))
            if left == 0:
                self.orders[inv["order_id"]]["state"] = "COMPLETED"
        return self.signed(self.event("invoice.payment_made", invoice_id), url)

    def cancel(self, invoice_id: str, url: str) -> tuple[bytes, dict]:
        with self._state:
            inv = self._invoice(invoice_id)
            inv.update(status="CANCELED", version=inv["version"] + 1)
            self.orders[inv["order_id"]]["state"] = "CANCELED"
        return self.signed(self.event("invoice.canceled", invoice_id), url)

    routes = [
        ("POST", r"/v2/customers/search", _search_customers),
        ("POST", r"/v2/customers", _create_customer),
        ("GET", r"/v2/customers/(?P<id>[^/]+)", _get_customer),
        ("POST", r"/v2/orders", _create_order),
        ("GET", r"/v2/orders/(?P<id>[^/]+)", _get_order),
        ("POST", r"/v2/invoices/search", _search_invoices),
        ("POST", r"/v2/invoices", _create_invoice),
        ("GET", r"/v2/invoices/(?P<id>[^/]+)", _get_invoice),
        ("POST", r"/v2/invoices/(?P<id>[^/]+)/publish", _publish),
        ("GET", r"/pay/(?P<id>[^/]+)", _pay_page),
    ]


SIMULATOR = SquareSimulator
