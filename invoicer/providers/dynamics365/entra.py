"""Microsoft Entra ID (Azure AD) client-credentials tokens, cached per process until shortly before expiry.

POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token with grant_type=client_credentials,
client_id, client_secret and scope `<resource>/.default`; the answer is {token_type, expires_in,
access_token} (Microsoft identity platform, "OAuth 2.0 client credentials flow"). There is no refresh
token: a new token is simply asked for. The app's id and secret come from the environment variables the
tenant entry names (`client_id_env`, `client_secret_env`), never from the tenants file.
"""
from __future__ import annotations

import threading
import time

import requests

from ...errors import AuthFailed, Rejected
from .. import http
from ..oauth import app_client

EARLY = 120  # ask for a new token this many seconds before the old one expires
_cache: dict[tuple[str, str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def token_url(tenant: str, override: str | None = None) -> str:
    return override or f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"


def _message(resp: requests.Response) -> str:
    """Entra's error: `error` and the AADSTS code line of `error_description` (no secrets in either)."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    first = (body.get("error_description") or "").split("\r\n")[0].split("\n")[0]
    return ": ".join(p for p in (body.get("error"), first[:200]) if p)


class ClientCredentials:
    def __init__(self, slug: str, options: dict, platform: str, url: str, scope: str):
        self.slug, self.options, self.platform, self.url, self.scope = slug, options, platform, url, scope

    def client(self) -> tuple[str, str]:
        return app_client(self.slug, self.options, self.platform)

    def get(self, refused: str | None = None) -> str:
        """A usable access token; `refused` is one the API has just answered 401 to (it is not reused)."""
        client_id, secret = self.client()
        key = (self.url, client_id, self.scope)
        with _lock:
            cached = _cache.get(key)
            if cached and cached[0] != refused and cached[1] > time.time() + EARLY:
                return cached[0]
        try:
            resp = http.call("POST", self.url, slug=self.slug, message=_message,
                             data={"grant_type": "client_credentials", "client_id": client_id,
                                   "client_secret": secret, "scope": self.scope},
                             headers={"Accept": "application/json"})
        except Rejected as exc:  # 400 invalid_client / unauthorized_client / invalid_scope: a person fixes it
            raise AuthFailed(f"Microsoft Entra refused the app's credentials ({exc})", status=exc.status) from None
        body = resp.json()
        token = body["access_token"]
        with _lock:
            _cache[key] = (token, time.time() + float(body.get("expires_in") or 3599))
        return token


def forget() -> None:
    """Drop every cached token (tests)."""
    with _lock:
        _cache.clear()
