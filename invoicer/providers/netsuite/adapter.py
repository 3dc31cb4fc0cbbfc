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
  auth              tba (default: token-based authentication, OAuth 1.0a HMAC-SHA256) or oauth2 (client
                    credentials, machine to machine: a JWT signed with the tenant's private key)
  consumer_key_env, consumer_secret_env, token_id_env, token_secret_env   (tba) names of the environment
                    variables with the integration record's consumer key/secret and the access token id/secret
                    (default INVOICER_NETSUITE_CONSUMER_KEY, ..._CONSUMER_SECRET, ..._TOKEN_ID, ..._TOKEN_SECRET)
  certificate_id    (oauth2) the certificate id of the client credentials mapping (the JWT's kid)
  algorithm         (oauth2) PS256 (default), PS384, PS512, ES256, ES384 or ES512, to suit the key
  client_id_env, private_key_env   (oauth2) environment variables with the integration's client id and the
                    PEM private key (default INVOICER_NETSUITE_CLIENT_ID, INVOICER_NETSUITE_PRIVATE_KEY)
  token_url         (oauth2) default {base_url}/services/rest/auth/oauth2/v1/token
  base_url          default the account's suitetalk host (else env INVOICER_NETSUITE_BASE_URL)

Exactly once: the invoice is written with an upsert, PUT /invoice/eid:{externalId}?replace=item, where the
external id comes from the delivery's idempotency key; NetSuite keeps one record per external id, so a
repeated request updates that record (replacing its lines, not appending to them) and never makes a second
invoice. Before a retry the pipeline calls find_invoice, GET /invoice/eid:{externalId}, and creates nothing
when it is there. Customers are upserted the same way (external id from tenant + our customer id).
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import jwt
import requests
from oauthlib import oauth1

from ...errors import AuthFailed, RateLimited, Rejected
from .. import http
from ..base import Created, PaymentStatus
from ..common import MappedProvider, cached_credential, env_secrets, mapped, known_customer, option_problems
from ..registry import register
from . import transform

SLUG = "netsuite"
RECORD = "/services/rest/record/v1"
CONCURRENCY = 4
RETRY_AFTER = 5.0  # NetSuite sends no Retry-After (not confirmed); the concurrency limit frees up in seconds
LIMIT_CODES = ("CONCURRENCY_LIMIT_EXCEEDED", "SSS_REQUEST_LIMIT_EXCEEDED", "WS_REQUEST_BLOCKED")
SECRETS = (("consumer_key_env", "CONSUMER_KEY"), ("consumer_secret_env", "CONSUMER_SECRET"),
           ("token_id_env", "TOKEN_ID"), ("token_secret_env", "TOKEN_SECRET"))
M2M_SECRETS = (("client_id_env", "CLIENT_ID"), ("private_key_env", "PRIVATE_KEY"))
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TTL = 50 * 60  # Oracle: exp must be less than 60 minutes after iat
ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")  # Oracle's list; RS256 is not on it


def host_part(account_id: str) -> str:
    return str(account_id).strip().lower().replace("_", "-")


def realm(account_id: str) -> str:
    return str(account_id).strip().upper().replace("-", "_")


_message = http.json_message(lambda body, fallback: transform.error_text(body) or fallback[:300], reason=True)


@register
class NetSuite(MappedProvider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "payment_status"})
    mapping_class = transform.Mapping

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = option_problems(options, name, {"account_id": "the NetSuite account id"}, "items",
                                   transform.KINDS)
        auth = options.get("auth") or "tba"
        if auth not in ("tba", "oauth2"):
            problems.append(f"platforms.{name}.auth: tba (token-based authentication) or oauth2 (client "
                            f"credentials), not {auth!r}")
        if auth == "oauth2" and not options.get("certificate_id"):
            problems.append(f"platforms.{name}.certificate_id: the certificate id of the OAuth 2.0 client "
                            f"credentials mapping is not set")
        if auth == "oauth2" and (options.get("algorithm") or "PS256") not in ALGORITHMS:
            problems.append(f"platforms.{name}.algorithm: one of {', '.join(ALGORITHMS)}")
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

    # OAuth 2.0 client credentials (machine to machine): a JWT signed with the tenant's private key buys an
    # access token of about an hour, cached encrypted in the credentials table and renewed under its lock.

    def _token_url(self) -> str:
        return self.options.get("token_url") or self._base() + TOKEN_PATH

    def _access_token(self, refused: str | None = None) -> str:
        return cached_credential(self.ctx.credentials, "access_token", self._grant, refused, early=120)

    def _grant(self, current: dict | None = None) -> dict:
        client_id, private_key = env_secrets(SLUG, self.options, self.platform, M2M_SECRETS)
        now = int(time.time())
        url = self._token_url()
        try:
            assertion = jwt.encode({"iss": client_id, "scope": "rest_webservices", "aud": url, "iat": now,
                                    "exp": now + ASSERTION_TTL}, private_key.replace("\\n", "\n"),
                                   algorithm=self.options.get("algorithm") or "PS256",
                                   headers={"kid": str(self.options.get("certificate_id") or ""), "typ": "JWT"})
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthFailed(f"netsuite: the private key cannot sign the client assertion ({type(exc).__name__})") \
                from None
        try:
            resp = http.call("POST", url, slug=SLUG, message=_message, headers={"Accept": "application/json"},
                             data={"grant_type": "client_credentials", "client_assertion": assertion,
                                   "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
        except Rejected as exc:  # 400 invalid_grant / invalid_client: the mapping or the key is wrong
            raise AuthFailed(f"netsuite refused the client credentials ({exc})", status=exc.status) from None
        answer = resp.json()
        return {"access_token": answer["access_token"], "expires_at": now + float(answer.get("expires_in") or 3600)}

    def _auth(self, method: str, url: str, refused: str | None) -> tuple[dict[str, str], str | None]:
        """The Authorization header for one request, and the bearer token in it (None for TBA)."""
        if (self.options.get("auth") or "tba") == "oauth2":
            token = self._access_token(refused)
            return {"Authorization": f"Bearer {token}"}, token
        return self._sign(method, url), None

    def _request(self, method: str, path: str, *, body: dict | None = None,
                 params: dict | None = None) -> requests.Response:
        url = self._base() + RECORD + path
        if params:
            url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        refused = None
        for attempt in (1, 2):
            auth, token = self._auth(method, url, refused)
            try:
                return self._send(method, url, {"Accept": "application/json", **auth}, body)
            except AuthFailed as exc:
                if token is None or exc.status != 401 or attempt == 2:
                    raise
                refused = token  # an access token ended early: a new one, once
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, headers: dict, body: dict | None) -> requests.Response:
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
