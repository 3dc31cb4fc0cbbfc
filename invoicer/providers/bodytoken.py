"""OAuth 2 refresh for token endpoints that take the app's client id and secret in the request body, not in
HTTP Basic auth (Zoho, FreshBooks, Wave, MYOB); everything else -- the row lock, storing the new pair before
it is used -- is oauth.RefreshingToken's. A rotated refresh token is kept; a refused refresh, whether an
HTTP 4xx or Zoho's HTTP 200 {"error": ...}, is AuthFailed: a person reconnects the account."""
from __future__ import annotations

import time

from ..errors import AuthFailed, Rejected
from . import http
from .oauth import RefreshingToken


class ClientInBodyToken(RefreshingToken):
    def __init__(self, *args, as_json: bool = False, lifetime: float = 3600, extra: dict | None = None):
        super().__init__(*args)
        self.as_json, self.lifetime, self.extra = as_json, lifetime, dict(extra or {})

    def renew(self, current: dict) -> dict:
        if not current.get("refresh_token"):
            raise AuthFailed(f"no {self.vendor} refresh token stored for {self.ctx.tenant}: "
                             f"connect the {self.account} again")
        client_id, secret = self.client()
        body = {"grant_type": "refresh_token", "refresh_token": current["refresh_token"], "client_id": client_id,
                "client_secret": secret, **self.extra}
        payload = {"json": body} if self.as_json else {"data": body}
        try:
            resp = http.call("POST", self.token_url, slug=self.slug, message=self.message,
                             headers={"Accept": "application/json"}, **payload)
        except (Rejected, AuthFailed) as exc:  # invalid_grant: spent, revoked or expired
            raise AuthFailed(f"{self.vendor} refused the refresh token ({exc}); connect the {self.account} again",
                             status=exc.status) from None
        token = resp.json()
        if not isinstance(token, dict) or token.get("error") or not token.get("access_token"):
            error = token.get("error") if isinstance(token, dict) else "no token"
            raise AuthFailed(f"{self.vendor} refused the refresh token ({error}); connect the {self.account} again")
        return {**current, "access_token": token["access_token"],
                "refresh_token": token.get("refresh_token") or current["refresh_token"],
                "expires_at": time.time() + float(token.get("expires_in") or self.lifetime)}
