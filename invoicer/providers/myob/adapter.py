"""MYOB Business / AccountRight API v2: OAuth 2, the API key headers and HTTP; the mapping lives in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: myob
  company_file_id    the company file's id, in every path: /accountright/{company_file_id}/... (required)
  accounts           {labor, material, fee, discount}: income account UIDs per line kind (discount: only
                     when an invoice has a discount)
  tax_codes          {taxable, exempt}: tax code UIDs (e.g. GST and FRE); the taxable code's rate must be the
                     job's tax rate, or the invoice is refused before anything is sent
  currency           the company file's currency (default AUD); other currencies are refused
  send               true: MYOB emails the invoice (POST .../Sale/Invoice/Service/{UID}/Email) -- the pipeline
                     calls send_invoice; false (default): made as already sent (InvoiceDeliveryStatus Nothing)
                     and invoicer emails it
  base_url           default https://api.myob.com (else env INVOICER_MYOB_BASE_URL)
  token_url          default https://secure.myob.com/oauth2/v1/authorize
  client_id_env, client_secret_env   env vars of the app's API key (= OAuth client id, also sent as
                     x-myobapi-key) and secret (default INVOICER_MYOB_CLIENT_ID / _SECRET)
  cf_credentials_env env var with "user:password" of the company file, sent base64 as x-myobapi-cftoken
                     (only for files that still need it)
Credentials: {"access_token", "refresh_token", "expires_at"}.

Limits (per API key, so shared by every tenant of this app): 8 calls a second and 1,000,000 a day. MYOB's
gateway answers a breach with 403 (X-Mashery-Error-Code ERR_403_DEVELOPER_OVER_QPS / _OVER_RATE): that is
RateLimited here (a second, or until the next UTC day), never AuthFailed; a per-second refusal is sent
again up to twice a second later first (the gateway refused it, so it never reached the file).

Exactly once: MYOB has no idempotency key. Our number is the sale's `Number` (at most 13 characters); before
a retry the pipeline calls find_invoice (GET /Sale/Invoice?$filter=Number eq '...'), so a create whose
answer (the Location header) was lost is found, not made again.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from decimal import Decimal

import requests

from ...errors import AuthFailed, MappingMissing, RateLimited, Rejected
from .. import http
from ..base import Created, PaymentStatus, Provider
from ..bodytoken import ClientInBodyToken
from ..ratelimit import within
from ..registry import register
from ..jsonmoney import dumps, loads
from . import transform as t

log = logging.getLogger("invoicer.providers.myob")
SLUG = "myob"
DEFAULT_BASE = "https://api.myob.com"
TOKEN_URL = "https://secure.myob.com/oauth2/v1/authorize"
# 8 a second per API key: we hold 7 (one of margin: the gateway's window and our clock are not the same)
RATES = [within(7, 1, burst=1), within(1_000_000, 86400, burst=10_000)]
OVER_QPS, OVER_RATE = "OVER_QPS", "OVER_RATE"


_body_message = http.json_message(t.error_text)


def _message(resp: requests.Response) -> str:
    gateway = resp.headers.get("X-Mashery-Error-Code") or ""
    return f"{gateway} {_body_message(resp)}".strip()


def _until_next_utc_day() -> float:
    return 86400 - time.time() % 86400


@register
class Myob(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.base = http.base_url(SLUG, self.options, DEFAULT_BASE)
        self.token_url = self.options.get("token_url") or TOKEN_URL

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = [] if options.get("company_file_id") else [
            f"platforms.{name}.company_file_id: the MYOB company file id is not set"]
        for group, keys in (("accounts", t.KINDS), ("tax_codes", ("taxable", "exempt"))):
            for k in keys:
                if not (options.get(group) or {}).get(k):
                    problems.append(f"platforms.{name}.{group}.{k} is not set")
        return problems

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        t.check(invoice, self.options)
        t.invoice_body(invoice, "00000000-0000-0000-0000-000000000000", self.options, self.platform)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        self.check_invoice(invoice)
        self._check_tax_rate(invoice)
        customer = self._customer(invoice)
        resp = self._request("POST", "/Sale/Invoice/Service",
                             body=t.invoice_body(invoice, customer, self.options, self.platform))
        uid = t.uid_from_location(resp.headers.get("Location"))
        return self._settle(self._get(uid), invoice)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        answer = self._json("GET", "/Sale/Invoice", params={"$filter": f"Number eq {t.odata_quote(invoice['number'])}"})
        found = t.pick_invoice(answer.get("Items") or [], invoice)
        if found is None:
            return None
        return self._settle(self._get(found["UID"]), invoice)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """MYOB emails the invoice, once: a sale whose delivery status is no longer Email has been sent."""
        current = self._get(created.external_id)
        if current.get("InvoiceDeliveryStatus") != "Email":
            return
        to = invoice["customer"].get("email")
        if not to:  # as for QuickBooks: the invoice stands; nobody to email it to (no personal data logged)
            log.warning("myob: invoice %s has no customer email; not sent by MYOB", invoice["number"])
            return
        self._request("POST", f"/Sale/Invoice/Service/{created.external_id}/Email",
                      body=t.email_body(created.external_id, invoice, to))

    def payment_status(self, external_id: str) -> PaymentStatus:
        return t.payment_status(self._get(external_id))

    # ------------------------------------------------------------ steps

    def _get(self, uid: str) -> dict:
        return self._json("GET", f"/Sale/Invoice/Service/{uid}")

    def _settle(self, inv: dict, doc: dict) -> Created:
        """MYOB's sale with our total: a small tax-rounding difference gets an untaxed "Rounding" line (PUT)."""
        diff = t.difference(inv, doc)
        lines = len(doc["lines"]) + 2
        if diff and abs(diff) <= t.money.quantum(doc["currency"]) * lines and inv.get("Status") == "Open" \
                and t.amount(inv.get("BalanceDueAmount")) == t.amount(inv.get("TotalAmount")):
            rounding = diff + sum((t.amount(li.get("Total")) for li in inv.get("Lines") or []
                                   if li.get("Description") == "Rounding"), Decimal(0))
            body = t.invoice_body(doc, inv["Customer"]["UID"], self.options, self.platform, rounding, existing=inv)
            self._request("PUT", f"/Sale/Invoice/Service/{inv['UID']}", body=body)
            inv = self._get(inv["UID"])
        t.check_total(inv, doc)
        return t.created(inv)

    def _check_tax_rate(self, doc: dict) -> None:
        """The taxable tax code's rate (read once and remembered) must be the job's."""
        if not any(line["taxable"] for line in doc["lines"]):
            return
        uid = t.tax_code(self.options, True, self.platform)["UID"]
        known = self.ctx.refs.get("tax_rate", uid)
        if known is None:
            known = self.ctx.refs.put("tax_rate", uid, str(t.amount(self._json("GET", f"/GeneralLedger/TaxCode/{uid}")
                                                                     .get("Rate"))))
        if Decimal(known) != doc["tax"]["rate"] * 100:
            raise Rejected(f"invoice {doc['number']}: MYOB tax code {uid} is {Decimal(known).normalize():f} %, the "
                           f"job's tax is {(doc['tax']['rate'] * 100).normalize():f} %: map a tax code with that rate")

    def _customer(self, doc: dict) -> str:
        c = doc["customer"]
        theirs = self.ctx.refs.get("customer", c["id"]) or (c.get("external_ids") or {}).get(SLUG)
        if theirs:
            return theirs
        found = None
        if len(c["id"]) <= t.DISPLAY_ID_MAX:
            items = self._json("GET", "/Contact/Customer",
                               params={"$filter": f"DisplayID eq {t.odata_quote(c['id'])}"}).get("Items") or []
            found = items[0]["UID"] if items else None
        if found is None:
            resp = self._request("POST", "/Contact/Customer", body=t.customer_body(c, self.options, self.platform))
            found = t.uid_from_location(resp.headers.get("Location"))
        return self.ctx.refs.put("customer", c["id"], found)

    # ------------------------------------------------------------ auth and HTTP

    @property
    def company_file(self) -> str:
        value = self.options.get("company_file_id")
        if not value:
            raise MappingMissing(f"platforms.{self.platform}.company_file_id: the MYOB company file id is not set")
        return str(value)

    def _token(self) -> ClientInBodyToken:
        return ClientInBodyToken(SLUG, "MYOB", "company file", self.options, self.ctx, self.token_url, _message,
                                 lifetime=1200)

    def _json(self, method: str, path: str, **kwargs) -> dict:
        resp = self._request(method, path, **kwargs)
        return loads(resp.content) if resp.content else {}

    def _request(self, method: str, path: str, *, body: dict | None = None,
                 params: dict | None = None) -> requests.Response:
        url = f"{self.base}/accountright/{self.company_file}{path}"
        data = dumps(body).encode() if body is not None else None
        token = self._token()
        api_key = token.client()[0]
        limiter_key = f"{SLUG}:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}"  # the limits are per API key
        failed, refused = None, 0
        for _ in range(4):  # one renewal after a 401, two resends after a per-second refusal
            access = token.get(failed)
            headers = {"Authorization": f"Bearer {access}", "x-myobapi-key": api_key, "x-myobapi-version": "v2",
                       "Accept": "application/json", "Accept-Encoding": "gzip,deflate"}
            cf = self.options.get("cf_credentials_env")
            if cf and os.environ.get(cf):
                headers["x-myobapi-cftoken"] = base64.b64encode(os.environ[cf].encode()).decode()
            if data is not None:
                headers["Content-Type"] = "application/json"
            try:
                with self.ctx.limiter.slot(limiter_key, RATES):
                    return http.call(method, url, slug=SLUG, message=_message, headers=headers, data=data,
                                     params=params)
            except AuthFailed as exc:
                text = str(exc)
                if exc.status == 403 and (OVER_QPS in text or "Over Qps" in text):
                    # the gateway refused it, so it never reached the company file: safe to send again shortly
                    refused += 1
                    if refused < 3:
                        time.sleep(1.0)
                        continue
                    raise RateLimited(f"{text} (8 calls a second per API key)", retry_after=1.0, status=403) from exc
                if exc.status == 403 and (OVER_RATE in text or "Over Rate" in text):
                    raise RateLimited(f"{text} (daily calls per API key)", retry_after=_until_next_utc_day(),
                                      status=403) from exc
                if exc.status != 401 or failed is not None:
                    raise
                failed = access  # expired or revoked early: renew once and repeat
        raise AssertionError("unreachable")
