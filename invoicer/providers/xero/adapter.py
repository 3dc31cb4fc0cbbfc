"""Xero (Accounting API 2.0): auth and HTTP only; the mapping lives in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: xero
  tenant_id          the Xero organisation id, sent as `xero-tenant-id` (required)
  accounts           {labor, material, fee}: the AccountCode for each kind of line (required per kind used)
  tax_types          {taxable, exempt}: the TaxType for taxable and untaxed lines (required per kind used)
  use_our_number     true: InvoiceNumber is our number (Xero refuses a duplicate); default false: Xero
                     numbers the invoice. Our number is always the Reference, which is how it is found again.
  send               true: the pipeline emails the invoice from Xero (POST /Invoices/{id}/Email)
  base_url           default https://api.xero.com (else env INVOICER_XERO_BASE_URL)
  token_url          default https://identity.xero.com/connect/token (else env INVOICER_XERO_TOKEN_URL)
  client_id_env, client_secret_env   env vars with the app's OAuth client (default INVOICER_XERO_CLIENT_ID,
                     INVOICER_XERO_CLIENT_SECRET)
  webhook_key_env    env var with the app's webhook signing key (default INVOICER_XERO_WEBHOOK_KEY)
Credentials (`invoicer credentials set`): {"access_token", "refresh_token", "expires_at"} (epoch seconds).

Auth: OAuth 2 with 30-minute access tokens and ROTATING refresh tokens. The token is renewed through
`ctx.credentials.refresh` (under a row lock, stored before use) when it is about to expire, and once more
when Xero answers 401; the request is then repeated once. If a refresh's answer is lost, the old refresh
token stays usable for Xero's 30-minute grace period, so the retry still works.

Limits per organisation: 60 calls a minute, 5,000 a day, 5 at once. Our limiter holds 50 a minute with
bursts of 10 and 4,800 a day with bursts of 200, so no rolling 60 s (or 24 h) window ever sees more
than 60 (5,000) of our calls, whichever way Xero counts; concurrency 5.
"""
from __future__ import annotations

import os

import requests

from ...errors import AuthFailed, MappingMissing, ProviderError, Rejected
from .. import http
from ..base import Created, PaymentStatus, Provider, WebhookEvent
from ..oauth import RefreshingToken
from ..ratelimit import within
from ..registry import register
from . import transform, webhooks

DEFAULT_BASE = "https://api.xero.com"
DEFAULT_TOKEN_URL = "https://identity.xero.com/connect/token"
RATES = [within(60, 60, burst=10), within(5000, 86400, burst=200)]
CONCURRENCY = 5
BATCH = 50  # Xero's advice: about 50 elements per request
LOOKUP = 25  # customers per GET /Contacts?where=... (two terms each; keeps the URL short)


_body_message = http.json_message(transform.error_text)


def _message(resp: requests.Response) -> str:
    """Xero's error text, with the limit it names on a 429."""
    text = _body_message(resp)
    problem = resp.headers.get("X-Rate-Limit-Problem")
    if problem:
        return f"{problem} limit reached" + (f"; {text}" if text else "")
    return text or resp.reason or ""


@register
class Xero(Provider):
    slug = "xero"
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status", "parse_webhook",
                              "create_batch"})
    shared_webhook_url = True  # an app's webhook gets every connected organisation's events

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or "xero"
        self.api = http.base_url(self.slug, self.options, DEFAULT_BASE) + "/api.xro/2.0"
        self.token_url = (self.options.get("token_url") or os.environ.get("INVOICER_XERO_TOKEN_URL")
                          or DEFAULT_TOKEN_URL)
        self.mapping = transform.Mapping.from_options(self.options, self.platform)

    # ------------------------------------------------------------ capabilities

    def create_invoice(self, invoice: dict, key: str) -> Created:
        [result] = self.create_invoices([invoice], [key])
        if isinstance(result, Exception):
            raise result
        return result

    def create_invoices(self, invoices: list[dict], keys: list[str]) -> list[Created | ProviderError]:
        """Many invoices in as few calls as Xero allows (50 a call, contacts too), each total checked
        against ours. With summarizeErrors=false Xero makes the good ones and says why it refused the
        others, so each invoice gets its own outcome."""
        if len(invoices) != len(keys):
            raise ValueError("one idempotency key per invoice")
        self.tenant_id  # noqa: B018 -- a missing organisation id fails before anything is sent
        for doc in invoices:
            self.check_invoice(doc)
        contacts = self._contacts([doc["customer"] for doc in invoices], keys)
        out: list[Created | ProviderError | None] = [contacts[doc["customer"]["id"]] for doc in invoices]
        ready = [i for i, c in enumerate(out) if isinstance(c, str)]
        for start in range(0, len(ready), BATCH):
            chunk = ready[start:start + BATCH]
            docs = [invoices[i] for i in chunk]
            body = transform.invoices_body(docs, [out[i] for i in chunk], self.mapping)
            resp = self._request("PUT", "/Invoices", body=body, params={"summarizeErrors": "false"},
                                 key=transform.batch_key([keys[i] for i in chunk]))
            for i, result in zip(chunk, transform.created_each(transform.loads(resp.content), docs)):
                out[i] = result
        return out

    def check_invoice(self, invoice: dict) -> None:
        """Rejected, before any call, for an invoice Xero cannot take exactly (e.g. 3-decimal money)."""
        transform.invoices_body([invoice], ["00000000-0000-0000-0000-000000000000"], self.mapping)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        if self.mapping.use_our_number:
            params = {"InvoiceNumbers": invoice["number"]}
        else:
            params = {"where": transform.invoices_where(invoice)}
        resp = self._request("GET", "/Invoices", params=params)
        found = transform.pick_invoice(transform.loads(resp.content).get("Invoices") or [], invoice,
                                       by_number=self.mapping.use_our_number)
        if found is None:
            return None
        transform.check_total(found, invoice)
        return transform.created(found)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """Xero emails the invoice to its contact (AUTHORISED invoices only); skipped if already sent."""
        if created.detail.get("sent_to_contact"):
            return
        self._request("POST", f"/Invoices/{created.external_id}/Email", body={},
                      key=transform.idempotency_key(key, "email"))

    def payment_status(self, external_id: str) -> PaymentStatus:
        resp = self._request("GET", f"/Invoices/{external_id}")
        invoices = transform.loads(resp.content).get("Invoices") or []
        if not invoices:
            raise Rejected(f"xero has no invoice {external_id}")
        return transform.payment_status(invoices[0])

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        name = self.options.get("webhook_key_env") or "INVOICER_XERO_WEBHOOK_KEY"
        key = os.environ.get(name)
        if not key:
            raise AuthFailed(f"xero webhook: environment variable {name} (the webhook key) is not set")
        return webhooks.parse(headers, body, key, tenant_id=self.options.get("tenant_id"))

    # ------------------------------------------------------------ customers

    def _contacts(self, customers: list[dict], keys: list[str]) -> dict[str, str | ProviderError]:
        """Each customer's ContactID (or why there is none): remembered, given by the sender, found in
        one lookup per 25 customers, or made in one call per 50; a refused one is retried alone."""
        todo: dict[str, tuple[dict, str]] = {}
        found: dict[str, str | ProviderError] = {}
        for customer, key in zip(customers, keys):
            ours = customer["id"]
            if ours in found or ours in todo:
                continue
            known = self.ctx.refs.get("contact", ours) or (customer.get("external_ids") or {}).get("xero")
            if known:
                found[ours] = known
            else:
                todo[ours] = (customer, key)
        lookups = [c for c, _ in todo.values() if transform.contacts_where(c)]
        for start in range(0, len(lookups), LOOKUP):
            chunk = lookups[start:start + LOOKUP]
            where = " OR ".join(transform.contacts_where(c) for c in chunk)  # each is ORs of equalities
            resp = self._request("GET", "/Contacts", params={"where": where})
            existing = transform.loads(resp.content).get("Contacts") or []
            for c in chunk:
                theirs = transform.pick_contact(existing, c)
                if theirs:
                    found[c["id"]] = self.ctx.refs.put("contact", c["id"], theirs)
        missing = [(c, k) for ours, (c, k) in todo.items() if ours not in found]
        for start in range(0, len(missing), BATCH):
            chunk = missing[start:start + BATCH]
            resp = self._request("PUT", "/Contacts", body=transform.contacts_body([c for c, _ in chunk]),
                                 params={"summarizeErrors": "false"},
                                 key=transform.batch_key([transform.idempotency_key(k, "contacts") for _, k in chunk]))
            made = transform.contacts_made(transform.loads(resp.content), [c for c, _ in chunk])
            for (c, k), theirs in zip(chunk, made):
                if isinstance(theirs, str):
                    found[c["id"]] = self.ctx.refs.put("contact", c["id"], theirs)
                else:  # a name another contact holds, or a customer made meanwhile: sort it out alone
                    try:
                        found[c["id"]] = self._contact(c, k)
                    except Rejected as exc:
                        found[c["id"]] = exc
        return found

    def _contact(self, customer: dict, key: str) -> str:
        """The ContactID of one customer: remembered, given by the sender, found by our id or email, or made."""
        ours = customer["id"]
        known = self.ctx.refs.get("contact", ours)
        if known:
            return known
        theirs = (customer.get("external_ids") or {}).get("xero") or self._find_contact(customer)
        if not theirs:
            theirs = self._create_contact(customer, key)
        return self.ctx.refs.put("contact", ours, theirs)  # a concurrent worker's answer wins

    def _find_contact(self, customer: dict) -> str | None:
        where = transform.contacts_where(customer)
        if not where:
            return None
        resp = self._request("GET", "/Contacts", params={"where": where})
        return transform.pick_contact(transform.loads(resp.content).get("Contacts") or [], customer)

    def _create_contact(self, customer: dict, key: str) -> str:
        try:
            resp = self._request("PUT", "/Contacts", body=transform.contact_body(customer),
                                 key=transform.idempotency_key(key, "contact"))
        except Rejected as exc:
            if "already assigned" not in str(exc):
                raise
            found = self._find_contact(customer)  # another worker may have just made this very customer
            if found:
                return found
            if "contact name" not in str(exc):
                raise
            # Xero names are unique per organisation and another customer has this one: add our id to it
            resp = self._request("PUT", "/Contacts",
                                 body=transform.contact_body(customer, f"{customer['name']} ({customer['id']})"),
                                 key=transform.idempotency_key(key, "contact", "named"))
        contacts = transform.loads(resp.content).get("Contacts") or []
        if not contacts or not contacts[0].get("ContactID"):
            raise Rejected(f"xero made no contact for customer {customer['id']}")
        return contacts[0]["ContactID"]

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        """What is missing from a tenant's Xero entry, for a startup check (empty when complete)."""
        problems = []
        if not options.get("tenant_id"):
            problems.append(f"platforms.{name}.tenant_id: the Xero organisation id is not set")
        for group, keys in (("accounts", transform.KINDS), ("tax_types", ("taxable", "exempt"))):
            for k in keys:
                if not (options.get(group) or {}).get(k):
                    problems.append(f"platforms.{name}.{group}.{k} is not set")
        return problems

    # ------------------------------------------------------------ auth and HTTP

    @property
    def tenant_id(self) -> str:
        value = self.options.get("tenant_id")
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.tenant_id: the Xero organisation id is not set")
        return str(value)

    def _token(self, refused: str | None = None) -> str:
        return RefreshingToken(self.slug, "Xero", "organisation", self.options, self.ctx, self.token_url,
                               _message).get(refused)

    def _request(self, method: str, path: str, *, body=None, params: dict | None = None,
                 key: str | None = None) -> requests.Response:
        tenant = self.tenant_id
        data = transform.dumps(body).encode() if body is not None else None
        failed = None
        for attempt in (1, 2):
            token = self._token(failed)
            headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            if key:
                headers["Idempotency-Key"] = key
            try:
                with self.ctx.limiter.slot(f"xero:{tenant}", RATES, concurrency=CONCURRENCY):
                    return http.call(method, self.api + path, slug=self.slug, message=_message, headers=headers,
                                     data=data, params=params)
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                failed = token  # expired or revoked early: renew once and repeat
        raise AssertionError("unreachable")
