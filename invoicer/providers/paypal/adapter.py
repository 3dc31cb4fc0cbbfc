"""PayPal Invoicing v2 over its JSON HTTP API (no SDK: PayPal's server SDK has no invoicing): auth,
limits, HTTP only.

Tenant options (tenants file, platform entry `{provider: paypal, ...}`):
  client_id_env, client_secret_env  names of the environment variables with the REST app's client id and
                       secret (required; OAuth 2 client credentials)
  webhook_id           the id PayPal gave the webhook subscription (needed to verify deliveries)
  email_recipient      true: PayPal emails the invoice to the customer when it is sent; default false
                       (the invoice is made payable through its link, which our own messages carry)
  invoicer_email       the merchant's PayPal email shown on the invoice (optional)
  account              a name for the rate-limit bucket (default: a hash of the client id)
  base_url             API root (default https://api-m.paypal.com; sandbox https://api-m.sandbox.paypal.com)

create_invoice: POST /v2/invoicing/invoices (a DRAFT, `Prefer: return=representation`) -> compare
PayPal's total with ours -> POST /v2/invoicing/invoices/{id}/send -> GET it for the payer's link.
Duplicate guard: our invoice number (`detail.invoice_number`, unique per PayPal merchant). A create
refused as a duplicate number is looked up (`POST /v2/invoicing/search-invoices`) and continued;
find_invoice (the pipeline's retry after an unknown outcome) searches the same way first. PayPal's
Invoicing spec declares no PayPal-Request-Id header, so none is sent.
"""
from __future__ import annotations

import hashlib
import threading
import time
from contextlib import nullcontext

from invoicer.errors import AuthFailed, ProviderError, RateLimited, Rejected
from invoicer.providers import http
from invoicer.providers.base import Created, PaymentStatus, Provider, WebhookEvent
from invoicer.providers.ratelimit import within
from invoicer.providers.registry import register
from invoicer.providers.paypal import transform, webhooks

SLUG = "paypal"
DEFAULT_BASE = "https://api-m.paypal.com"
RATE = 20  # requests per second per app we allow ourselves: PayPal publishes no figure (docs/providers/paypal.md)
EARLY = 120  # renew a token this many seconds before it expires
PAGE = 100
_tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (base URL, client id) -> (access token, expires at)
_lock = threading.Lock()


@register
class PayPal(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "payment_status", "parse_webhook", "payment_link"})

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = [f"platforms.{name}.{key} (the environment variable with the REST app's {what}) is not set"
                    for key, what in (("client_id_env", "client id"), ("client_secret_env", "secret"))
                    if not options.get(key)]
        if options.get("send"):
            problems.append(f"platforms.{name}.send: the invoice is always sent (made payable) when created; "
                            f"email_recipient: true makes PayPal email it too")
        return problems

    # ------------------------------------------------------------ auth

    def _client(self) -> tuple[str, str]:
        return (http.env_secret(SLUG, self.options, "client_id_env", "the PayPal client id"),
                http.env_secret(SLUG, self.options, "client_secret_env", "the PayPal client secret"))

    def _base(self) -> str:
        return http.base_url(SLUG, self.options, DEFAULT_BASE)

    def _token(self, refused: str | None = None) -> str:
        """The app's access token, from the process cache until shortly before it expires."""
        client = self._client()
        slot = (self._base(), client[0])
        with _lock:
            cached = _tokens.get(slot)
            if cached and cached[0] != refused and cached[1] > time.time() + EARLY:
                return cached[0]
            resp = _call("POST", f"{self._base()}/v1/oauth2/token", auth=client,
                             data={"grant_type": "client_credentials"}, headers={"Accept": "application/json"})
            token = resp.json()
            _tokens[slot] = (token["access_token"], time.time() + float(token.get("expires_in") or 3600))
            return token["access_token"]

    def _rate_key(self) -> str:
        return f"{SLUG}:" + (self.options.get("account")
                             or "app-" + hashlib.sha256(self._client()[0].encode()).hexdigest()[:16])

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body=None, *, raw: bytes | None = None, params: dict | None = None):
        """One API call with the app token (renewed once if PayPal refuses it); the JSON answer or None."""
        refused = None
        for _ in range(2):
            token = self._token(refused)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                       "Content-Type": "application/json", "Prefer": "return=representation"}
            limit = self.ctx.limiter.slot(self._rate_key(), [within(RATE, 1, burst=RATE // 2)]) if self.ctx \
                else nullcontext()
            with limit:
                try:
                    resp = _call(method, self._base() + path, headers=headers, json=body, data=raw, params=params)
                except AuthFailed as exc:
                    if exc.status != 401 or refused:
                        raise
                    refused = token
                    continue
            return resp.json() if resp.content else None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ invoices

    def check_invoice(self, invoice: dict) -> None:
        transform.check(invoice)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        plan = transform.plan(invoice, self.options)  # Rejected before anything is sent
        try:
            inv = self._request("POST", "/v2/invoicing/invoices", plan.invoice)
        except Rejected as exc:
            if "DUPLICATE_INVOICE_NUMBER" not in getattr(exc, "paypal_issues", ()):
                raise
            inv = self._search(invoice["number"])  # an earlier try made it: continue that one
            if inv is None:
                raise
        if inv.get("rel") and inv.get("href"):  # a link, not the invoice (Prefer not honoured)
            inv = self._request("GET", f"/v2/invoicing/invoices/{inv['href'].rstrip('/').rsplit('/', 1)[1]}")
        return self._complete(inv, plan)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        found = self._search(invoice["number"])
        return self._complete(found, transform.plan(invoice, self.options)) if found else None

    def _search(self, number: str) -> dict | None:
        page = self._request("POST", "/v2/invoicing/search-invoices", {"invoice_number": number},
                             params={"page": 1, "page_size": PAGE, "total_required": "false"}) or {}
        found = [i for i in page.get("items") or [] if (i.get("detail") or {}).get("invoice_number") == number]
        live = [i for i in found if i.get("status") != "CANCELLED"]
        return (live or found or [None])[0]

    def _complete(self, inv: dict, plan: transform.Plan) -> Created:
        """Bring our invoice to a payable state: check the total, send a DRAFT, read its payer link."""
        if inv.get("status") == "CANCELLED":
            raise Rejected(f"paypal: invoice {inv['id']} for {inv['detail'].get('invoice_number')} was cancelled on "
                           f"PayPal; not made again")
        transform.check_total(inv, plan.total)
        if inv.get("status") == "DRAFT":
            try:
                self._request("POST", f"/v2/invoicing/invoices/{inv['id']}/send", transform.notification(self.options))
            except Rejected as exc:  # sent by an earlier try whose answer was lost
                if "INVOICE_ALREADY_SENT" not in getattr(exc, "paypal_issues", ()):
                    raise
        if inv.get("status") == "DRAFT" or not transform.pay_link(inv):
            inv = self._request("GET", f"/v2/invoicing/invoices/{inv['id']}")
        return transform.created(inv)

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._request("GET", f"/v2/invoicing/invoices/{external_id}"))

    # ------------------------------------------------------------ webhooks

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        webhook_id = self.options.get("webhook_id")
        if not webhook_id:
            raise AuthFailed("paypal webhook: tenant option webhook_id is not set")
        request = webhooks.verify_body(headers, body, str(webhook_id))
        answer = self._request("POST", "/v1/notifications/verify-webhook-signature", raw=request) or {}
        if answer.get("verification_status") != "SUCCESS":
            raise AuthFailed(f"paypal webhook: PayPal says {answer.get('verification_status') or 'nothing'}")
        return webhooks.normalise(body)


def _call(method: str, url: str, **kwargs):
    """http.call with PayPal's error body read: every typed error carries its issue names
    (`paypal_issues`, e.g. ["UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_NUMBER"]); RATE_LIMIT_REACHED at
    any status is RateLimited."""
    seen: dict = {}

    def message(resp) -> str:
        try:
            body = resp.json()
        except ValueError:
            return resp.text[:300]
        seen["issues"] = transform.issues(body)
        return transform.error_text(body)

    try:
        return http.call(method, url, slug=SLUG, message=message, **kwargs)
    except ProviderError as exc:
        exc.paypal_issues = seen.get("issues", [])
        if "RATE_LIMIT_REACHED" in exc.paypal_issues and not isinstance(exc, RateLimited):
            raise RateLimited(str(exc), retry_after=exc.retry_after, status=exc.status) from exc
        raise
