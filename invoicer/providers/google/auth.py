"""Service account with domain-wide delegation: one access token per (service account, user, scopes).

The adapter signs a JWT (RS256, the key file's private key) whose `sub` is the tenant's sending user
and trades it at the key's `token_uri` for a one-hour access token (JWT bearer grant,
https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority). Nothing
is stored: tokens are kept per process and fetched again a little before they expire, or once when
the API has just refused one. The key comes from the environment variable the entry names; it is
never logged.
"""
from __future__ import annotations

import threading
import time

import jwt  # PyJWT, with cryptography for RS256

from invoicer.errors import AuthFailed, Rejected
from invoicer.providers import http
from invoicer.providers.google import transform

EARLY = 120  # seconds before expiry a token is renewed
_tokens: dict[tuple, tuple[str, float]] = {}
_lock = threading.Lock()


def _message(resp) -> str:
    try:
        return transform.error_text(resp.json(), resp.text[:200])
    except ValueError:
        return resp.text[:200]


class ServiceAccountToken:
    """Access tokens for one tenant's sending user; `slug` names the vendor in errors."""

    def __init__(self, slug: str, options: dict, scopes: list[str]):
        self.slug, self.options, self.scopes = slug, options, sorted(scopes)
        self.user = str(options.get("user") or "")

    def key(self) -> dict:
        text = http.env_secret(self.slug, self.options, "service_account_env", "the service account's JSON key")
        return transform.service_account(text)

    def get(self, refused: str | None = None) -> str:
        key = self.key()
        cache = (key["client_email"], key.get("private_key_id"), self.user, tuple(self.scopes))
        with _lock:
            held = _tokens.get(cache)
        if held and held[0] != refused and held[1] > time.time() + EARLY:
            return held[0]
        token, expires = self._fetch(key)
        with _lock:
            _tokens[cache] = (token, expires)
        return token

    def _fetch(self, key: dict) -> tuple[str, float]:
        now = int(time.time())
        headers = {"kid": key["private_key_id"]} if key.get("private_key_id") else None
        try:
            assertion = jwt.encode(transform.claims(key, self.user, self.scopes, now), key["private_key"],
                                   algorithm="RS256", headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthFailed(f"{self.slug}: the service account's private key cannot sign ({type(exc).__name__})"
                             ) from None
        url = self.options.get("token_url") or key.get("token_uri") or transform.TOKEN_URI
        try:
            resp = http.call("POST", url, slug=self.slug, message=_message,
                             data={"grant_type": transform.JWT_GRANT, "assertion": assertion},
                             headers={"Accept": "application/json"})
        except Rejected as exc:  # 400 invalid_grant / unauthorized_client: delegation or key must be fixed
            raise AuthFailed(f"{self.slug}: Google refused the service account for {self.user} ({exc}); check the "
                             f"key and the domain-wide delegation of {' '.join(self.scopes)}", status=exc.status
                             ) from None
        body = resp.json()
        return body["access_token"], time.time() + float(body.get("expires_in") or 3600)


def forget() -> None:
    """Drop every cached token (tests)."""
    with _lock:
        _tokens.clear()
