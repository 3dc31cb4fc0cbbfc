"""QuickBooks Online (Accounting API v3, JSON): OAuth 2 with a rotating refresh token, and HTTP. The mapping
is in transform.py.

Tenant options (tenants file, platforms.<name>): realm_id (required), items {labor, material, fee} (the
QuickBooks item Id per line kind), tax_code (a string for taxable lines, or {taxable, non_taxable}; default
TAX/NON), txn_tax_code, discount_account, base_url (default https://quickbooks.api.intuit.com), token_url
(default Intuit's bearer-token endpoint), client_id_env / client_secret_env (names of the environment
variables that hold the app's client id and secret; default INVOICER_QUICKBOOKS_CLIENT_ID/_SECRET),
sandbox (links to the sandbox app), send (the pipeline then calls send_invoice), webhook_token_env (the
environment variable with the app's webhook Verifier Token; default INVOICER_QUICKBOOKS_WEBHOOK_TOKEN).

Stored credentials (invoicer credentials set <tenant> <platform>): {access_token, refresh_token, expires_at}
with expires_at in epoch seconds (an ISO 8601 string is read too).

Exactly once: the create carries requestid = our idempotency key (QuickBooks replays the first response for a
repeated id); before a retry the pipeline calls find_invoice, which looks the invoice up by DocNumber; a
"Duplicate Document Number" answer (6140) also resolves to the invoice already there, if it is ours.
Customers: found by email, then by DisplayName, else created; a "Duplicate Name Exists" answer (6240) to
the create is looked up by DisplayName and the customer found is used.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re

import requests

from ...errors import AuthFailed, MappingMissing, RateLimited, Rejected
from .. import http
from ..base import Created, PaymentStatus, Provider, WebhookEvent
from ..oauth import RefreshingToken
from ..ratelimit import within
from ..registry import register
from . import transform, webhooks

log = logging.getLogger("invoicer.providers.quickbooks")

SLUG = "quickbooks"
API_URL = "https://quickbooks.api.intuit.com"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
# Intuit, "API call limits and throttles": 500 requests per minute per realm, 10 per second per realm and
# app, 10 concurrent requests per realm and app.
RATES = [within(500, 60, burst=25), within(10, 1, burst=2)]  # per realm, sliding windows
CONCURRENCY = 10
THROTTLE_WAIT = 60.0  # Intuit: "If you see [429], wait 60 seconds before retrying"; no Retry-After is documented


def message(resp: requests.Response) -> str:
    """QuickBooks' error text: the JSON Fault, or the XML Fault it sends for throttling and some 401s."""
    try:
        text = transform.fault_text(transform.loads(resp.content))
        if text:
            return text
    except ValueError:
        pass
    body = resp.text
    if "<Fault" in body:
        parts = re.findall(r"<(Message|Detail)>(.*?)</\1>", body, re.S)
        code = re.search(r'<Error code="([^"]*)"', body)
        return (f"[{code.group(1)}] " if code else "") + " - ".join(p[1].strip() for p in parts)
    if body.strip().startswith("{"):  # the token endpoint: {"error": "invalid_grant"}
        return body.strip()[:300]
    return body[:300]


def derived_key(key: str, purpose: str) -> str:
    """A requestid for a secondary operation of the same logical step (QuickBooks wants ids unique per company;
    <= 50 characters)."""
    return hashlib.sha256(f"{key}|{purpose}".encode()).hexdigest()[:48]


@register
class QuickBooks(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status", "parse_webhook"})
    shared_webhook_url = True  # one endpoint per app, for every connected company
    poll_payments = True  # Intuit delivers webhooks best-effort: the hourly poll stays as the backstop

    # ------------------------------------------------------------ configuration

    @property
    def _platform(self) -> str:
        return getattr(self.ctx, "platform", "") or "<name>"

    def _realm(self) -> str:
        realm = self.options.get("realm_id")
        if not realm:
            raise MappingMissing(f"QuickBooks needs the company id: set platforms.{self._platform}.realm_id")
        return str(realm)

    def _api(self, path: str) -> str:
        return f"{http.base_url(SLUG, self.options, API_URL)}/v3/company/{self._realm()}/{path}"

    def _token(self) -> RefreshingToken:
        return RefreshingToken(SLUG, "QuickBooks", "company", self.options, self.ctx,
                               self.options.get("token_url") or TOKEN_URL, message)

    # ------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
                 content_type: str = "application/json") -> dict:
        """One API call under the realm's limits; a 401 renews the token and retries once."""
        url = self._api(path)
        params = {"minorversion": transform.MINOR_VERSION, **(params or {})}
        token = self._token().get()
        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            data = None
            if body is not None:
                data, headers["Content-Type"] = transform.dumps(body), content_type
            elif method == "POST":
                headers["Content-Type"] = content_type
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{self._realm()}", RATES, concurrency=CONCURRENCY):
                    resp = http.call(method, url, slug=SLUG, message=message, params=params, data=data,
                                     headers=headers)
            except AuthFailed as exc:
                if exc.status == 401 and attempt == 1:
                    token = self._token().get(refused=token)
                    continue
                raise
            except RateLimited as exc:
                if exc.retry_after is None and exc.status == 429:
                    raise RateLimited(str(exc), retry_after=THROTTLE_WAIT, status=429) from exc
                raise
            answer = transform.loads(resp.content) if resp.content else {}
            fault = transform.fault_text(answer)
            if fault:  # QuickBooks may answer 200 with a Fault in the body
                raise Rejected(f"{SLUG} answered {resp.status_code}: {fault}", status=resp.status_code)
            return answer
        raise AssertionError("unreachable")

    def _query(self, text: str) -> dict:
        return self._request("GET", "query", params={"query": text})

    # ------------------------------------------------------------ customers

    def _customer_id(self, doc: dict) -> str:
        c = doc["customer"]
        refs = self.ctx.refs
        known = refs.get("customer", c["id"])
        if known:
            return known
        theirs = (c.get("external_ids") or {}).get(SLUG) or (c.get("external_ids") or {}).get(self.ctx.platform)
        if theirs:
            return refs.put("customer", c["id"], str(theirs))
        found = None
        if c.get("email"):
            rows = transform.query_rows(self._query(transform.customer_query("PrimaryEmailAddr", c["email"])),
                                        "Customer")
            found = rows[0] if rows else None
        name = transform.display_name(c)
        if found is None:
            found, name = self._by_name(c, name)
        if found is None:
            found = self._create_customer(doc, name)
        return refs.put("customer", c["id"], str(found["Id"]))

    def _by_name(self, c: dict, name: str) -> tuple[dict | None, str]:
        """(the customer holding DisplayName `name` if it is ours to use, the name to create otherwise): a
        namesake with another email is someone else, and DisplayName must be unique in QuickBooks."""
        rows = transform.query_rows(self._query(transform.customer_query("DisplayName", name)), "Customer")
        same_name = rows[0] if rows else None
        if same_name is None:
            return None, name
        other_email = (same_name.get("PrimaryEmailAddr") or {}).get("Address")
        if not c.get("email") or not other_email or other_email.lower() == c["email"].lower():
            return same_name, name
        return None, transform.distinct_name(name, c["id"])

    def _create_customer(self, doc: dict, name: str) -> dict:
        """POST /customer; a 6240 "Duplicate Name Exists" (the name was taken after our lookup, by another
        client or another of our workers, or a vendor, employee or inactive customer holds it, which the
        lookup does not show) becomes a lookup by that name, and at most one more create under a name of
        our own; only a 6240 on that name too (and nothing of ours under it) is Rejected."""
        c = doc["customer"]
        for attempt in (1, 2):
            key = derived_key(f'{self.ctx.tenant}|{c["id"]}|{name}', "customer")
            try:
                return self._request("POST", "customer", params={"requestid": key},
                                     body=transform.customer_body(doc, name))["Customer"]
            except Rejected as exc:
                if "[6240]" not in str(exc):
                    raise
                found, other = self._by_name(c, name)
                if found is not None:
                    log.info("quickbooks: customer name taken meanwhile; using customer %s", found["Id"])
                    return found
                if attempt == 2:
                    raise
                name = other if other != name else transform.distinct_name(name, c["id"])
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ invoices

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        rows = transform.query_rows(self._query(transform.invoice_query(invoice["number"])), "Invoice")
        if not rows:
            return None
        ours = [r for r in rows if transform.is_ours(r, invoice)]
        if not ours:
            raise Rejected(f'QuickBooks already has invoice {rows[0].get("Id")} numbered {invoice["number"]} that '
                           f'invoicer did not create ({transform.reference(invoice)} is not in its PrivateNote)')
        return transform.created(ours[0], invoice, self.options)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        transform.invoice_body(invoice, self.options, "0", self._platform)  # a missing mapping fails before any call
        customer_id = self._customer_id(invoice)
        body = transform.invoice_body(invoice, self.options, customer_id, self._platform)
        try:
            request_id = key if len(key) <= 50 else derived_key(key, "invoice")  # QuickBooks: <= 50 characters
            answer = self._request("POST", "invoice", params={"requestid": request_id}, body=body)
        except Rejected as exc:
            if "[6140]" not in str(exc):
                raise
            found = self.find_invoice(invoice, key)  # the number is taken: by our earlier try, or by someone else
            if found is None:
                raise
            return found
        return transform.created(answer["Invoice"], invoice, self.options)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """Have QuickBooks email the invoice, once: skipped when it already shows EmailSent."""
        current = self._request("GET", f"invoice/{created.external_id}")["Invoice"]
        if current.get("EmailStatus") == "EmailSent":
            return
        to = invoice["customer"].get("email") or (current.get("BillEmail") or {}).get("Address")
        if not to:
            log.warning("quickbooks: invoice %s has no customer email; not sent by QuickBooks", invoice["number"])
            return
        self._request("POST", f"invoice/{created.external_id}/send",
                      params={"sendTo": to, "requestid": derived_key(key, "send")},
                      content_type="application/octet-stream")

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._request("GET", f"invoice/{external_id}")["Invoice"])

    # ------------------------------------------------------------ webhooks

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list[WebhookEvent]:
        """Verified invoice and payment changes of this entry's company (webhooks.py); no call to Intuit."""
        name = self.options.get("webhook_token_env") or "INVOICER_QUICKBOOKS_WEBHOOK_TOKEN"
        token = os.environ.get(name)
        if not token:
            raise AuthFailed(f"quickbooks webhook: environment variable {name} (the verifier token) is not set")
        return webhooks.parse(headers, body, token, self.options.get("realm_id"))

    def webhook_account(self) -> str | None:
        return str(self.options["realm_id"]) if self.options.get("realm_id") else None

    def payment_invoices(self, payment_id: str) -> list[str]:
        """The invoices a payment is applied to: GET /payment/{id}, its Line[].LinkedTxn of TxnType Invoice."""
        return transform.linked_invoices(self._request("GET", f"payment/{payment_id}")["Payment"])
