"""Wave (public GraphQL API, one endpoint): OAuth 2 and HTTP only; the mapping lives in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: wave
  business_id        the Wave business (required)
  products           {labor, material, fee}: the Wave product id for each kind of line (required per kind;
                     `fee`'s product also carries a rounding item when one is needed)
  sales_taxes        {"8.25": "<sales tax id>"}: a Wave sales tax per rate in percent (else found by rate
                     among the business's sales taxes; none -> MappingMissing)
  send               true: Wave emails the approved invoice (invoiceSend) -- the pipeline calls send_invoice;
                     false (default): it is marked sent (invoiceMarkSent, MARKED_SENT) and invoicer emails it
  rate_per_minute    our own ceiling per business (default 60; Wave publishes none)
  base_url           default https://gql.waveapps.com (else env INVOICER_WAVE_BASE_URL); the endpoint is
                     <base_url>/graphql/public
  token_url          default https://api.waveapps.com/oauth2/token/
  client_id_env, client_secret_env   env vars of the OAuth client (default INVOICER_WAVE_CLIENT_ID / _SECRET)
Credentials: {"access_token", "refresh_token", "expires_at"}.

Errors: Wave answers GraphQL errors with HTTP 200: `errors` (UNAUTHENTICATED -> AuthFailed, renewed once;
throttling -> RateLimited; INTERNAL_SERVER_ERROR -> Unavailable; anything else Rejected) and, per mutation,
`didSucceed: false` with `inputErrors` -> Rejected.

Exactly once: Wave has no idempotency key. Our number is Wave's invoiceNumber; before a retry the pipeline
calls find_invoice (business.invoices(invoiceNumber:)), which also finishes an invoice a lost answer left
as a draft (settle, approve), so nothing is made twice.
"""
from __future__ import annotations

import logging
from decimal import Decimal

from ...errors import AuthFailed, MappingMissing, Rejected
from .. import http
from ..base import Created, PaymentStatus, Provider
from ..bodytoken import ClientInBodyToken
from ..ratelimit import within
from ..registry import register
from ..jsonmoney import dumps, loads
from . import transform as t

log = logging.getLogger("invoicer.providers.wave")
SLUG = "wave"
DEFAULT_BASE = "https://gql.waveapps.com"
TOKEN_URL = "https://api.waveapps.com/oauth2/token/"


def _error_text(body, fallback: str) -> str:
    """Wave's GraphQL `errors` list, or the token endpoint's `error`, `error_description`."""
    if isinstance(body, dict) and body.get("errors"):
        return "; ".join(str(e.get("message")) for e in body["errors"] if isinstance(e, dict))
    if isinstance(body, dict) and body.get("error"):
        return " ".join(str(x) for x in (body["error"], body.get("error_description")) if x)
    return fallback[:300]


_message = http.json_message(_error_text)


@register
class Wave(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.endpoint = http.base_url(SLUG, self.options, DEFAULT_BASE) + "/graphql/public"
        self.token_url = self.options.get("token_url") or TOKEN_URL
        per_minute = int(self.options.get("rate_per_minute") or 60)
        self.rates = [within(per_minute, 60, burst=max(1, per_minute // 6))]

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = [] if options.get("business_id") else [f"platforms.{name}.business_id: the Wave business id "
                                                            f"is not set"]
        for kind in t.KINDS:
            if not (options.get("products") or {}).get(kind):
                problems.append(f"platforms.{name}.products.{kind}: the Wave product id for {kind} lines is not set")
        return problems

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        t.items(invoice, self.options, self.platform, None)  # every kind of line has its product

    def create_invoice(self, invoice: dict, key: str) -> Created:
        business = self.business
        self.check_invoice(invoice)
        customer = self._customer(invoice)
        tax_id = self._tax_id(invoice)
        try:
            inv = self._mutate("invoiceCreate", t.INVOICE_CREATE, t.invoice_input(
                invoice, business, customer, self.options, self.platform, tax_id))["invoice"]
        except Rejected as exc:
            if "input.invoiceNumber" not in str(exc):  # our number is taken: by an earlier try of ours?
                raise
            found = self.find_invoice(invoice, key)
            if found is None:
                raise
            return found
        return self._finish(inv, invoice, customer, tax_id)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        data = self._query(t.INVOICES, invoiceNumber=invoice["number"])
        found = t.pick_invoice(t.edges((data.get("business") or {}).get("invoices")), invoice)
        if found is None:
            return None
        if found.get("status") == "DRAFT":  # a lost answer stopped us before approval: finish it now
            return self._finish(found, invoice, self._customer(invoice), self._tax_id(invoice))
        t.check_total(found, invoice)
        return t.created(found)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """Wave emails the invoice, once: skipped when Wave shows it sent."""
        current = self._invoice(created.external_id)
        if current.get("lastSentAt") or current.get("status") in ("SENT", "VIEWED", "PAID", "PARTIAL", "OVERPAID"):
            return
        to = invoice["customer"].get("email")
        if not to:  # as for QuickBooks: the invoice stands; nobody to email it to (no personal data logged)
            log.warning("wave: invoice %s has no customer email; not sent by Wave", invoice["number"])
            return
        self._mutate("invoiceSend", t.INVOICE_SEND, t.send_input(created.external_id, invoice, to))

    def payment_status(self, external_id: str) -> PaymentStatus:
        return t.payment_status(self._invoice(external_id))

    # ------------------------------------------------------------ steps

    def _finish(self, inv: dict, doc: dict, customer: str, tax_id: str | None) -> Created:
        """Draft -> our total (one rounding redo at most) -> approved -> marked sent unless Wave sends it."""
        diff = t.difference(inv, doc)
        if diff and abs(diff) <= t.money.quantum(doc["currency"]) and inv.get("status") == "DRAFT":
            self._mutate("invoiceDelete", t.INVOICE_DELETE, {"invoiceId": inv["id"]})
            inv = self._mutate("invoiceCreate", t.INVOICE_CREATE, t.invoice_input(
                doc, self.business, customer, self.options, self.platform, tax_id, rounding=diff))["invoice"]
        t.check_total(inv, doc)
        inv = self._mutate("invoiceApprove", t.INVOICE_APPROVE, {"invoiceId": inv["id"]})["invoice"]
        if not self.options.get("send"):
            inv = self._mutate("invoiceMarkSent", t.INVOICE_MARK_SENT,
                               {"invoiceId": inv["id"], "sendMethod": "MARKED_SENT"})["invoice"]
        return t.created(inv)

    def _invoice(self, invoice_id: str) -> dict:
        inv = (self._query(t.INVOICE, invoiceId=invoice_id).get("business") or {}).get("invoice")
        if not inv:
            raise Rejected(f"wave has no invoice {invoice_id}")
        return inv

    def _customer(self, doc: dict) -> str:
        c = doc["customer"]
        theirs = self.ctx.refs.get("customer", c["id"]) or (c.get("external_ids") or {}).get(SLUG)
        if theirs:
            return theirs
        found = None
        if c.get("email"):
            nodes = t.edges((self._query(t.CUSTOMERS, email=c["email"]).get("business") or {}).get("customers"))
            found = next((n for n in nodes if (n.get("email") or "").casefold() == c["email"].casefold()), None)
        if found is None:
            found = self._mutate("customerCreate", t.CUSTOMER_CREATE,
                                 t.customer_input(c, self.business, doc["currency"]))["customer"]
        return self.ctx.refs.put("customer", c["id"], str(found["id"]))

    def _tax_id(self, doc: dict) -> str | None:
        rate = doc["tax"]["rate"]
        if rate == 0 or not any(line["taxable"] for line in doc["lines"]):
            return None
        pct = t.percent(rate)
        configured = {Decimal(str(k)).normalize(): str(v) for k, v in (self.options.get("sales_taxes") or {}).items()}
        if pct in configured:
            return configured[pct]
        known = self.ctx.refs.get("sales_tax", format(pct, "f"))
        if known:
            return known
        taxes = t.edges((self._query(t.SALES_TAXES).get("business") or {}).get("salesTaxes"))
        found = t.pick_tax(taxes, rate)
        if found is None:
            raise MappingMissing(f"platforms.{self.platform}.sales_taxes: the Wave business has no sales tax at "
                                 f"{format(pct, 'f')} %; add one in Wave or map it")
        return self.ctx.refs.put("sales_tax", format(pct, "f"), found)

    # ------------------------------------------------------------ auth and HTTP

    @property
    def business(self) -> str:
        value = self.options.get("business_id")
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.business_id: the Wave business id is not set")
        return str(value)

    def _query(self, document: str, **variables) -> dict:
        return t.check(self._post(document, {"businessId": self.business, **variables}))

    def _mutate(self, field: str, document: str, data: dict) -> dict:
        return t.check(self._post(document, {"input": data}), field)

    def _post(self, document: str, variables: dict) -> dict:
        body = dumps({"query": document, "variables": variables}).encode()
        failed = None
        for attempt in (1, 2):
            token = ClientInBodyToken(SLUG, "Wave", "business", self.options, self.ctx, self.token_url, _message,
                                      lifetime=7200).get(failed)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                       "Accept": "application/json"}
            try:
                with self.ctx.limiter.slot(f"{SLUG}:{self.business}", self.rates, concurrency=4):
                    resp = http.call("POST", self.endpoint, slug=SLUG, message=_message, headers=headers, data=body)
                answer = loads(resp.content)
                t.check(answer)  # GraphQL errors arrive with HTTP 200
                return answer
            except AuthFailed as exc:
                if exc.status != 401 or attempt == 2:
                    raise
                failed = token
        raise AssertionError("unreachable")

