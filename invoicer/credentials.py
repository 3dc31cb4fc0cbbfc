"""Platform credentials, encrypted at rest (Fernet), and the platform's ids for our things.

OAuth 2 refresh tokens that rotate (QuickBooks, Xero) are renewed under a row lock: one worker
calls the token endpoint, stores the new pair in the same transaction, and only then uses it; the
others wait on the lock and find the fresh token. Values are never logged.
"""
from __future__ import annotations

import json
import os
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select, update

from . import db
from .config import ConfigError
from .store import insert_ignore


def _cipher() -> MultiFernet:
    keys = [k.strip() for k in os.environ.get("INVOICER_CREDENTIALS_KEY", "").split(",") if k.strip()]
    if not keys:
        raise ConfigError("INVOICER_CREDENTIALS_KEY is not set (a Fernet key: "
                          "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')")
    try:
        return MultiFernet([Fernet(k) for k in keys])  # the first key encrypts; all of them decrypt
    except ValueError:
        raise ConfigError("INVOICER_CREDENTIALS_KEY: not a Fernet key (32 url-safe base64 bytes)") from None


def _seal(value: dict) -> str:
    return _cipher().encrypt(json.dumps(value).encode()).decode()


def _open(token: str) -> dict:
    try:
        return json.loads(_cipher().decrypt(token.encode()))
    except InvalidToken:
        raise ConfigError("stored credentials cannot be decrypted with INVOICER_CREDENTIALS_KEY") from None


class Credentials:
    """One tenant's credentials on one platform."""

    def __init__(self, engine, tenant: str, platform: str):
        self.engine, self.tenant, self.platform = engine, tenant, platform

    def _where(self):
        c = db.credentials.c
        return (c.tenant == self.tenant) & (c.platform == self.platform)

    def get(self) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(db.credentials.c.secret).where(self._where())).first()
        return _open(row.secret) if row else None

    def put(self, value: dict) -> None:
        with self.engine.begin() as conn:
            if insert_ignore(conn, db.credentials, {"tenant": self.tenant, "platform": self.platform,
                                                    "secret": _seal(value), "version": 1},
                             ["tenant", "platform"]) is None:
                conn.execute(update(db.credentials).where(self._where()).values(
                    secret=_seal(value), version=db.credentials.c.version + 1, updated_at=db.utcnow()))

    def refresh(self, still_good: Callable[[dict], bool], renew: Callable[[dict], dict]) -> dict:
        """The current value if `still_good`, else `renew(current)` stored before it is returned."""
        with self.engine.begin() as conn:
            row = conn.execute(select(db.credentials.c.secret).where(self._where()).with_for_update()).first()
            if row is None:
                raise ConfigError(f"no credentials stored for {self.tenant} on {self.platform}: "
                                  f"invoicer credentials set {self.tenant} {self.platform}")
            current = _open(row.secret)
            if still_good(current):
                return current  # another worker renewed it while we waited for the lock
            fresh = renew(current)
            conn.execute(update(db.credentials).where(self._where()).values(
                secret=_seal(fresh), version=db.credentials.c.version + 1, updated_at=db.utcnow()))
        return fresh


class Refs:
    """The platform's ids for our customers (and anything else found or created there), remembered."""

    def __init__(self, engine, tenant: str, platform: str):
        self.engine, self.tenant, self.platform = engine, tenant, platform

    def get(self, kind: str, ours: str) -> str | None:
        r = db.platform_refs.c
        with self.engine.connect() as conn:
            return conn.execute(select(r.theirs).where(r.tenant == self.tenant, r.platform == self.platform,
                                                       r.kind == kind, r.ours == ours)).scalar()

    def put(self, kind: str, ours: str, theirs: str) -> str:
        """Remember the mapping; if another worker remembered one first, theirs wins and is returned."""
        with self.engine.begin() as conn:
            insert_ignore(conn, db.platform_refs, {"tenant": self.tenant, "platform": self.platform, "kind": kind,
                                                   "ours": ours, "theirs": theirs},
                          ["tenant", "platform", "kind", "ours"])
        return self.get(kind, ours)
