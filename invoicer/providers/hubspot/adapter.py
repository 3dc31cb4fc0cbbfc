"""HubSpot (CRM objects API v3/v4): the invoice mirrored into the CRM with its line items, associated to
the customer's contact (and deal); auth, limits and HTTP here, the mapping in transform.py.

HubSpot is a CRM, not where the customer pays: it gets the invoice once it exists (after our PDF, so a
note can link to it; capability `attach_pdf`), and gives no payment link.

Tenant options (platforms.<name> in the tenants file):
  provider: hubspot
  token_env          env var holding a private app's access token (sent as a bearer token). Without it the
                     tenant's OAuth tokens are used (`invoicer credentials set`: {"access_token",
                     "refresh_token", "expires_at"}), renewed with the app's client id and secret from
                     client_id_env / client_secret_env (default INVOICER_HUBSPOT_CLIENT_ID / _SECRET)
  portal_id          the HubSpot account (hub) id: names the rate-limit bucket and makes record links
  reference_property the unique custom invoice property holding our invoice number (default
                     invoicer_reference; created once per portal with hasUniqueValue: true, see the docs page)
  rate_per_10s       the app's burst limit per 10 seconds (100 by default; 150/190 on higher tiers); we
                     hold 90 % of it (bursts of a tenth), so latency between our limiter and HubSpot's
                     window cannot tip a request over
  note               true: a note with the PDF link on the contact's timeline
  association_types  overrides of transform.ASSOCIATIONS (HubSpot-defined association type ids)
  base_url           default https://api.hubapi.com (else env INVOICER_HUBSPOT_BASE_URL)
  token_url          default https://api.hubapi.com/oauth/v1/token

create_invoice: contact (refs -> customer.external_ids["hubspot"] -> search by email -> create) ->
POST /crm/v3/objects/invoices (draft, our number in the unique property, associated to the contact and
to the deal in customer.external_ids["hubspot_deal"]) -> POST /crm/v3/objects/line_items/batch/create
(associated to the invoice) -> read back, compare hs_amount_billed with our total -> optional note ->
PATCH hs_invoice_status=open. A create that hits the unique property (409) becomes "look it up"; a
retried delivery searches by the property first and continues what it finds (missing line items added,
then opened), so an invoice is never made twice.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from contextlib import ExitStack

import requests

from ...errors import AuthFailed, MappingMissing, ProviderError, RateLimited, Rejected, Unavailable
from .. import http
from ..base import Created, Provider
from ..bodytoken import ClientInBodyToken
from ..ratelimit import within
from ..registry import register
from . import transform

DEFAULT_BASE = "https://api.hubapi.com"
DEFAULT_TOKEN_URL = "https://api.hubapi.com/oauth/v1/token"
DEFAULT_PER_10S = 100
SEARCH_PER_SECOND = 4  # the CRM search endpoints' own limit per token; we hold one less
log = logging.getLogger("invoicer.providers.hubspot")


def _body(resp: requests.Response):
    try:
        return resp.json()
    except ValueError:
        return None


def _message(resp: requests.Response) -> str:
    body = _body(resp)
    text = transform.error_text(body, resp.text)
    if isinstance(body, dict) and body.get("policyName"):
        text += f" (policy {body['policyName']})"
    return text


def _refine(exc: ProviderError, resp: requests.Response | None) -> ProviderError:
    """A 429 without Retry-After waits for the window its policy names (10 s rolling, else daily)."""
    if isinstance(exc, RateLimited) and exc.retry_after is None and resp is not None:
        policy = str((_body(resp) or {}).get("policyName") or "")
        wait = 3600.0 if "DAIL" in policy.upper() else 10.0
        return RateLimited(str(exc), retry_after=wait, status=exc.status)
    return exc


@register
class HubSpot(Provider):
    slug = "hubspot"
    capabilities = frozenset({"create_invoice", "find_invoice", "attach_pdf"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or self.slug
        self.api = http.base_url(self.slug, self.options, DEFAULT_BASE)
        self.token_url = (self.options.get("token_url") or os.environ.get("INVOICER_HUBSPOT_TOKEN_URL")
                          or DEFAULT_TOKEN_URL)
        self.reference_property = str(self.options.get("reference_property") or transform.REFERENCE)
        self.types = {**transform.ASSOCIATIONS, **(self.options.get("association_types") or {})}

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        rate = options.get("rate_per_10s")
        if rate is not None and (not isinstance(rate, int) or not 10 <= rate <= 1000):
            problems.append(f"platforms.{name}.rate_per_10s: a whole number of requests per 10 s (100, 150, 190)")
        unknown = set(options.get("association_types") or {}) - set(transform.ASSOCIATIONS)
        if unknown:
            problems.append(f"platforms.{name}.association_types: unknown {', '.join(sorted(unknown))}")
        return problems

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        transform.plan(invoice, self.reference_property)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        plan = transform.plan(invoice, self.reference_property)  # Rejected before anything is sent
        contact = self._contact(invoice["customer"])
        deal = (invoice["customer"].get("external_ids") or {}).get("hubspot_deal")
        try:
            inv = self._request("POST", "/crm/v3/objects/invoices",
                                body=transform.invoice_body(plan, contact, deal, self.types))
        except Unavailable as exc:
            if exc.status != 409:
                raise
            # our reference is already taken: an earlier try made it (its answer was lost); continue that one
            inv = self._find(invoice)
            if inv is None:  # search lags writes by a few seconds: retry shortly and look again
                raise Unavailable(f"hubspot: {transform.reference(invoice)} exists but is not searchable yet",
                                  retry_after=5, status=409) from exc
            return self._complete(inv, invoice, plan, contact, fresh=False)
        return self._complete(inv, invoice, plan, contact, fresh=True)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        inv = self._find(invoice)
        if inv is None:
            return None
        plan = transform.plan(invoice, self.reference_property)
        return self._complete(inv, invoice, plan, self._contact(invoice["customer"]), fresh=False)

    def _find(self, invoice: dict) -> dict | None:
        found = self._request("POST", "/crm/v3/objects/invoices/search", search=True, body=transform.search_eq(
            self.reference_property, transform.reference(invoice), transform.INVOICE_PROPERTIES)).get("results") or []
        live = [i for i in found if not i.get("archived")]
        return sorted(live, key=lambda i: int(i["id"]) if str(i["id"]).isdigit() else 0)[0] if live else None

    def _complete(self, inv: dict, doc: dict, plan: transform.Plan, contact: str, fresh: bool) -> Created:
        """Bring our invoice to `open`: add the line items it lacks, check the total, note, open."""
        inv_id = str(inv["id"])
        status = (inv.get("properties") or {}).get("hs_invoice_status")
        if status in ("voided", "void"):
            raise Rejected(f"hubspot: invoice {inv_id} for {doc['number']} was voided in HubSpot; not recreated")
        if status != "open":
            existing = [] if fresh else self._line_items(inv_id)
            missing = transform.missing_lines(plan.lines, existing)
            for start in range(0, len(missing), transform.BATCH):
                self._request("POST", "/crm/v3/objects/line_items/batch/create",
                              body=transform.line_items_body(missing[start:start + transform.BATCH], inv_id,
                                                             self.types))
            inv = self._get_invoice(inv_id)
            transform.check_total(inv, plan)
            self._note(doc, contact, fresh)
            inv = self._request("PATCH", f"/crm/v3/objects/invoices/{inv_id}",
                                body={"properties": {"hs_invoice_status": "open"}})
            if not (inv.get("properties") or {}).get("hs_amount_billed"):
                inv = self._get_invoice(inv_id)
        transform.check_total(inv, plan)
        return transform.created(inv, self.options.get("portal_id"))

    def _get_invoice(self, inv_id: str) -> dict:
        return self._request("GET", f"/crm/v3/objects/invoices/{inv_id}",
                             params={"properties": ",".join(transform.INVOICE_PROPERTIES)})

    def _line_items(self, inv_id: str) -> list[dict]:
        """The properties of the line items associated with an invoice."""
        ids, after = [], None
        while True:
            params = {"limit": 500, **({"after": after} if after else {})}
            page = self._request("GET", f"/crm/v4/objects/invoices/{inv_id}/associations/line_items", params=params)
            ids += [str(r["toObjectId"]) for r in page.get("results") or []]
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                break
        out = []
        for start in range(0, len(ids), transform.BATCH):
            page = self._request("POST", "/crm/v3/objects/line_items/batch/read", body={
                "inputs": [{"id": i} for i in ids[start:start + transform.BATCH]],
                "properties": list(transform.LINE_PROPERTIES)})
            out += [r.get("properties") or {} for r in page.get("results") or [] if not r.get("archived")]
        return out

    def _note(self, doc: dict, contact: str, fresh: bool) -> None:
        """A note on the contact's timeline with the PDF link (tenant option `note`), made once."""
        link = (doc.get("pdf") or {}).get("link")
        if not self.options.get("note") or not link:
            return
        marker = transform.note_marker(doc)
        if not fresh:  # a retry may already have made it
            found = self._request("POST", "/crm/v3/objects/notes/search", search=True, body={
                "filterGroups": [{"filters": [{"propertyName": "hs_note_body", "operator": "CONTAINS_TOKEN",
                                               "value": doc["number"]}]}],
                "properties": ["hs_note_body"], "limit": 10}).get("results") or []
            if any(marker in ((n.get("properties") or {}).get("hs_note_body") or "") for n in found):
                return
        self._request("POST", "/crm/v3/objects/notes", body=transform.note_body(
            doc, link, contact, self.types["note_to_contact"], int(time.time() * 1000)))

    # ------------------------------------------------------------ contacts

    def _contact(self, customer: dict) -> str:
        ours = str(customer["id"])
        known = self.ctx.refs.get("contact", ours)
        if known:
            return known
        theirs = (customer.get("external_ids") or {}).get("hubspot") or self._find_contact(customer)
        if not theirs:
            try:
                theirs = str(self._request("POST", "/crm/v3/objects/contacts",
                                           body=transform.contact_body(customer))["id"])
            except Unavailable as exc:  # 409: the email is taken (another worker, or a lost answer)
                if exc.status != 409:
                    raise
                # HubSpot names the contact that has it ("Existing ID: 123"); search lags, the message does not
                existing = re.search(r"Existing ID: (\d+)", str(exc))
                theirs = existing[1] if existing else self._find_contact(customer)
                if not theirs:
                    raise
        return self.ctx.refs.put("contact", ours, theirs)  # a concurrent worker's answer wins

    def _find_contact(self, customer: dict) -> str | None:
        email = (customer.get("email") or "").strip()
        if not email:
            return None
        found = self._request("POST", "/crm/v3/objects/contacts/search", search=True,
                              body=transform.search_eq("email", email.lower(), ("email",))).get("results") or []
        return str(sorted(found, key=lambda c: int(c["id"]))[0]["id"]) if found else None

    # ------------------------------------------------------------ auth, limits and HTTP

    def _private_token(self) -> str | None:
        name = self.options.get("token_env")
        if not name:
            return None
        value = os.environ.get(name, "").strip()
        if not value:
            raise MappingMissing(f"environment variable {name} (platforms.{self.platform}.token_env, the HubSpot "
                                 f"private app token) is not set")
        return value

    def _token(self, refused: str | None = None) -> str:
        return ClientInBodyToken(self.slug, "HubSpot", "HubSpot account", self.options, self.ctx, self.token_url,
                                 _message, lifetime=1800).get(refused)

    def _bucket(self, token: str) -> str:
        portal = self.options.get("portal_id")
        if portal:
            return f"hubspot:{portal}"
        if self.options.get("token_env"):
            return "hubspot:key-" + hashlib.sha256(token.encode()).hexdigest()[:16]
        return f"hubspot:{getattr(self.ctx, 'tenant', '')}:{self.platform}"

    def _request(self, method: str, path: str, *, body=None, params: dict | None = None,
                 search: bool = False) -> dict:
        private = self._private_token()
        failed = None
        for attempt in (1, 2):
            token = private or self._token(failed)
            bucket = self._bucket(token)
            per = int(self.options.get("rate_per_10s") or DEFAULT_PER_10S)
            seen = {}

            def message(resp: requests.Response) -> str:
                seen["resp"] = resp
                return _message(resp)

            try:
                with ExitStack() as stack:  # every request counts in the 10 s window, searches in their own too
                    stack.enter_context(self.ctx.limiter.slot(bucket, [within(per - per // 10, 10,
                                                                              burst=max(1, per // 10))]))
                    if search:
                        stack.enter_context(self.ctx.limiter.slot(f"{bucket}:search",
                                                                  [within(SEARCH_PER_SECOND - 1, 1, burst=1)]))
                    resp = http.call(method, self.api + path, slug=self.slug, message=message, params=params,
                                     json=body, headers={"Authorization": f"Bearer {token}",
                                                         "Accept": "application/json"})
                return resp.json() if resp.content else {}
            except AuthFailed as exc:
                if private or exc.status != 401 or attempt == 2:
                    raise
                failed = token  # expired or revoked early: renew once and repeat
            except ProviderError as exc:
                better = _refine(exc, seen.get("resp"))
                if better is exc:
                    raise
                raise better from exc
        raise AssertionError("unreachable")
