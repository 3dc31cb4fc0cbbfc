"""FieldEdge: a trigger only. Its public API has no invoice creation (the published operation list has a
read-only GET /v1/invoices/{invoiceId} and nothing that creates or sends one), so FieldEdge is registered
with no capabilities: a tenant cannot name it as an invoice platform, and `invoicer providers` shows it with
none. A closed work order (its webhook: webhooks.py) invoices the job on the tenant's OTHER platforms.

This class only reads, for the webhook task: the work order, its invoice lines and the customer.
Options (`sources.fieldedge.fetch` in the tenants file; FieldEdge has no platform entry):
  base_url      default https://api.fieldedge.com (else env INVOICER_FIELDEDGE_BASE_URL)
  token_url     default https://api.fieldedge.com/token
  currency, tax_rate, tax_jurisdiction, payment_terms_days, country   the v1 event (transform.event_parts)
Credentials (`invoicer credentials set <tenant> fieldedge`): {"client_id", "api_key"}; exchanged for a
30-minute token by client credentials with HTTP Basic (as the legacy token endpoint works, per
compwright/oauth2-fieldedge); the token is kept beside them.
"""
from __future__ import annotations

from ...errors import AuthFailed
from .. import clientcreds, http
from ..common import error_text
from ..base import Provider
from ..jsonmoney import loads
from ..ratelimit import within
from ..registry import register
from . import transform as t

SLUG = t.SLUG
DEFAULT_BASE = "https://api.fieldedge.com"


_message = http.json_message(error_text("message"))


@register
class FieldEdge(Provider):
    slug = SLUG
    capabilities = frozenset()  # trigger only: see the module's docstring

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.base = http.base_url(SLUG, self.options, DEFAULT_BASE)
        self.token_url = self.options.get("token_url") or f"{self.base}/token"
        self.rates = [within(10, 1, burst=5)]  # FieldEdge publishes no limit: our own ceiling per tenant

    def fetch(self, work_order_id: str) -> dict:
        work_order = self._get(f"/v1/workorders/{work_order_id}")
        invoice = self._get(f"/v1/invoices/{work_order_id}")  # the invoice id is the work order id
        customer = self._get(f"/v1/customers/{work_order['customerId']}")
        return {"work_order": work_order, "invoice": invoice, "customer": customer}

    def _get(self, path: str) -> dict:
        refused = None
        for attempt in (1, 2):
            token = clientcreds.token(self.ctx, slug=SLUG, vendor="FieldEdge", url=self.token_url, message=_message,
                                      secret_name="api_key", basic=True, refused=refused, lifetime=1800)
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{self.ctx.tenant}", self.rates):
                    resp = http.call("GET", self.base + path, slug=SLUG, message=_message,
                                     headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
                return loads(resp.content)
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                refused = token
        raise AssertionError("unreachable")
