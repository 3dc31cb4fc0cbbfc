"""Stripe Invoicing over its form-encoded HTTP API (no SDK at run time): auth, limits, HTTP only.

Tenant options (tenants file, platform entry `{provider: stripe, ...}`):
  api_key_env         name of the environment variable holding the secret key (sk_live_/sk_test_/rk_...)
  api_version         Stripe-Version to pin (default transform.DEFAULT_API_VERSION)
  webhook_secret_env  name of the environment variable holding the endpoint secret(s) (whsec_...;
                      several separated by commas while rolling a secret)
  custom_number       true: give Stripe our invoice number (`number`); the account must allow
                      custom numbers. Default false: Stripe numbers it, ours is in metadata and a
                      custom field
  stripe_account      connected account id, sent as Stripe-Account (Connect platforms)
  account             a name for the rate-limit bucket (default: a hash of the key; tenants sharing
                      one Stripe account under different keys should name the same bucket)
  send                true: the pipeline calls send_invoice after create (POST /invoices/{id}/send)
  base_url            API root (default https://api.stripe.com; tests point it at the simulator)

create_invoice: customer (refs -> customer.external_ids["stripe"] -> search by our id -> list by
email -> create) -> POST /v1/invoices -> one POST /v1/invoiceitems per item -> compare Stripe's
total with ours -> POST /v1/invoices/{id}/finalize. Every POST has a fixed Idempotency-Key per
logical operation: f"{key}:invoice", f"{key}:item:{i}", f"{key}:finalize", f"{key}:send" (Stripe
replays the first answer for 24 h; other parameters under the same key -> idempotency_error).
find_invoice: search by metadata['invoicer_key'] (Stripe search lags writes by up to a minute),
then the customer's latest invoices (a plain list, read-after-write consistent); a draft left by
an interrupted run is continued (missing items added, then finalised), not duplicated.
"""
from __future__ import annotations

import hashlib
import os
from contextlib import ExitStack
from typing import Any

import requests

from invoicer.errors import AuthFailed, MappingMissing, ProviderError, RateLimited, Rejected, Unavailable
from invoicer.providers import http
from invoicer.providers.base import Created, PaymentStatus, Provider, WebhookEvent
from invoicer.providers.ratelimit import Rate, within
from invoicer.providers.registry import register
from invoicer.providers.stripe import transform, webhooks

SLUG = "stripe"
DEFAULT_BASE = "https://api.stripe.com"
LIVE_RATE = 100  # requests per second per account, live mode (https://docs.stripe.com/rate-limits)
TEST_RATE = 25  # test mode / sandboxes
SEARCH_RATE = 20  # the Search API's own read limit, counted on top of the basic one
SEARCH_RATES = [within(SEARCH_RATE, 1, burst=4)]
PAGE = 100  # Stripe's largest page


def _refine(exc: ProviderError, resp) -> ProviderError:
    """Stripe's own signals on top of the status code: Stripe-Should-Retry and the error type."""
    if resp is None:
        return exc
    try:
        body = resp.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    err = err if isinstance(err, dict) else {}
    etype, code = err.get("type"), err.get("code")
    should = (resp.headers.get("Stripe-Should-Retry") or "").lower()
    status = resp.status_code
    if should == "false" and exc.retryable:
        return Rejected(f"{exc} [Stripe-Should-Retry: false]", status=status)
    if code == "rate_limit" and not isinstance(exc, RateLimited):  # older API versions: 400 rate_limit
        return RateLimited(str(exc), retry_after=exc.retry_after, status=status)
    if should == "true" and not exc.retryable and status not in (401, 403):
        return Unavailable(f"{exc} [Stripe-Should-Retry: true]", retry_after=exc.retry_after, status=status)
    if etype == "api_error" and not exc.retryable:
        return Unavailable(str(exc), retry_after=exc.retry_after, status=status)
    if etype == "idempotency_error" and status == 400:
        return Rejected(str(exc), status=status)  # the same key with other parameters: a bug, never retried
    return exc


@register
class Stripe(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status",
                              "parse_webhook", "payment_link"})

    # ------------------------------------------------------------ configuration

    def _api_key(self) -> str:
        name = self.options.get("api_key_env")
        if not name:
            raise MappingMissing("stripe: tenant option api_key_env (the environment variable with the secret key) "
                                 "is not set")
        value = os.environ.get(name, "").strip()
        if not value:
            raise AuthFailed(f"stripe: environment variable {name} (the Stripe secret key) is not set")
        return value

    @property
    def api_version(self) -> str:
        return str(self.options.get("api_version") or transform.DEFAULT_API_VERSION)

    def _rate_key(self, api_key: str) -> str:
        """One bucket per secret key (one key = one Stripe account), never the key itself. Requests made
        for connected accounts (Stripe-Account) share the platform key's bucket: the conservative choice,
        as how Stripe counts them against platform and connected account is not documented clearly."""
        account = self.options.get("account") or "key-" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
        return f"{SLUG}:{account}"

    @staticmethod
    def rates(api_key: str) -> list[Rate]:
        """The key's basic limit; a search request holds one of SEARCH_RATES as well."""
        per_second = TEST_RATE if "_test_" in api_key else LIVE_RATE
        return [within(per_second, 1, burst=per_second // 5)]

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, **kw) -> dict:
        return self._call(method, path, **kw).json()

    def _call(self, method: str, path: str, *, params: dict | None = None, form: dict | None = None,
              idempotency: str | None = None, search: bool = False) -> requests.Response:
        api_key = self._api_key()
        headers = {"Authorization": f"Bearer {api_key}", "Stripe-Version": self.api_version}
        if self.options.get("stripe_account"):
            headers["Stripe-Account"] = str(self.options["stripe_account"])
        if idempotency:
            headers["Idempotency-Key"] = idempotency
        seen: dict[str, Any] = {}

        def message(resp) -> str:
            seen["resp"] = resp
            try:
                text = transform.error_text(resp.json())
            except ValueError:
                text = resp.text[:300]
            rid = resp.headers.get("Request-Id")
            return f"{text} [{rid}]" if rid else text

        url = http.base_url(SLUG, self.options, DEFAULT_BASE) + path
        key = self._rate_key(api_key)
        with ExitStack() as stack:
            stack.enter_context(self.ctx.limiter.slot(key, self.rates(api_key)))
            if search:
                stack.enter_context(self.ctx.limiter.slot(f"{key}:search", SEARCH_RATES))
            try:
                resp = http.call(method, url, slug=SLUG, message=message, headers=headers, params=params,
                                 data=transform.encode(form) if form is not None else None)
            except ProviderError as exc:
                better = _refine(exc, seen.get("resp"))
                if better is exc:
                    raise
                raise better from exc
        return resp

    def _list(self, path: str, params: dict, limit_pages: int = 10) -> list[dict]:
        out: list[dict] = []
        params = dict(params, limit=PAGE)
        for _ in range(limit_pages):
            page = self._request("GET", path, params=params)
            out += page.get("data") or []
            if not page.get("has_more") or not page.get("data"):
                break
            params["starting_after"] = page["data"][-1]["id"]
        return out

    def _search(self, path: str, query: str) -> list[dict]:
        return self._request("GET", path, params={"query": query, "limit": PAGE}, search=True).get("data") or []

    # ------------------------------------------------------------ customers

    def _customer(self, doc: dict, plan: transform.Plan) -> str:
        ours = str(doc["customer"]["id"])
        refs = self.ctx.refs
        known = refs.get("customer", ours)
        if known:
            return known
        theirs = (doc["customer"].get("external_ids") or {}).get(SLUG)
        if not theirs:
            theirs = self._find_customer(doc)
        if not theirs:
            created = self._request("POST", "/v1/customers", form=plan.customer,
                                    idempotency=transform.customer_idempotency_key(doc, plan.customer))
            theirs = created["id"]
        return refs.put("customer", ours, theirs)

    def _find_customer(self, doc: dict) -> str | None:
        ours = str(doc["customer"]["id"])
        found = self._search("/v1/customers/search", transform.customer_query(ours))
        if found:
            return sorted(found, key=lambda c: c.get("created") or 0)[0]["id"]
        email = doc["customer"].get("email")
        if email:
            page = self._request("GET", "/v1/customers", params={"email": email, "limit": PAGE})
            for c in sorted(page.get("data") or [], key=lambda c: c.get("created") or 0):
                theirs = (c.get("metadata") or {}).get("invoicer_customer")
                if theirs in (None, "", ours):  # never someone else of ours who shares the address
                    return c["id"]
        return None

    # ------------------------------------------------------------ invoices

    def create_invoice(self, invoice: dict, key: str) -> Created:
        plan = transform.plan(invoice, key, self.options)  # Rejected before anything is sent
        customer = self._customer(invoice, plan)
        resp = self._call("POST", "/v1/invoices", form={"customer": customer, **plan.invoice},
                          idempotency=f"{key}:invoice")
        # a replay of the key answers with the first response (a draft), whatever became of it since;
        # a draft made just now has no items yet, so there is nothing to read back before adding them
        draft = resp.json()
        fresh = resp.headers.get("Idempotent-Replayed", "").lower() != "true"
        return self._complete(draft["id"], invoice, key, plan, draft=draft if fresh else None)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        found = self._search("/v1/invoices/search", transform.invoice_query(key))
        if not found:
            customer = self.ctx.refs.get("customer", str(invoice["customer"]["id"])) \
                or (invoice["customer"].get("external_ids") or {}).get(SLUG)
            if customer:  # search lags writes; a customer's list does not
                page = self._request("GET", "/v1/invoices", params={"customer": customer, "limit": PAGE})
                found = [i for i in page.get("data") or [] if (i.get("metadata") or {}).get("invoicer_key") == key]
        if not found:
            return None
        live = [i for i in found if i.get("status") != "void"] or found
        first = sorted(live, key=lambda i: (i.get("created") or 0, i["id"]))[0]
        plan = transform.plan(invoice, key, self.options)
        return self._complete(first["id"], invoice, key, plan)

    def _complete(self, invoice_id: str, doc: dict, key: str, plan: transform.Plan,
                  draft: dict | None = None) -> Created:
        """Bring our invoice to `open`: add the items it lacks, check the total, finalise. A `draft`
        made by this very call (not a replay) is known to be empty: it is not read back first."""
        inv = draft or self._request("GET", f"/v1/invoices/{invoice_id}")
        if inv.get("status") == "void":
            raise Rejected(f"stripe: invoice {invoice_id} for {doc['number']} was voided on Stripe; not recreated")
        if inv.get("status") == "draft":
            have = set() if draft else {(i.get("metadata") or {}).get("invoicer_item")
                                        for i in self._list("/v1/invoiceitems", {"invoice": invoice_id})}
            for i, item in enumerate(plan.items):
                if str(i) not in have:
                    self._request("POST", "/v1/invoiceitems",
                                  form={"customer": inv["customer"], "invoice": invoice_id, **item},
                                  idempotency=f"{key}:item:{i}")
            inv = self._request("GET", f"/v1/invoices/{invoice_id}")
            transform.check_total(inv, plan.total, plan.currency)
            inv = self._request("POST", f"/v1/invoices/{invoice_id}/finalize", form={"auto_advance": False},
                                idempotency=f"{key}:finalize")
        transform.check_total(inv, plan.total, plan.currency)
        return transform.created(inv)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        if created.detail.get("status") in ("paid", "void", "uncollectible"):
            return  # nothing to ask for (a zero total is paid at finalisation)
        self._request("POST", f"/v1/invoices/{created.external_id}/send", form={}, idempotency=f"{key}:send")

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._request("GET", f"/v1/invoices/{external_id}"))

    # ------------------------------------------------------------ webhooks

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        name = self.options.get("webhook_secret_env")
        if not name:
            raise AuthFailed("stripe webhook: tenant option webhook_secret_env is not set")
        secrets = [s.strip() for s in os.environ.get(name, "").split(",") if s.strip()]
        if not secrets:
            raise AuthFailed(f"stripe webhook: environment variable {name} (the endpoint secret) is not set")
        return webhooks.parse(headers, body, secrets)
