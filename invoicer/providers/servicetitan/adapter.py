"""ServiceTitan (v2 tenant REST APIs): auth and HTTP only; the mapping lives in transform.py.

ServiceTitan is a trigger (webhooks.py, invoicer.hooks) and, for jobs that came from it, a target: the job's
invoice already exists in ServiceTitan, so "creating" it sets that invoice's items to ours
(`PATCH /accounting/v2/tenant/{tenant}/invoices/{id}`) and reads the total back.

Tenant options (platforms.<name> in the tenants file):
  provider: servicetitan
  tenant_id          the ServiceTitan tenant (required)
  base_url           default https://api.servicetitan.io (else env INVOICER_SERVICETITAN_BASE_URL)
  token_url          default https://auth.servicetitan.io/connect/token (integration environment:
                     https://auth-integration.servicetitan.io/connect/token)
  app_key_env        env var of the app's ST-App-Key (default INVOICER_SERVICETITAN_APP_KEY)
  rate_per_second    our ceiling per app and tenant (default 60, ServiceTitan's published limit)
  currency, tax_rate, tax_jurisdiction, payment_terms_days, country, technician_name
                     how a fetched job becomes a v1 event (transform.event_parts)
Credentials (per tenant, `invoicer credentials set`): {"client_id", "client_secret"}; the client-credentials
access token is kept beside them until it expires.

Exactly once: setting an invoice's items is idempotent (each of our lines keeps the item id it was given),
so a retry after an unknown outcome repeats the same PATCH; the total is read back and compared.
Not done: "mark ready" -- the v2 accounting definitions (Dec 2024 snapshot) have no ready status or
operation on invoices; see docs/providers/servicetitan.md.
"""
from __future__ import annotations

import hashlib
import os

import requests

from ...errors import AuthFailed, MappingMissing, Rejected
from .. import clientcreds, http
from ..base import Created, Provider
from ..jsonmoney import dumps, loads
from ..ratelimit import within
from ..registry import register
from . import transform as t

SLUG = t.SLUG
DEFAULT_BASE = "https://api.servicetitan.io"
TOKEN_URL = "https://auth.servicetitan.io/connect/token"


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("title", "detail", "error", "error_description") if body.get(k)]
        for field, problems in (body.get("errors") or {}).items() if isinstance(body.get("errors"), dict) else ():
            parts.append(f"{field}: {'; '.join(map(str, problems))}")
        if parts:
            return " ".join(parts)[:500]
    return resp.text[:300]


def _app(app_key: str) -> str:
    """The app, named in limiter keys without its key."""
    return hashlib.sha256(app_key.encode()).hexdigest()[:16]


@register
class ServiceTitan(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.base = http.base_url(SLUG, self.options, DEFAULT_BASE)
        self.token_url = self.options.get("token_url") or TOKEN_URL
        per_second = int(self.options.get("rate_per_second") or 60)
        self.rates = [within(per_second, 1, burst=max(1, per_second // 4))]

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        return [] if options.get("tenant_id") else [f"platforms.{name}.tenant_id: the ServiceTitan tenant id is not set"]

    @property
    def tenant(self) -> str:
        value = self.options.get("tenant_id")
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.tenant_id: the ServiceTitan tenant id is not set")
        return str(value)

    # ------------------------------------------------------------ inbound: the job behind a webhook

    def fetch(self, job_id: str) -> dict:
        """The job, its invoice (with items), customer, contacts and location, as transform.event_parts wants."""
        job = self._call("GET", f"/jpm/v2/tenant/{self.tenant}/jobs/{int(job_id)}")
        invoice = self._invoice_of(job_id)
        if invoice is None:
            raise Rejected(f"servicetitan job {job_id} has no invoice yet")
        customer = self._call("GET", f"/crm/v2/tenant/{self.tenant}/customers/{job['customerId']}")
        contacts = self._call("GET", f"/crm/v2/tenant/{self.tenant}/customers/{job['customerId']}/contacts")
        location = self._call("GET", f"/crm/v2/tenant/{self.tenant}/locations/{job['locationId']}") \
            if job.get("locationId") else None
        return {"job": job, "invoice": invoice, "customer": customer, "contacts": contacts.get("data") or [],
                "location": location}

    # ------------------------------------------------------------ outbound: the existing invoice's items

    def create_invoice(self, invoice: dict, key: str) -> Created:
        found = self._invoice_of(self._job_id(invoice))
        if found is None:
            raise Rejected(f"servicetitan has no invoice for job {invoice['job']['id']} to put our lines on")
        body, stale = t.update_request(invoice, found.get("items") or [])
        self._call("PATCH", f"/accounting/v2/tenant/{self.tenant}/invoices/{found['id']}", body)
        for item_id in stale:
            self._call("DELETE", f"/accounting/v2/tenant/{self.tenant}/invoices/{found['id']}/items/{item_id}")
        after = self._invoice_of(self._job_id(invoice))
        t.check_total(after, invoice)
        return t.created(after, invoice)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        """The job's invoice once it carries our total; else None, and create_invoice sets its items."""
        found = self._invoice_of(self._job_id(invoice))
        if found is None:
            return None
        try:
            t.check_total(found, invoice)
        except Rejected:
            return None
        return t.created(found, invoice)

    def _job_id(self, invoice: dict) -> str:
        if not (invoice["customer"].get("external_ids") or {}).get(SLUG) or not str(invoice["job"]["id"]).isdigit():
            raise MappingMissing(f"platforms.{self.platform}: only jobs that came from ServiceTitan's webhooks have "
                                 f"an invoice there to update")
        return str(invoice["job"]["id"])

    def _invoice_of(self, job_id: str) -> dict | None:
        page = self._call("GET", f"/accounting/v2/tenant/{self.tenant}/invoices", params={"jobId": int(job_id)})
        data = [i for i in page.get("data") or [] if not i.get("adjustmentToId")]
        return data[0] if data else None

    # ------------------------------------------------------------ auth and HTTP

    def _app_key(self) -> str:
        name = self.options.get("app_key_env") or "INVOICER_SERVICETITAN_APP_KEY"
        value = os.environ.get(name, "").strip()
        if not value:
            raise MappingMissing(f"environment variable {name} (platforms.{self.platform}.app_key_env) is not set")
        return value

    def _token(self, refused: str | None = None) -> str:
        return clientcreds.token(self.ctx, slug=SLUG, vendor="ServiceTitan", url=self.token_url, message=_message,
                                 refused=refused)

    def _call(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        data = dumps(body).encode() if body is not None else None
        app_key, refused = self._app_key(), None
        for attempt in (1, 2):
            token = self._token(refused)
            headers = {"Authorization": f"Bearer {token}", "ST-App-Key": app_key, "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{_app(app_key)}:{self.tenant}", self.rates):
                    resp = http.call(method, self.base + path, slug=SLUG, message=_message, headers=headers,
                                     data=data, params=params)
                return loads(resp.content) if resp.content else {}
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                refused = token
        raise AssertionError("unreachable")
