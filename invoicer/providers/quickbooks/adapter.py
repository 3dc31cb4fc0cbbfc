"""QuickBooks Online (Accounting API v3, JSON): OAuth 2 with a rotating refresh token, and HTTP. The mapping
is in transform.py.

Tenant options (tenants file, platforms.<name>): realm_id (required), items {labor, material, fee} (the
QuickBooks item Id per line kind), tax_code (a string for taxable lines, or {taxable, non_taxable}; default
TAX/NON), txn_tax_code, discount_account, base_url (default https://quickbooks.api.intuit.com), token_url
(default Intuit's bearer-token endpoint), client_id_env / client_secret_env (names of the environment
variables that hold the app's client id and secret; default INVOICER_QUICKBOOKS_CLIENT_ID/_SECRET),
sandbox (links to the sandbox app), send (the pipeline then calls send_invoice).

Stored credentials (invoicer credentials set <tenant> <platform>): {access_token, refresh_token, expires_at}
with expires_at in epoch seconds (an ISO 8601 string is read too).

Exactly once: the create carries requestid = our idempotency key (QuickBooks replays the first response for a
repeated id); before a retry the pipeline calls find_invoice, which looks the invoice up by DocNumber; a
"Duplicate Document Number" answer (6140) also resolves to the invoice already there, if it is ours.
"""
from __future__ import annotations

import hashlib
import logging
import re

import requests

from ...errors import AuthFailed, MappingMissing, RateLimited, Rejected
from .. import http
from ..base import Created, PaymentStatus, Provider
from ..oauth import RefreshingToken
from ..ratelimit import within
from ..registry import register
from . import transform

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
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status"})

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
        if found is None:
            found, name = self._by_name(c)
        if found is None:
            try:
                found = self._create_customer(doc, name)
            except Rejected as exc:
                # another worker made a customer of this name between our look-up and our create (two
                # jobs of namesakes at once): look again, then reuse it or take the distinct name
                if "[6240]" not in str(exc):
                    raise
                found, name = self._by_name(c)
                found = found or self._create_customer(doc, name)
        return refs.put("customer", c["id"], str(found["Id"]))

    def _by_name(self, c: dict) -> tuple[dict | None, str]:
        """(the customer of this name if it is this person, else None; the DisplayName to create it under)."""
        name = transform.display_name(c)
        rows = transform.query_rows(self._query(transform.customer_query("DisplayName", name)), "Customer")
        same_name = rows[0] if rows else None
        other_email = ((same_name or {}).get("PrimaryEmailAddr") or {}).get("Address")
        if same_name and (not c.get("email") or not other_email or other_email.lower() == c["email"].lower()):
            return same_name, name
        if same_name:  # a different person of the same name: DisplayName must be unique in QuickBooks
            return None, f'{name[:transform.DISPLAY_NAME_MAX - len(c["id"]) - 3]} ({c["id"]})'
        return None, name

    def _create_customer(self, doc: dict, name: str) -> dict:
        key = derived_key(f'{self.ctx.tenant}|{doc["customer"]["id"]}|{name}', "customer")
        return self._request("POST", "customer", params={"requestid": key},
                             body=transform.customer_body(doc, name))["Customer"]

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
