"""FreshBooks (accounting API): OAuth 2 and HTTP only; the mapping lives in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: freshbooks
  account_id         the FreshBooks accounting account id (e.g. "6BApk"), in every path (required)
  send               true: FreshBooks emails the invoice (update with action_email) -- the pipeline calls
                     send_invoice; false (default): marked as sent (action_mark_as_sent), invoicer emails it
  rate_per_minute    calls a minute we allow ourselves per account (default 60; FreshBooks publishes none)
  base_url           default https://api.freshbooks.com (else env INVOICER_FRESHBOOKS_BASE_URL)
  token_url          default <base_url>/auth/oauth/token
  redirect_uri       the app's registered redirect URI (FreshBooks wants it on refresh too)
  client_id_env, client_secret_env   env vars with the app's OAuth client (default INVOICER_FRESHBOOKS_CLIENT_ID
                     / _SECRET)
  webhook_verifier_env   env var with the callback's verifier (default INVOICER_FRESHBOOKS_WEBHOOK_VERIFIER)
Credentials: {"access_token", "refresh_token", "expires_at"}.

Auth: bearer tokens that live 12 hours; every refresh returns a NEW refresh token and the old one stops
working at once (single use). RefreshingToken renews under the credentials row lock and stores the new pair
before using it, so two workers never spend the same refresh token.

Exactly once: FreshBooks has no idempotency key. Our number is the invoice_number; before a retry the
pipeline calls find_invoice (GET .../invoices/invoices?search[invoice_number]=), so a create whose answer
was lost is found, not made again.
"""
from __future__ import annotations

import logging
import os

from ...errors import AuthFailed, MappingMissing, RateLimited
from .. import http
from ..base import Created, PaymentStatus, Provider, WebhookEvent
from ..bodytoken import ClientInBodyToken
from ..ratelimit import within
from ..registry import register
from ..jsonmoney import dumps, loads  # exact Decimal JSON numbers
from . import transform, webhooks

log = logging.getLogger("invoicer.providers.freshbooks")
SLUG = "freshbooks"
DEFAULT_BASE = "https://api.freshbooks.com"
CONCURRENCY = 4


_message = http.json_message(transform.error_text)


@register
class FreshBooks(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status", "parse_webhook"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.base = http.base_url(SLUG, self.options, DEFAULT_BASE)
        self.token_url = self.options.get("token_url") or f"{self.base}/auth/oauth/token"
        per_minute = int(self.options.get("rate_per_minute") or 60)
        self.rates = [within(per_minute, 60, burst=max(1, per_minute // 6))]

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        if not options.get("account_id"):
            return [f"platforms.{name}.account_id: the FreshBooks account id is not set"]
        return []

    # ------------------------------------------------------------ capabilities

    def create_invoice(self, invoice: dict, key: str) -> Created:
        self.account  # noqa: B018 -- a missing account id fails before anything is sent
        customer = self._client(invoice)
        answer = self._request("POST", "/invoices/invoices", body=transform.invoice_body(invoice, customer))
        return self._finish(self._settle(transform.result(answer)["invoice"], invoice), invoice)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        answer = self._request("GET", "/invoices/invoices", params={"search[invoice_number]": invoice["number"]})
        found = transform.pick_invoice(transform.result(answer).get("invoices") or [], invoice)
        if found is None:
            return None
        return self._finish(self._settle(found, invoice), invoice)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """FreshBooks emails the invoice, once: an invoice no longer in draft has been sent."""
        current = transform.result(self._request("GET", f"/invoices/invoices/{created.external_id}"))["invoice"]
        if not transform.is_draft(current):
            return
        to = invoice["customer"].get("email")
        if not to:  # as for QuickBooks: the invoice stands; nobody to email it to (no personal data logged)
            log.warning("freshbooks: invoice %s has no customer email; not sent by FreshBooks", invoice["number"])
            return
        self._request("PUT", f"/invoices/invoices/{created.external_id}", body=transform.send_body(invoice, to))

    def payment_status(self, external_id: str) -> PaymentStatus:
        inv = transform.result(self._request("GET", f"/invoices/invoices/{external_id}"))["invoice"]
        return transform.payment_status(inv)

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        name = self.options.get("webhook_verifier_env") or "INVOICER_FRESHBOOKS_WEBHOOK_VERIFIER"
        verifier = os.environ.get(name)
        if not verifier:
            raise AuthFailed(f"freshbooks webhook: environment variable {name} (the callback verifier) is not set")
        return webhooks.parse(headers, body, verifier, account_id=self.options.get("account_id"))

    # ------------------------------------------------------------ steps

    def _settle(self, inv: dict, doc: dict) -> dict:
        """FreshBooks' invoice with our total: a one-unit rounding difference gets a "Rounding" line."""
        diff = transform.difference(inv, doc)
        if diff and abs(diff) <= transform.money.quantum(doc["currency"]):
            body = transform.invoice_body(doc, str(inv["customerid"]), [transform.rounding_line(diff, doc["currency"])])
            inv = transform.result(self._request("PUT", f"/invoices/invoices/{inv['id']}", body=body))["invoice"]
        transform.check_total(inv, doc)
        return inv

    def _finish(self, inv: dict, doc: dict) -> Created:
        if transform.is_draft(inv) and not self.options.get("send"):
            inv = transform.result(self._request("PUT", f"/invoices/invoices/{inv['id']}",
                                                 body=transform.MARK_SENT))["invoice"]
        return transform.created(inv, self.account)

    def _client(self, doc: dict) -> str:
        """Our customer as a FreshBooks client: remembered, given by the sender, found by email, or made."""
        c = doc["customer"]
        theirs = self.ctx.refs.get("client", c["id"]) or (c.get("external_ids") or {}).get(SLUG)
        if theirs:
            return theirs
        found = None
        if c.get("email"):
            answer = self._request("GET", "/users/clients", params={"search[email]": c["email"]})
            found = transform.pick_client(transform.result(answer).get("clients") or [], c)
        if found is None:
            found = transform.result(self._request("POST", "/users/clients", body=transform.client_body(
                c, doc["currency"])))["client"]
        return self.ctx.refs.put("client", c["id"], str(found["id"]))

    # ------------------------------------------------------------ auth and HTTP

    @property
    def account(self) -> str:
        value = self.options.get("account_id")
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.account_id: the FreshBooks account id is not set")
        return str(value)

    def _token(self, refused: str | None = None) -> str:
        extra = {"redirect_uri": self.options["redirect_uri"]} if self.options.get("redirect_uri") else {}
        return ClientInBodyToken(SLUG, "FreshBooks", "account", self.options, self.ctx, self.token_url, _message,
                                 as_json=True, lifetime=43200, extra=extra).get(refused)

    def _request(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None) -> dict:
        account = self.account
        url = f"{self.base}/accounting/account/{account}{path}"
        data = dumps(body).encode() if body is not None else None
        failed = None
        for attempt in (1, 2):
            token = self._token(failed)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Api-Version": "alpha"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{account}", self.rates, concurrency=CONCURRENCY):
                    resp = http.call(method, url, slug=SLUG, message=_message, headers=headers, data=data,
                                     params=params)
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                failed = token
                continue
            except RateLimited as exc:  # FreshBooks documents no Retry-After: wait a minute
                if exc.retry_after is None:
                    raise RateLimited(str(exc), retry_after=60.0, status=exc.status) from exc
                raise
            return loads(resp.content) if resp.content else {}
        raise AssertionError("unreachable")
