"""Microsoft Dynamics 365 (slug `dynamics365`): auth and HTTP; the mapping lives in transform.py.

The tenant's `edition` picks the API:
  business_central (default)  Business Central API v2.0 (salesInvoices, salesInvoiceLines, bound actions)
  finance_operations          F&O free text invoices (FreeTextInvoiceHeaders / Lines): class FinanceOperations
                              at the end of this module; its docstring lists its options

Tenant options for Business Central (platforms.<name> in the tenants file):
  tenant_id        the Microsoft Entra tenant (GUID or domain) of the customer's Business Central (required)
  environment      the environment name, e.g. production (required)
  company_id       the company's id (GUID, GET .../companies) (required)
  lines            {labor, material, fee}: the item number for each kind of line, or {type: Item|Account|
                   Resource, number: ...} (required per kind)
  tax_mode         account_line (default: exact, tax and discount as G/L account lines) | tax_codes (BC
                   computes tax from the codes; refused before posting when it disagrees with ours)
  tax_codes        {taxable, exempt}: BC tax (group) codes; exempt always, taxable for tax_codes
  tax_account, discount_account   G/L account numbers for the tax and discount lines (account_line)
  send             true: after posting, Business Central emails the invoice (Microsoft.NAV.send)
  base_url         default https://api.businesscentral.dynamics.com (else env INVOICER_DYNAMICS365_BASE_URL)
  token_url        default https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token
  scope            default https://api.businesscentral.dynamics.com/.default
  client_id_env, client_secret_env   env vars with the Entra app's id and secret (default
                   INVOICER_DYNAMICS365_CLIENT_ID / _CLIENT_SECRET)

Exactly once: Business Central has no idempotency key. Every create first looks the invoice up by
externalDocumentNumber = our invoice number; a posted one is returned, a draft (an earlier try that stopped
after the header or part of the lines) is finished -- the missing lines added, the total checked, posted --
and only when there is none is a new header made. Sending is remembered per invoice (platform refs), so a
retried delivery does not email twice; a send whose answer was lost may be repeated once.

Limits: 6,000 requests per service principal in any 5-minute window (our limiter holds the count with a
burst of 100) and 5 in flight per tenant; a 429 waits as Retry-After says (else 30 s).
"""
from __future__ import annotations

import logging

from ...errors import AuthFailed, MappingMissing, RateLimited
from .. import http
from ..base import Created, PaymentStatus
from ..ledger import LookupFirst
from ..jsonmoney import dumps, loads
from ..ratelimit import within
from ..registry import register
from . import entra, transform

log = logging.getLogger("invoicer.providers.dynamics365")

SLUG = "dynamics365"
EDITIONS = ("business_central", "finance_operations")
BC_API = "https://api.businesscentral.dynamics.com"
BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"
BC_RATES = [within(6000, 300, burst=100)]
BC_CONCURRENCY = 5
THROTTLE_WAIT = 30.0


_message = http.json_message(transform.error_text, reason=True)


@register
class Dynamics365(LookupFirst):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status"})

    def __new__(cls, options: dict | None = None, ctx=None):
        if cls is Dynamics365 and (options or {}).get("edition") == "finance_operations":
            cls = FinanceOperations  # one slug, two APIs: the entry's edition picks the class
        return super().__new__(cls)

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.edition = str(self.options.get("edition") or "business_central")
        self.mapping = transform.Mapping.from_options(self.options, self.platform)

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        edition = str(options.get("edition") or "business_central")
        if edition not in EDITIONS:
            return [f"platforms.{name}.edition: {edition!r} is not one of {', '.join(EDITIONS)}"]
        if edition == "finance_operations":
            return FinanceOperations.problems(options, name)
        problems = [f"platforms.{name}.{key} is not set" for key in ("tenant_id", "environment", "company_id")
                    if not options.get(key)]
        return problems + transform.Mapping.from_options(options, name).problems()

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        transform.header(invoice, "0")
        transform.lines(invoice, self.mapping)

    def _make(self, invoice: dict) -> dict:
        """The draft's header; its lines follow in _finish (see the module's note on exactly once)."""
        return self._request("POST", "salesInvoices", body=transform.header(invoice, self._customer_number(invoice)))

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """Business Central emails the posted invoice to the customer, once."""
        if self.ctx.refs.get("sent", created.external_id):
            return
        if not invoice["customer"].get("email"):
            log.warning("dynamics365: invoice %s has no customer email; not sent by Business Central", invoice["number"])
            return
        self._request("POST", f"salesInvoices({created.external_id})/Microsoft.NAV.send")
        self.ctx.refs.put("sent", created.external_id, "1")

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._request("GET", f"salesInvoices({external_id})"))

    # ------------------------------------------------------------ invoices

    def _by_reference(self, invoice: dict) -> dict | None:
        rows = self._request("GET", "salesInvoices",
                             params={"$filter": transform.by_reference(invoice["number"])}).get("value") or []
        posted = [r for r in rows if r.get("status") != "Draft"]
        return (posted or rows or [None])[0]

    def _finish(self, inv: dict, doc: dict) -> Created:
        """A posted invoice as it is; a draft completed (missing lines, discount), checked and posted."""
        if inv.get("status") == "Draft":
            path = f"salesInvoices({inv['id']})"
            existing = self._request("GET", f"{path}/salesInvoiceLines").get("value") or []
            for body in transform.missing_lines(existing, transform.lines(doc, self.mapping), doc["number"]):
                self._request("POST", f"{path}/salesInvoiceLines", body=body)
            discount = transform.header_discount(doc, self.mapping)
            inv = self._request("GET", path)
            if discount and transform.dec(inv.get("discountAmount")) != discount["discountAmount"]:
                inv = self._request("PATCH", path, body=discount, etag=inv.get("@odata.etag") or "*")
            transform.check_total(inv, doc)  # never post a total that is not ours
            self._request("POST", f"{path}/Microsoft.NAV.post")
            inv = self._request("GET", path)
        return transform.created(inv, doc)

    # ------------------------------------------------------------ customers

    def _customer_number(self, doc: dict) -> str:
        c, refs = doc["customer"], self.ctx.refs
        ids = c.get("external_ids") or {}
        given = ids.get(SLUG) or ids.get(self.platform)  # the sender knows BC's customer number
        known = refs.get("customer", c["id"]) or (given and refs.put("customer", c["id"], str(given)))
        if known:
            return known
        found = None
        for field, value in (("email", c.get("email")), ("displayName", transform.customer_body(c)["displayName"])):
            if value and found is None:
                rows = self._request("GET", "customers", params={"$filter": transform.quote_eq(field, value)})
                # a namesake with another email address is another person: not theirs to pay
                found = next((r for r in rows.get("value") or [] if field == "email" or not c.get("email")
                              or not r.get("email") or r["email"].lower() == c["email"].lower()), None)
        if found is None:
            found = self._request("POST", "customers", body=transform.customer_body(c))
        return refs.put("customer", c["id"], str(found["number"]))

    # ------------------------------------------------------------ auth and HTTP

    def _required(self, key: str) -> str:
        value = self.options.get(key)
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.{key} is not set")
        return str(value)

    def _api(self, path: str) -> str:
        base = http.base_url(SLUG, self.options, BC_API)
        return (f"{base}/v2.0/{self._required('tenant_id')}/{self._required('environment')}/api/v2.0/"
                f"companies({self._required('company_id')})/{path}")

    def _scope(self) -> str:
        return str(self.options.get("scope") or BC_SCOPE)

    def _limit_key(self) -> str:
        return f"{SLUG}:bc:{self._required('tenant_id')}"

    def _token(self) -> entra.ClientCredentials:
        tenant = self._required("tenant_id")
        return entra.ClientCredentials(SLUG, self.options, self.platform,
                                       entra.token_url(tenant, self.options.get("token_url")), self._scope())

    def _request(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
                 etag: str | None = None) -> dict:
        """One API call under the tenant's limits; a 401 renews the token and repeats the call once."""
        url = self._api(path)
        data = dumps(body).encode() if body is not None else None
        refused = None
        for attempt in (1, 2):
            token = self._token().get(refused)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if method in ("POST", "PATCH"):
                headers["Content-Type"] = "application/json"
            if etag:
                headers["If-Match"] = etag
            try:
                with self.ctx.limiter.slot(self._limit_key(), BC_RATES, concurrency=BC_CONCURRENCY):
                    resp = http.call(method, url, slug=SLUG, message=_message, params=params, data=data,
                                     headers=headers)
            except AuthFailed as exc:
                if exc.status == 401 and attempt == 1:
                    refused = token
                    continue
                raise
            except RateLimited as exc:
                if exc.retry_after is None:
                    raise RateLimited(str(exc), retry_after=THROTTLE_WAIT, status=exc.status) from exc
                raise
            return loads(resp.content) if resp.content else {}
        raise AssertionError("unreachable")


class FinanceOperations(Dynamics365):
    """Finance and Operations apps (edition finance_operations): customer free text invoices through the
    OData entities FreeTextInvoiceHeaders and FreeTextInvoiceLines on the environment's /data endpoint.

    Tenant options: base_url (the environment, e.g. https://contoso.operations.dynamics.com; required),
    tenant_id (Entra), company (the legal entity, dataAreaId), lines.<kind> (main account display values),
    tax_codes.exempt (an item sales tax group with no tax), tax_account and discount_account (main
    accounts), token_url, scope (default {base_url}/.default), client_id_env, client_secret_env.

    What these entities support, and so all invoicer does: make the unposted free text invoice, its lines
    and check its total (lines' TransactionCurrencyAmount + SalesTaxAmount). Posting and emailing are not
    part of the entities; a person or a batch job in F&O posts and sends. Looked up by ExternalInvoiceId
    before every create; a header whose lines are incomplete is finished like a Business Central draft."""
    capabilities = frozenset({"create_invoice", "find_invoice"})

    @staticmethod
    def problems(options: dict, name: str) -> list[str]:
        out = [f"platforms.{name}.{key} is not set" for key in ("base_url", "tenant_id", "company")
               if not options.get(key)]
        if (options.get("tax_mode") or "account_line") != "account_line":
            out.append(f"platforms.{name}.tax_mode: finance_operations takes account_line only")
        if options.get("send"):
            out.append(f"platforms.{name}.send: the free text invoice entities cannot email an invoice; "
                       f"leave send off and let invoicer's channels tell the customer")
        return out + transform.Mapping.from_options(options, name).problems()

    def _company(self) -> str:
        return self._required("company")

    def check_invoice(self, invoice: dict) -> None:
        transform.fo_header(invoice, "0", "x")
        transform.fo_lines(invoice, self.mapping, "x")

    def _by_reference(self, invoice: dict) -> dict | None:
        rows = self._request("GET", "FreeTextInvoiceHeaders", params=self._where(invoice)).get("value") or []
        return rows[0] if rows else None

    def _where(self, invoice: dict) -> dict:
        return {"$filter": f"{transform.quote_eq('ExternalInvoiceId', invoice['number'])} and "
                           f"{transform.quote_eq('dataAreaId', self._company())}", "cross-company": "true"}

    def _make(self, invoice: dict) -> dict:
        return self._request("POST", "FreeTextInvoiceHeaders",
                             body=transform.fo_header(invoice, self._customer_account(invoice), self._company()))

    def _finish(self, header: dict, doc: dict) -> Created:
        existing = self._request("GET", "FreeTextInvoiceLines", params=self._where(doc)).get("value") or []
        if header.get("IsPosted") not in (True, "Yes"):
            wanted = transform.fo_lines(doc, self.mapping, self._company())
            todo = transform.missing_lines(existing, wanted, doc["number"], key=transform.fo_line_key,
                                           order="LineNumber", vendor="Finance and Operations")
            for body in todo:
                self._request("POST", "FreeTextInvoiceLines", body=body)
            if todo:
                existing = self._request("GET", "FreeTextInvoiceLines", params=self._where(doc)).get("value") or []
        return transform.fo_created(header, existing, doc)

    def _customer_account(self, doc: dict) -> str:
        """The F&O customer account: remembered, or given by the sender (external_ids.dynamics365). The free
        text invoice entities cannot make customers, so an unknown one is a mapping for the tenant to give."""
        c = doc["customer"]
        ids = c.get("external_ids") or {}
        given = ids.get(SLUG) or ids.get(self.platform)
        known = self.ctx.refs.get("customer", c["id"]) or (given and self.ctx.refs.put("customer", c["id"], given))
        if not known:
            raise MappingMissing(f"customer {c['id']} has no Finance and Operations customer account: send it as "
                                 f"customer.external_ids.{SLUG} in the event")
        return known

    def _scope(self) -> str:
        return str(self.options.get("scope") or f"{self._required('base_url').rstrip('/')}/.default")

    def _limit_key(self) -> str:
        return f"{SLUG}:fo:{self._required('base_url')}"

    def _api(self, path: str) -> str:
        return f"{self._required('base_url').rstrip('/')}/data/{path}"
