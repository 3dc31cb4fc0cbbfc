"""DocuSign eSignature (REST v2.1): the customer is asked to sign the finished invoice. One envelope per
invoice with our PDF, the customer as signer, sent at once; Connect tells us when it is completed, and
that becomes the job's `job.signed` event (see invoicer/signatures.py). Auth, limits and HTTP here; the
envelope and the error mapping in transform.py, Connect in webhooks.py.

DocuSign gets the invoice once our PDF exists (capability `attach_pdf`, beside the customer's messages).

Tenant options (platforms.<name> in the tenants file):
  provider: docusign
  user_id            the DocuSign user (GUID) the integration acts as (JWT `sub`); required
  account_id         the account (GUID) to send from; default: the user's default account (userinfo)
  oauth_url          https://account.docusign.com (production, default) or https://account-d.docusign.com
                     (developer); the JWT audience is its host
  integration_key_env  env var with the integration key (client id); default INVOICER_DOCUSIGN_INTEGRATION_KEY
  private_key_env    env var with the RSA private key (PEM) of the integration; default INVOICER_DOCUSIGN_PRIVATE_KEY
  connect_key_env    env var with the Connect HMAC key; default INVOICER_DOCUSIGN_CONNECT_KEY
  sign_here          {page, x, y} (pixels from the top left, default page 1 at 380, 690) or {anchor: text}
  email_subject      default "Please sign invoice {number} from {seller}" ({number}, {seller} filled in)
  email_blurb        the message in DocuSign's email (default: who asks, the invoice number and total)
  hourly_limit       the account's hourly API limit (default 3000, DocuSign's default)

Auth: the JWT grant (RS256 assertion: iss integration key, sub user, aud the OAuth host, scope
`signature impersonation`, one hour) at `{oauth_url}/oauth/token`, then `{oauth_url}/oauth/userinfo`
for the account's `base_uri`; both kept per process until five minutes before the token expires. The
user must have granted consent once (DocuSign answers `consent_required` until then: AuthFailed).

Exactly once: our delivery key is the envelope's `transactionId` and its hidden custom field
`invoicer_key`; before a retried create (pipeline: attempt > 1) `find_invoice` lists the account's
envelopes by that custom field and returns the one an earlier try made, so a second is never created.
"""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from urllib.parse import urlsplit

import requests

from ...errors import AuthFailed, MappingMissing, ProviderError, Rejected
from .. import http
from ..base import Created, Provider
from ..common import ProcessTokens, env_value
from ..ratelimit import within
from ..registry import register
from . import transform, webhooks

SLUG = "docusign"
DEFAULT_OAUTH = "https://account.docusign.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = "signature impersonation"
EARLY = 300  # seconds before expiry a token is replaced
_tokens = ProcessTokens()  # per process: (oauth url, integration key, user, account) -> session


def rates(hourly: int) -> list:
    """DocuSign's limits per account: `hourly` calls an hour (3,000 by default) and 500 in any 30 s."""
    return [within(hourly, 3600, min(100, hourly // 10)), within(500, 30, 50)]


def _json(resp: requests.Response):
    try:
        return resp.json()
    except ValueError:
        return None


@register
class DocuSign(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "attach_pdf", "parse_webhook"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.oauth_url = str(self.options.get("oauth_url") or os.environ.get("INVOICER_DOCUSIGN_OAUTH_URL")
                             or DEFAULT_OAUTH).rstrip("/")

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        if not options.get("user_id"):
            problems.append(f"platforms.{name}.user_id: the DocuSign user (GUID) the integration acts as is not set")
        place = options.get("sign_here")
        if place is not None:
            if not isinstance(place, dict) or not (place.get("anchor") or all(
                    isinstance(place.get(k, 0), int) and place.get(k, 0) >= 0 for k in ("page", "x", "y"))):
                problems.append(f"platforms.{name}.sign_here: {{page, x, y}} (whole numbers) or {{anchor: text}}")
        hourly = options.get("hourly_limit", 3000)
        if not isinstance(hourly, int) or hourly < 10:
            problems.append(f"platforms.{name}.hourly_limit: the account's hourly API limit, a whole number >= 10")
        return problems

    # ------------------------------------------------------------ capabilities

    def create_invoice(self, invoice: dict, key: str) -> Created:
        body = transform.envelope(invoice, key, self.options)  # Rejected before anything is sent
        session = self._session()
        summary = self._request("POST", "/envelopes", what="envelope create", body=body)
        return transform.created(summary, invoice, session["account_id"])

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        """The envelope an earlier try made (listed by our custom field), or None."""
        listing = self._request("GET", "/envelopes", what="envelope lookup",
                                params=transform.lookup_params(invoice, key))
        env = transform.found(listing, key)
        if env is None:
            return None
        return transform.created(env, invoice, self._session()["account_id"])

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list:
        name = self.options.get("connect_key_env") or "INVOICER_DOCUSIGN_CONNECT_KEY"
        webhooks.verify(headers, body, [os.environ.get(str(name), "").strip()])
        return webhooks.parse(body)

    # ------------------------------------------------------------ auth

    def _env(self, option: str, default: str, what: str) -> str:
        return env_value(self.options, self.platform, option, default, what)

    def _cache_key(self) -> tuple:
        return (self.oauth_url, self.options.get("integration_key_env") or "", self.options.get("user_id") or "",
                self.options.get("account_id") or "")

    def _session(self, refused: str | None = None) -> dict:
        """{access_token, expires_at, account_id, base_uri}: cached per process, fetched again near expiry or
        once the API refused the token."""
        return _tokens.get(self._cache_key(), self._fetch_session, refused, early=EARLY)

    def _assertion(self) -> str:
        import jwt  # PyJWT, with cryptography for RS256

        user = self.options.get("user_id")
        if not user:
            raise MappingMissing(f"platforms.{self.platform}.user_id (the DocuSign user to act as) is not set")
        now = int(time.time())
        claims = {"iss": self._env("integration_key_env", "INVOICER_DOCUSIGN_INTEGRATION_KEY", "the integration key"),
                  "sub": str(user), "aud": urlsplit(self.oauth_url).netloc, "iat": now, "exp": now + 3600,
                  "scope": SCOPES}
        key = self._env("private_key_env", "INVOICER_DOCUSIGN_PRIVATE_KEY", "the integration's RSA private key")
        try:
            return jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise AuthFailed(f"docusign: the private key cannot sign the JWT assertion ({type(exc).__name__})") from None

    def _fetch_session(self) -> dict:
        try:
            resp = http.call("POST", f"{self.oauth_url}/oauth/token", slug=SLUG, message=_oauth_message,
                             data={"grant_type": JWT_GRANT, "assertion": self._assertion()},
                             headers={"Accept": "application/json"})
        except Rejected as exc:  # 400 consent_required / invalid_grant: a person must grant consent or fix keys
            raise AuthFailed(f"docusign refused the JWT grant ({exc})", status=exc.status) from None
        token = resp.json()
        access = token["access_token"]
        info = http.call("GET", f"{self.oauth_url}/oauth/userinfo", slug=SLUG, message=_oauth_message,
                         headers={"Authorization": f"Bearer {access}", "Accept": "application/json"}).json()
        accounts = info.get("accounts") or []
        wanted = self.options.get("account_id")
        account = next((a for a in accounts if (a.get("account_id") == wanted if wanted else a.get("is_default"))),
                       None)
        if account is None:
            raise MappingMissing(f"docusign: user {self.options.get('user_id')} has no "
                                 f"{'account ' + str(wanted) if wanted else 'default account'} (userinfo lists "
                                 f"{len(accounts)}); set platforms.{self.platform}.account_id")
        return {"access_token": access, "expires_at": time.time() + float(token.get("expires_in") or 3600),
                "account_id": str(account["account_id"]), "base_uri": str(account["base_uri"]).rstrip("/")}

    # ------------------------------------------------------------ HTTP and limits

    def _request(self, method: str, path: str, *, what: str, body=None, params: dict | None = None) -> dict:
        refused = None
        for attempt in (1, 2):
            session = self._session(refused)
            url = f"{session['base_uri']}/restapi/v2.1/accounts/{session['account_id']}{path}"
            headers = {"Authorization": f"Bearer {session['access_token']}", "Accept": "application/json"}
            seen: dict = {}

            def message(resp: requests.Response) -> str:
                seen["resp"] = resp
                return transform.error_text(_json(resp))

            try:
                with self._slot(session["account_id"]):
                    resp = http.call(method, url, slug=SLUG, message=message, params=params, headers=headers,
                                     json=body)
            except ProviderError as exc:
                resp = seen.get("resp")
                if resp is None:  # nothing answered (refused, dropped, timed out): as http.py says
                    raise
                better = transform.typed(resp.status_code, _json(resp), what,
                                         retry_after=transform.reset_in(resp.headers, time.time())
                                         if resp.status_code in (400, 429) else exc.retry_after)
                if isinstance(better, AuthFailed) and resp.status_code == 401 and attempt == 1:
                    refused = session["access_token"]  # expired or revoked: one new token, then repeat
                    continue
                raise better from exc
            return _json(resp) or {}
        raise AssertionError("unreachable")

    def _slot(self, account_id: str):
        if self.ctx is None or not hasattr(self.ctx, "limiter"):
            return nullcontext()
        return self.ctx.limiter.slot(f"{SLUG}:{account_id}", rates(int(self.options.get("hourly_limit") or 3000)))


def _oauth_message(resp: requests.Response) -> str:
    return transform.error_text(_json(resp))
