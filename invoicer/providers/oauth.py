"""OAuth 2 with rotating refresh tokens (QuickBooks, Xero): one flow for every vendor that uses it.

The access token is renewed a little before it expires, or when the API has just refused it; the
renewal runs under the credentials row lock and the new pair is stored before it is used, so two
workers never spend the same refresh token (`invoicer.credentials.Credentials.refresh`).
"""
from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any, Callable

import requests

from ..errors import AuthFailed, MappingMissing, Rejected
from . import http

EARLY = 120  # renew an access token this many seconds before it expires


def epoch(value: Any) -> float:
    """Seconds since the epoch from a number, a numeric string or an ISO 8601 string."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value:
        try:
            return float(value)
        except ValueError:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def app_client(slug: str, options: dict, platform: str) -> tuple[str, str]:
    """The app's OAuth client id and secret, from the environment variables the entry names
    (`client_id_env`, `client_secret_env`; default INVOICER_<SLUG>_CLIENT_ID / _SECRET)."""
    out = []
    for option, suffix in (("client_id_env", "CLIENT_ID"), ("client_secret_env", "CLIENT_SECRET")):
        name = options.get(option) or f"INVOICER_{slug.upper()}_{suffix}"
        value = os.environ.get(name)
        if not value:
            raise MappingMissing(f"environment variable {name} (platforms.{platform}.{option}) is not set")
        out.append(value)
    return out[0], out[1]


class RefreshingToken:
    """The access token of one tenant on one platform.

    `vendor` names it in messages ("QuickBooks"), `account` is what a person reconnects ("company").
    The app's client id and secret come from the environment variables the entry names
    (`client_id_env`, `client_secret_env`), by default INVOICER_<SLUG>_CLIENT_ID / _SECRET; they go as
    HTTP Basic auth (bodytoken.ClientInBodyToken sends them as form fields, for the vendors that want that)."""

    def __init__(self, slug: str, vendor: str, account: str, options: dict, ctx, token_url: str,
                 message: Callable[[requests.Response], str]):
        self.slug, self.vendor, self.account = slug, vendor, account
        self.options, self.ctx, self.token_url, self.message = options, ctx, token_url, message

    def client(self) -> tuple[str, str]:
        return app_client(self.slug, self.options, self.ctx.platform)

    def get(self, refused: str | None = None) -> str:
        """A usable access token; `refused` is one the API has just answered 401 to (it is renewed
        unless another worker already stored a different one)."""
        def good(c: dict) -> bool:
            return bool(c.get("access_token")) and c["access_token"] != refused \
                and epoch(c.get("expires_at")) > time.time() + EARLY

        current = self.ctx.credentials.get()
        if not current:
            raise AuthFailed(f"no {self.vendor} credentials stored for {self.ctx.tenant} on {self.ctx.platform}: "
                             f"invoicer credentials set {self.ctx.tenant} {self.ctx.platform}")
        if good(current):
            return current["access_token"]
        return self.ctx.credentials.refresh(good, self.renew)["access_token"]

    def renew(self, current: dict) -> dict:
        """Trade the refresh token for a new pair (the vendor rotates it); the caller stores the result."""
        if not current.get("refresh_token"):
            raise AuthFailed(f"no {self.vendor} refresh token stored for {self.ctx.tenant}: "
                             f"connect the {self.account} again")
        data = {"grant_type": "refresh_token", "refresh_token": current["refresh_token"]}
        try:
            resp = http.call("POST", self.token_url, slug=self.slug, message=self.message, auth=self.client(),
                             data=data, headers={"Accept": "application/json"})
        except Rejected as exc:  # 400 invalid_grant: revoked, expired or already rotated -> a person reconnects
            raise AuthFailed(f"{self.vendor} refused the refresh token ({exc}); connect the {self.account} again",
                             status=exc.status) from None
        token = resp.json()
        now = time.time()
        fresh = {**current, "access_token": token["access_token"],
                 "refresh_token": token.get("refresh_token") or current["refresh_token"],
                 "expires_at": now + float(token.get("expires_in") or 1800)}
        if token.get("x_refresh_token_expires_in"):  # Intuit says how long the new refresh token lives
            fresh["refresh_expires_at"] = now + float(token["x_refresh_token_expires_in"])
        return fresh
