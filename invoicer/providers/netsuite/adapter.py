"""NetSuite (REST record service, record/v1): token-based auth and HTTP; the mapping is in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: netsuite
  account_id        the NetSuite account id, e.g. 1234567 or 1234567_SB1 (required). The API host is
                    https://{account_id lower-case, _ -> -}.suitetalk.api.netsuite.com; the OAuth realm is the
                    id in upper case with the underscore.
  items             {labor, material, fee, discount, tax}: internal ids of the NetSuite items for each kind of
                    line (discount: a Discount item, tax: an Other Charge item booked to sales tax payable)
  tax_codes         {taxable, non_taxable}: internal ids of ZERO-RATE tax codes put on every line (optional;
                    accounts whose items need a tax code set them), so NetSuite adds no tax of its own
  currency          ISO code of the customers' default currency (sent as no currency field), and/or
  currencies        {ISO code: currency internal id} for the others
  subsidiary        the subsidiary internal id for customers invoicer creates (OneWorld accounts)
  use_our_number    true: tranId = our invoice number; default false: NetSuite's document numbering
  send              true: NetSuite emails the invoice when it is saved (toBeEmailed + email); default false:
                    invoicer's own channels send it
  concurrency       how many requests invoicer may have in flight on the account (default 4; the account's
                    own limit is 5 on the shared tier plus 10 per SuiteCloud Plus licence, for all integrations)
  auth              tba (default). oauth2 (client credentials with a JWT assertion) is not built yet.
  consumer_key_env, consumer_secret_env, token_id_env, token_secret_env   names of the environment variables
                    with the integration record's consumer key/secret and the access token id/secret (default
                    INVOICER_NETSUITE_CONSUMER_KEY, ..._CONSUMER_SECRET, ..._TOKEN_ID, ..._TOKEN_SECRET)
  base_url          default the account's suitetalk host (else env INVOICER_NETSUITE_BASE_URL)

Exactly once: the invoice is written with an upsert, PUT /invoice/eid:{externalId}?replace=item, where the
external id comes from the delivery's idempotency key; NetSuite keeps one record per external id, so a
repeated request updates that record (replacing its lines, not appending to them) and never makes a second
invoice. Before a retry the pipeline calls find_invoice, GET /invoice/eid:{externalId}, and creates nothing
when it is there. Customers are upserted the same way (external id from tenant + our customer id).
"""
from __future__ import annotations

from urllib.parse import urlsplit

import requests
from oauthlib import oauth1

from ...errors import AuthFailed, RateLimited, Rejected
from .. import http
from ..base import Created, PaymentStatus
from ..common import MappedProvider, env_secrets, mapped, known_customer, option_problems
from ..registry import register
from . import transform

SLUG = "netsuite"
RECORD = "/services/rest/record/v1"
CONCURRENCY = 4
RETRY_AFTER = 5.0  # NetSuite sends no Retry-After (not confirmed); the concurrency limit frees up in seconds
LIMIT_CODES = ("CONCURRENCY_LIMIT_EXCEEDED", "SSS_REQUEST_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED")
SECRETS = (("consumer_key_env", "CONSUMER_KEY"), ("consumer_secret_env", "CONSUMER_SECRET"),
           ("token_id_env", "TOKEN_ID"), ("token_secret_env", "TOKEN_SECRET"))


def host_part(account_id: str) -> str:
    return str(account_id).strip().lower().replace("_", "-")


def realm(account_id: str) -> str:
    return str(account_id).strip().upper().replace("-", "_")


def _message(resp: requests.Response) -> str:
    try:
        text = transform.error_text(transform.loads(resp.content)) if resp.content else None
    except ValueError:
        text = None
    return text or resp.text[:300] or resp.reason or ""


@register
class NetSuite(MappedProvider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "payment_status"})
    mapping_class = transform.Mapping

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = option_problems(options, name, {"account_id": "the NetSuite account id"}, "items",
                                   transform.KINDS)
        if (options.get("auth") or "tba") != "tba":
            problems.append(f"platforms.{name}.auth: only tba (token-based authentication) is supported")
        if not options.get("currency") and not options.get("currencies"):
            problems.append(f"platforms.{name}.currency (the ISO code of the account's currency) or "
                            f"platforms.{name}.currencies is not set")
        return problems

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        transform.invoice_body(invoice, self.mapping, "0")

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        try:
            record = self._json("GET", f"/invoice/eid:{transform.external_id(key)}")
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise
        return transform.created(record, invoice, self._app())

    def create_invoice(self, invoice: dict, key: str) -> Created:
        transform.invoice_body(invoice, self.mapping, "0")  # a missing mapping fails before any call
        body = transform.invoice_body(invoice, self.mapping, self._customer(invoice))
        eid = transform.external_id(key)
        resp = self._request("PUT", f"/invoice/eid:{eid}", body=body, params={"replace": "item"})
        record = self._json("GET", self._record_path(resp, f"/invoice/eid:{eid}"))
        return transform.created(record, invoice, self._app())

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._json("GET", f"/invoice/{external_id}"))

    # ------------------------------------------------------------ customers

    def _customer(self, doc: dict) -> str:
        c = doc["customer"]
        theirs = known_customer(self.ctx, c, SLUG, self.platform)
        if not theirs:
            path = f"/customer/eid:{transform.customer_external_id(self.ctx.tenant, c['id'])}"
            resp = self._request("PUT", path, body=transform.customer_body(doc, self.mapping))
            theirs = self._record_path(resp, "").rsplit("/", 1)[-1] or self._json("GET", path)["id"]
        return self.ctx.refs.put("customer", c["id"], str(theirs))

    # ------------------------------------------------------------ auth and HTTP

    @property
    def account_id(self) -> str:
        return str(mapped(self.options, "account_id",
                          f"platforms.{self.platform}.account_id: the NetSuite account id is not set"))

    def _base(self) -> str:
        return http.base_url(SLUG, self.options, f"https://{host_part(self.account_id)}.suitetalk.api.netsuite.com")

    def _app(self) -> str:
        return f"https://{host_part(self.account_id)}.app.netsuite.com"

    def _sign(self, method: str, url: str) -> dict[str, str]:
        """The OAuth 1.0a Authorization header (HMAC-SHA256, realm = account id) for one request; the JSON
        body is not part of the signature (only form bodies are)."""
        key, secret, token, token_secret = env_secrets(SLUG, self.options, self.platform, SECRETS)
        client = oauth1.Client(key, client_secret=secret, resource_owner_key=token,
                               resource_owner_secret=token_secret, signature_method=oauth1.SIGNATURE_HMAC_SHA256,
                               realm=realm(self.account_id))
        _, headers, _ = client.sign(url, http_method=method)
        return {"Authorization": headers["Authorization"]}

    def _request(self, method: str, path: str, *, body: dict | None = None,
                 params: dict | None = None) -> requests.Response:
        url = self._base() + RECORD + path
        if params:
            url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        headers = {"Accept": "application/json", **self._sign(method, url)}
        data = None
        if body is not None:
            data, headers["Content-Type"] = transform.dumps(body), "application/json"
        limit = int(self.options.get("concurrency") or CONCURRENCY)
        try:
            with self.ctx.limiter.slot(f"{SLUG}:{self.account_id}", [], concurrency=limit):
                return http.call(method, url, slug=SLUG, message=_message, headers=headers, data=data)
        except RateLimited as exc:
            if exc.retry_after is None:
                raise RateLimited(str(exc), retry_after=RETRY_AFTER, status=exc.status) from exc
            raise
        except (Rejected, AuthFailed) as exc:
            if any(f"[{code}]" in str(exc) for code in LIMIT_CODES):  # the account's concurrency limit
                raise RateLimited(str(exc), retry_after=RETRY_AFTER, status=exc.status) from exc
            raise

    def _json(self, method: str, path: str) -> dict:
        resp = self._request(method, path)
        return transform.loads(resp.content) if resp.content else {}

    @staticmethod
    def _record_path(resp: requests.Response, fallback: str) -> str:
        """The record path named by the Location header of a 201/204 (…/record/v1/invoice/123)."""
        location = urlsplit(resp.headers.get("Location") or "").path
        return location.split(RECORD, 1)[1] if RECORD in location else fallback
