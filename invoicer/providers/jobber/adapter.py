"""Jobber (GraphQL, one endpoint): OAuth 2 and HTTP only; the mapping lives in transform.py.

Jobber is both a trigger (its webhooks: webhooks.py, invoicer.hooks) and a target (the invoice made from the
job, for the job's client, with its lines).

Tenant options (platforms.<name> in the tenants file):
  provider: jobber
  mark_sent          true (default): the invoice is created marked sent (invoicer emails the customer);
                     false: it stays a draft in Jobber for the tenant to send from Jobber
  origin             InvoiceCreateInput.origin (default "API"; the enum's values are UNCONFIRMED)
  api_version        X-JOBBER-GRAPHQL-VERSION (default 2025-04-16, pinned: a new version is a reviewed change)
  base_url           default https://api.getjobber.com (else env INVOICER_JOBBER_BASE_URL); the endpoint is
                     <base_url>/api/graphql, the token endpoint <base_url>/api/oauth/token
  client_id_env, client_secret_env   env vars of the OAuth app (default INVOICER_JOBBER_CLIENT_ID / _SECRET);
                     the client secret also signs Jobber's webhooks (sources.jobber.secret_env names it)
  currency, tax_rate, tax_jurisdiction, payment_terms_days, country   how a fetched Jobber job becomes a v1
                     event (transform.event_parts)
Credentials: {"access_token", "refresh_token", "expires_at"} (refresh tokens rotate: stored before use).

Limits: Jobber's DDoS guard, 2,500 requests per 300 s per app and account (429), is kept by the shared
limiter; its query-cost leaky bucket answers HTTP 200 `THROTTLED` with `extensions.cost`, which becomes
RateLimited for as long as the bucket needs to refill the query's cost.

Exactly once: Jobber has no idempotency key. Our number is the invoice's `invoiceNumber`; before creating,
the job's invoices are looked up by it (also what find_invoice does after an unknown outcome).
"""
from __future__ import annotations

from ...errors import AuthFailed, MappingMissing, Rejected
from .. import http
from ..common import error_text
from ..base import Created, Provider
from ..bodytoken import ClientInBodyToken
from ..jsonmoney import dumps, loads
from ..ratelimit import within
from ..registry import register
from . import transform as t

SLUG = t.SLUG
DEFAULT_BASE = "https://api.getjobber.com"
API_VERSION = "2025-04-16"
ACCESS_TTL = 3600


_message = http.json_message(error_text("message"))


@register
class Jobber(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        base = http.base_url(SLUG, self.options, DEFAULT_BASE)
        self.endpoint, self.token_url = base + "/api/graphql", base + "/api/oauth/token"
        self.version = str(self.options.get("api_version") or API_VERSION)
        self.rates = [within(2500, 300, burst=50)]

    # ------------------------------------------------------------ inbound: the job behind a webhook

    def fetch_visit(self, visit_id: str) -> tuple[dict, dict]:
        """(job, visit) of a completed visit."""
        visit = self._post(t.VISIT, {"id": visit_id}).get("visit")
        if not visit or not visit.get("job"):
            raise Rejected(f"jobber has no visit {visit_id}")
        return visit["job"], visit

    def fetch_job(self, job_id: str) -> dict:
        job = self._post(t.JOB, {"id": job_id}).get("job")
        if not job:
            raise Rejected(f"jobber has no job {job_id}")
        return job

    # ------------------------------------------------------------ outbound: the invoice

    def create_invoice(self, invoice: dict, key: str) -> Created:
        client = t.client_id(invoice)
        if not client:
            raise MappingMissing(f"platforms.{self.platform}: the customer has no Jobber client (only jobs that "
                                 f"came from Jobber's webhooks can be invoiced in Jobber)")
        found = self.find_invoice(invoice, key)  # no idempotency key at Jobber: look before creating
        if found is not None:
            return found
        try:
            inv = self._post(t.INVOICE_CREATE, {"input": t.invoice_input(invoice, self.options, client)},
                             "invoiceCreate")["invoice"]
        except Rejected as exc:
            if "invoiceNumber" not in str(exc):  # our number is taken: by an earlier try of ours?
                raise
            found = self.find_invoice(invoice, key)
            if found is None:
                raise
            return found
        if not inv:
            raise Rejected("jobber invoiceCreate answered no invoice")
        t.check_total(inv, invoice)
        return t.created(inv)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        if not t.client_id(invoice):
            return None
        job = self._post(t.JOB_INVOICES, {"id": invoice["job"]["id"]}).get("job")
        found = t.pick(t.nodes((job or {}).get("invoices")), invoice)
        if found is None:
            return None
        t.check_total(found, invoice)
        return t.created(found)

    # ------------------------------------------------------------ auth and HTTP

    def _post(self, document: str, variables: dict, field: str | None = None) -> dict:
        body = dumps({"query": document, "variables": variables}).encode()
        refused = None
        for attempt in (1, 2):
            token = ClientInBodyToken(SLUG, "Jobber", "Jobber account", self.options, self.ctx, self.token_url,
                                      _message, lifetime=ACCESS_TTL).get(refused)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                       "Accept": "application/json", "X-JOBBER-GRAPHQL-VERSION": self.version}
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{self.ctx.tenant}:{self.platform}", self.rates, concurrency=4):
                    resp = http.call("POST", self.endpoint, slug=SLUG, message=_message, headers=headers, data=body)
                return t.check(loads(resp.content), field)
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                refused = token
        raise AssertionError("unreachable")
