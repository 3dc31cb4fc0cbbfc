"""Square Invoices over its JSON HTTP API (no SDK at run time): auth, limits, HTTP only.

Tenant options (tenants file, platform entry `{provider: square, ...}`):
  location_id          the Square location the orders and invoices belong to (required)
  access_token_env     name of the environment variable holding the access token (required; a personal
                       access token, or an OAuth access token the seller granted)
  square_version       Square-Version to pin (default transform.DEFAULT_VERSION)
  currency             the location's currency; an invoice in another one is refused before sending
  delivery             email | sms | share_manually (default): how Square itself sends the invoice when
                       it is published (share_manually: Square sends nothing, our messages carry the link)
  payment_methods      list of card, bank_account, square_gift_card, cash_app_pay, buy_now_pay_later
                       (default [card])
  webhook_signature_key_env  name of the environment variable with the webhook subscription's signature key
  webhook_url          the notification URL exactly as registered with Square (default: the URL the
                       request reached us at; set it when a proxy rewrites scheme or host)
  account              a name for the rate-limit bucket (default: a hash of the token)
  base_url             API root (default https://connect.squareup.com; the sandbox is
                       https://connect.squareupsandbox.com)

create_invoice: customer (refs -> customer.external_ids["square"] -> search by reference_id -> by
email -> create) -> POST /v2/orders -> compare Square's total with ours -> POST /v2/invoices (DRAFT)
-> POST /v2/invoices/{id}/publish with its version. Every create carries an `idempotency_key` made
from our key per step (`<key>:order`, `<key>:invoice`, `<key>:publish:<version>`): a replay answers with the
first result. The order id is remembered (refs) as soon as Square gives it, so a retry outside
Square's replay window reuses it instead of making a second order.
find_invoice: search the location's invoices of that customer for our invoice number; a DRAFT left
by an interrupted run is published, not duplicated.
"""
from __future__ import annotations

import hashlib
import os

from invoicer.errors import AuthFailed, MappingMissing, ProviderError, RateLimited, Rejected
from invoicer.providers import http
from invoicer.providers.base import Created, PaymentStatus, Provider, WebhookEvent
from invoicer.providers.ratelimit import within
from invoicer.providers.registry import register
from invoicer.providers.square import transform, webhooks

SLUG = "square"
DEFAULT_BASE = "https://connect.squareup.com"
RATE = 20  # requests per second per seller we allow ourselves: Square publishes no figure (docs/providers/square.md)
PAGE = 200  # SearchInvoices' largest page


@register
class Square(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "payment_status", "parse_webhook", "payment_link"})

    # ------------------------------------------------------------ configuration

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        for key, what in (("location_id", "the Square location id"),
                          ("access_token_env", "the environment variable with the access token")):
            if not options.get(key):
                problems.append(f"platforms.{name}.{key} ({what}) is not set")
        delivery = str(options.get("delivery") or "share_manually").lower()
        if delivery not in transform.DELIVERY:
            problems.append(f"platforms.{name}.delivery: {delivery!r} is not one of {', '.join(transform.DELIVERY)}")
        methods = options.get("payment_methods") or ["card"]
        unknown = [m for m in methods if m not in transform.PAYMENT_METHODS]
        if unknown or not isinstance(methods, list):
            problems.append(f"platforms.{name}.payment_methods: {unknown or methods} not among "
                            f"{', '.join(transform.PAYMENT_METHODS)}")
        if options.get("send"):
            problems.append(f"platforms.{name}.send: Square sends the invoice when it is published; "
                            f"choose how with delivery: email | sms | share_manually")
        return problems

    def _token(self) -> str:
        return http.env_secret(SLUG, self.options, "access_token_env", "the Square access token")

    @property
    def location_id(self) -> str:
        value = self.options.get("location_id")
        if not value:
            raise MappingMissing("square: tenant option location_id (the Square location) is not set")
        return str(value)

    def _rate_key(self, token: str) -> str:
        account = self.options.get("account") or "token-" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return f"{SLUG}:{account}"

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        token = self._token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   "Square-Version": str(self.options.get("square_version") or transform.DEFAULT_VERSION)}
        seen: dict = {}

        def message(resp) -> str:
            try:
                seen["body"] = resp.json()
            except ValueError:
                return resp.text[:300]
            return transform.error_text(seen["body"])

        url = http.base_url(SLUG, self.options, DEFAULT_BASE) + path
        with self.ctx.limiter.slot(self._rate_key(token), [within(RATE, 1, burst=RATE // 2)]):
            try:
                resp = http.call(method, url, slug=SLUG, message=message, headers=headers, json=body)
            except ProviderError as exc:
                codes = transform.error_codes(seen.get("body"))
                if any(cat == "RATE_LIMIT_ERROR" or code == "RATE_LIMITED" for cat, code in codes) \
                        and not isinstance(exc, RateLimited):
                    raise RateLimited(str(exc), retry_after=exc.retry_after, status=exc.status) from exc
                exc.square_codes = [code for _, code in codes]
                raise
        return resp.json()

    # ------------------------------------------------------------ customers

    def _find_customer(self, doc: dict) -> str | None:
        ours = str(doc["customer"]["id"])
        found = self._request("POST", "/v2/customers/search",
                              transform.search_body("reference_id", ours[:100])).get("customers") or []
        if found:
            return found[0]["id"]
        email = doc["customer"].get("email")
        if email:
            for c in self._request("POST", "/v2/customers/search",
                                   transform.search_body("email_address", email)).get("customers") or []:
                if c.get("reference_id") in (None, "", ours[:100]):  # never someone else of ours at that address
                    return c["id"]
        return None

    def _known_customer(self, doc: dict) -> str | None:
        ours = str(doc["customer"]["id"])
        return self.ctx.refs.get("customer", ours) or (doc["customer"].get("external_ids") or {}).get(SLUG)

    def _customer(self, doc: dict, plan: transform.Plan) -> str:
        known = self._known_customer(doc)
        if known:
            return known
        theirs = self._find_customer(doc)
        if not theirs:
            body = {"idempotency_key": transform.customer_key(doc, plan.customer), **plan.customer}
            theirs = self._request("POST", "/v2/customers", body)["customer"]["id"]
        return self.ctx.refs.put("customer", str(doc["customer"]["id"]), theirs)

    # ------------------------------------------------------------ invoices

    def check_invoice(self, invoice: dict) -> None:
        transform.check(invoice, self.options)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        plan = transform.plan(invoice, key, self.options)  # Rejected before anything is sent
        location = self.location_id  # MappingMissing before anything is sent
        customer = self._customer(invoice, plan)
        order_id = self.ctx.refs.get("order", key)
        if order_id:
            order = self._request("GET", f"/v2/orders/{order_id}")["order"]
        else:
            body = {"idempotency_key": transform.idempotency(key, "order"),
                    "order": {"location_id": location, "customer_id": customer, **plan.order}}
            order = self._request("POST", "/v2/orders", body)["order"]
            self.ctx.refs.put("order", key, order["id"])
        transform.check_total(order, plan.total)
        body = {"idempotency_key": transform.idempotency(key, "invoice"),
                "invoice": transform.invoice_body(invoice, self.options, location, order["id"], customer)}
        inv = self._request("POST", "/v2/invoices", body)["invoice"]
        return self._publish(inv, key)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        customer = self._known_customer(invoice) or self._find_customer(invoice)
        if not customer:
            return None
        query = {"query": {"filter": {"location_ids": [self.location_id], "customer_ids": [customer]},
                           "sort": {"field": "INVOICE_SORT_DATE", "order": "DESC"}}, "limit": PAGE}
        for _ in range(10):
            page = self._request("POST", "/v2/invoices/search", query)
            for inv in page.get("invoices") or []:
                if inv.get("invoice_number") == invoice["number"]:
                    if inv.get("status") == "CANCELED":
                        raise Rejected(f"square: invoice {inv['id']} for {invoice['number']} was canceled on Square; "
                                       f"not made again")
                    return self._publish(inv, key)
            if not page.get("cursor"):
                return None
            query["cursor"] = page["cursor"]
        return None

    def _publish(self, inv: dict, key: str) -> Created:
        """Publish a DRAFT with its current version (once more after a version conflict)."""
        for _ in range(2):
            if inv.get("status") != "DRAFT":
                return transform.created(inv)
            version = inv["version"]
            body = {"version": version, "idempotency_key": transform.idempotency(key, f"publish:{version}")}
            try:
                return transform.created(self._request("POST", f"/v2/invoices/{inv['id']}/publish", body)["invoice"])
            except Rejected as exc:
                if "CONFLICT" not in getattr(exc, "square_codes", []):
                    raise
                inv = self._request("GET", f"/v2/invoices/{inv['id']}")["invoice"]
        raise Rejected(f"square: invoice {inv['id']} keeps changing version; it was left as a draft")

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._request("GET", f"/v2/invoices/{external_id}")["invoice"])

    # ------------------------------------------------------------ webhooks

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        name = self.options.get("webhook_signature_key_env")
        if not name:
            raise AuthFailed("square webhook: tenant option webhook_signature_key_env is not set")
        keys = [k.strip() for k in os.environ.get(name, "").split(",") if k.strip()]
        if not keys:
            raise AuthFailed(f"square webhook: environment variable {name} (the signature key) is not set")
        return webhooks.parse(headers, body, str(self.options.get("webhook_url") or url), keys)
