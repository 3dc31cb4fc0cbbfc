"""OAuth 2 client credentials whose id and secret are the tenant's own (stored encrypted with the tenant's
credentials, not in the environment): ServiceTitan (id and secret in the form body) and FieldEdge (HTTP Basic).
The access token is kept beside them in the same credentials row until shortly before it expires; a token
the API has just refused is replaced once."""
from __future__ import annotations

import time
from typing import Callable

import requests

from ..errors import AuthFailed, Rejected
from . import http
from .common import cached_credential


def token(ctx, *, slug: str, vendor: str, url: str, message: Callable[[requests.Response], str],
          secret_name: str = "client_secret", basic: bool = False, refused: str | None = None,
          lifetime: float = 900) -> str:
    creds = ctx.credentials
    stored = creds.get() or {}
    if not (stored.get("client_id") and stored.get(secret_name)):
        raise AuthFailed(f"no {vendor} client_id and {secret_name} stored for {ctx.tenant} on {ctx.platform}: "
                         f"invoicer credentials set {ctx.tenant} {ctx.platform}")

    def make(current: dict | None) -> dict:
        current = current or stored
        form = {"grant_type": "client_credentials"}
        extra = {"auth": (current["client_id"], current[secret_name])} if basic else {}
        if not basic:
            form.update(client_id=current["client_id"], client_secret=current[secret_name])
        try:
            resp = http.call("POST", url, slug=slug, message=message, headers={"Accept": "application/json"},
                             data=form, **extra)
        except Rejected as exc:  # invalid_client: the tenant disconnected the app or changed the secret
            raise AuthFailed(f"{vendor} refused the tenant's client credentials ({exc})", status=exc.status) from None
        body = resp.json()
        return {**current, "access_token": body["access_token"],
                "expires_at": time.time() + float(body.get("expires_in") or lifetime)}

    return cached_credential(creds, "access_token", make, refused)
