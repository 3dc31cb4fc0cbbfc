"""Zoho Books (API v3): OAuth 2 and HTTP only; the mapping lives in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: zoho_books
  organization_id    the Zoho Books organisation, sent as ?organization_id= on every call (required)
  data_center        com (default), eu, in, com.au, jp, ca, com.cn, sa: picks the API host
                     (https://www.zohoapis.<dc>) and the accounts host that issues tokens
  base_url           overrides the API host (else env INVOICER_ZOHO_BOOKS_BASE_URL); paths are /books/v3/...
  accounts_url       overrides the accounts host (token endpoint <accounts_url>/oauth/v2/token)
  taxes              {"8.25": "<tax_id>", ...}: the Zoho tax for a rate (percent); a rate not listed is
                     found among the organisation's taxes by its percentage, or made ("Sales tax 8.25%")
  items              {labor, material, fee}: optional Zoho item_id per line kind
  use_our_number     true: invoice_number is our number (Zoho refuses a duplicate); default: Zoho numbers it
  send               true: Zoho emails the invoice (POST /invoices/{id}/email) -- the pipeline calls
                     send_invoice; false (default): the invoice is marked as sent and invoicer emails it
  daily_limit        the organisation's plan's daily call cap (default 1000, the lowest plan's)
  client_id_env, client_secret_env   env vars with the app's OAuth client (default INVOICER_ZOHO_BOOKS_CLIENT_ID
                     / _SECRET)
  webhook_secret_env env var with the webhook's secret token (default INVOICER_ZOHO_BOOKS_WEBHOOK_SECRET)
Credentials (`invoicer credentials set`): {"access_token", "refresh_token", "expires_at"}.

Auth: `Authorization: Zoho-oauthtoken <access token>`; access tokens live an hour; the refresh token does
not rotate. Renewal runs through RefreshingToken (row lock, stored before use); the accounts server
answers a bad refresh token with HTTP 200 and {"error": "invalid_code"}, which is AuthFailed here.

Exactly once: Zoho has no idempotency key. Our number is the invoice's reference_number; before a retry
the pipeline calls find_invoice (GET /invoices?reference_number=), so a create whose answer was lost is
found, not repeated. With use_our_number Zoho itself refuses a second invoice with the number.

Limits: 100 requests a minute per organisation, a daily cap by plan, a few at once. Our limiter holds
90 a minute (bursts of 10) and the daily cap less 5 %, 5 in flight; a 429 waits a minute.
"""
from __future__ import annotations

import logging
import os

from ...errors import AuthFailed, MappingMissing, RateLimited, Rejected
from .. import http
from ..base import Created, PaymentStatus, Provider, WebhookEvent
from ..bodytoken import ClientInBodyToken
from ..ratelimit import within
from ..registry import register
from . import transform, webhooks

log = logging.getLogger("invoicer.providers.zoho_books")
SLUG = "zoho_books"
CONCURRENCY = 5
MINUTE_WAIT = 60.0


_message = http.json_message(transform.error_text)


@register
class ZohoBooks(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status", "parse_webhook"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        dc = str(self.options.get("data_center") or "com")
        if dc not in transform.DATA_CENTERS:
            raise MappingMissing(f"platforms.{self.platform}.data_center: {dc!r} is not a Zoho data centre "
                                 f"({', '.join(transform.DATA_CENTERS)})")
        api, accounts = transform.DATA_CENTERS[dc]
        self.api = http.base_url(SLUG, self.options, api) + "/books/v3"
        self.token_url = (self.options.get("accounts_url") or os.environ.get("INVOICER_ZOHO_BOOKS_ACCOUNTS_URL")
                          or accounts).rstrip("/") + "/oauth/v2/token"
        daily = int(self.options.get("daily_limit") or 1000)
        self.rates = [within(100 - 10, 60, burst=10), within(daily - daily // 20, 86400, burst=max(1, daily // 20))]

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        if not options.get("organization_id"):
            problems.append(f"platforms.{name}.organization_id: the Zoho Books organisation id is not set")
        dc = str(options.get("data_center") or "com")
        if dc not in transform.DATA_CENTERS:
            problems.append(f"platforms.{name}.data_center: {dc!r} is not one of {', '.join(transform.DATA_CENTERS)}")
        return problems

    # ------------------------------------------------------------ capabilities

    def create_invoice(self, invoice: dict, key: str) -> Created:
        self.org  # noqa: B018 -- a missing organisation id fails before anything is sent
        customer = self._contact(invoice)
        if customer.get("currency_code") and customer["currency_code"] != invoice["currency"]:
            raise Rejected(f"zoho_books contact {customer['contact_id']} bills in {customer['currency_code']}; "
                           f"invoice {invoice['number']} is in {invoice['currency']}")
        body = transform.invoice_body(invoice, str(customer["contact_id"]), self._tax_id(invoice), self.options)
        params = {"ignore_auto_number_generation": "true"} if self.options.get("use_our_number") else {}
        try:
            answer = self._request("POST", "/invoices", body=body, params=params)
        except Rejected as exc:
            if "[1001]" not in str(exc):  # "Invoice number already exists"
                raise
            found = self.find_invoice(invoice, key)
            if found is None:
                raise
            return found
        return self._finish(self._settle(answer["invoice"], invoice))

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        answer = self._request("GET", "/invoices", params={"reference_number": invoice["number"]})
        found = transform.pick_invoice(answer.get("invoices") or [], invoice)
        if found is None:
            return None
        return self._finish(self._settle(found, invoice))

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """Zoho emails the invoice to the customer, once (skipped when Zoho shows it emailed)."""
        inv = self._request("GET", f"/invoices/{created.external_id}")["invoice"]
        if inv.get("is_emailed"):
            return
        to = invoice["customer"].get("email")
        if not to:  # as for QuickBooks: the invoice stands; nobody to email it to (no personal data logged)
            log.warning("zoho_books: invoice %s has no customer email; not sent by Zoho Books", invoice["number"])
            return
        self._request("POST", f"/invoices/{created.external_id}/email", body=transform.email_body(invoice, to))

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._request("GET", f"/invoices/{external_id}")["invoice"])

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        name = self.options.get("webhook_secret_env") or "INVOICER_ZOHO_BOOKS_WEBHOOK_SECRET"
        secret = os.environ.get(name)
        if not secret:
            raise AuthFailed(f"zoho_books webhook: environment variable {name} (the secret token) is not set")
        return webhooks.parse(headers, body, secret, url, organization_id=self.options.get("organization_id"))

    # ------------------------------------------------------------ steps

    def _settle(self, inv: dict, doc: dict) -> dict:
        """Zoho's invoice with our total: a rounding tie is settled with an adjustment, anything else refused."""
        fix = transform.rounding_fix(inv, doc)
        if fix is not None:
            body = transform.invoice_body(doc, str(inv["customer_id"]), self._tax_id(doc), self.options, fix)
            inv = {**inv, **self._request("PUT", f"/invoices/{inv['invoice_id']}", body=body)["invoice"]}
        transform.check_total(inv, doc)
        return inv

    def _finish(self, inv: dict) -> Created:
        """A draft invoice is marked as sent when invoicer, not Zoho, emails it (option send false)."""
        if inv.get("status") == "draft" and not self.options.get("send"):
            self._request("POST", f"/invoices/{inv['invoice_id']}/status/sent")
            inv = {**inv, "status": "sent"}
        return transform.created(inv, self.options)

    def _contact(self, doc: dict) -> dict:
        """Our customer as a Zoho contact: remembered, given by the sender, found by email, or made."""
        c = doc["customer"]
        theirs = self.ctx.refs.get("contact", c["id"]) or (c.get("external_ids") or {}).get(SLUG)
        if theirs:
            return {"contact_id": theirs, **self._contact_currency(theirs)}
        found = None
        if c.get("email"):
            found = transform.pick_contact(self._request("GET", "/contacts", params={"email": c["email"]})
                                           .get("contacts") or [], c)
        if found is None:
            currency_id = self._currency_id(doc["currency"])
            try:
                found = self._request("POST", "/contacts", body=transform.contact_body(c, currency_id))["contact"]
            except Rejected as exc:
                if "[3062]" not in str(exc):  # the contact name is taken by another contact
                    raise
                found = self._request("POST", "/contacts", body=transform.contact_body(
                    c, currency_id, f"{c['name']} ({c['id']})"))["contact"]
        theirs = self.ctx.refs.put("contact", c["id"], str(found["contact_id"]))
        self.ctx.refs.put("contact_currency", theirs, found.get("currency_code") or doc["currency"])
        return {"contact_id": theirs, "currency_code": found.get("currency_code") or doc["currency"]}

    def _contact_currency(self, contact_id: str) -> dict:
        code = self.ctx.refs.get("contact_currency", contact_id)
        return {"currency_code": code} if code else {}

    def _currency_id(self, code: str) -> str | None:
        known = self.ctx.refs.get("currency", code)
        if known:
            return known
        for cur in self._request("GET", "/settings/currencies").get("currencies") or []:
            if cur.get("currency_code") == code:
                return self.ctx.refs.put("currency", code, str(cur["currency_id"]))
        raise MappingMissing(f"zoho_books organisation {self.org} has no currency {code}: add it in Zoho Books "
                             f"(Settings > Currencies)")

    def _tax_id(self, doc: dict) -> str | None:
        rate = doc["tax"]["rate"]
        if rate == 0 or not any(line["taxable"] for line in doc["lines"]):
            return None
        pct = transform.percent_key(rate)
        configured = {transform.percent_key(transform.amount(k) / 100): str(v)
                      for k, v in (self.options.get("taxes") or {}).items()}
        if pct in configured:
            return configured[pct]
        known = self.ctx.refs.get("tax", pct)
        if known:
            return known
        found = transform.pick_tax(self._request("GET", "/settings/taxes").get("taxes") or [], rate)
        if found is None:
            found = str(self._request("POST", "/settings/taxes",
                                      body=transform.tax_body(rate, doc["tax"].get("jurisdiction", "")))
                        ["tax"]["tax_id"])
        return self.ctx.refs.put("tax", pct, found)

    # ------------------------------------------------------------ auth and HTTP

    @property
    def org(self) -> str:
        value = self.options.get("organization_id")
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.organization_id: the Zoho Books organisation id "
                                 f"is not set")
        return str(value)

    def _token(self, refused: str | None = None) -> str:
        return ClientInBodyToken(SLUG, "Zoho Books", "organisation", self.options, self.ctx, self.token_url,
                                 _message, lifetime=3600).get(refused)

    def _request(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None) -> dict:
        org = self.org
        data = transform.dumps(body).encode() if body is not None else None
        failed = None
        for attempt in (1, 2):
            token = self._token(failed)
            headers = {"Authorization": f"Zoho-oauthtoken {token}", "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{org}", self.rates, concurrency=CONCURRENCY):
                    resp = http.call(method, self.api + path, slug=SLUG, message=_message, headers=headers,
                                     data=data, params={"organization_id": org, **(params or {})})
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                failed = token
                continue
            except RateLimited as exc:
                if exc.retry_after is None:
                    raise RateLimited(str(exc), retry_after=MINUTE_WAIT, status=exc.status) from exc
                raise
            answer = transform.loads(resp.content) if resp.content else {}
            if isinstance(answer, dict) and answer.get("code") not in (0, None):  # an error in a 200 answer
                raise Rejected(f"{SLUG} answered {resp.status_code}: {transform.error_text(answer)}",
                               status=resp.status_code)
            return answer
        raise AssertionError("unreachable")
