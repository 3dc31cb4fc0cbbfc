"""Credentials are encrypted at rest, and a rotating refresh token is renewed once, under a lock."""
from __future__ import annotations

import threading
import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from invoicer import db
from invoicer.config import ConfigError
from invoicer.credentials import Credentials, Refs


@pytest.fixture
def key(monkeypatch):
    k = Fernet.generate_key().decode()
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", k)
    return k


def test_stored_encrypted_and_read_back(clean, key):
    creds = Credentials(db.engine(), "acme-hvac", "books")
    creds.put({"access_token": "at-secret", "refresh_token": "rt-secret"})
    with db.engine().connect() as conn:
        raw = conn.execute(select(db.credentials.c.secret)).scalar_one()
    assert "secret" not in raw and "rt-" not in raw
    assert creds.get() == {"access_token": "at-secret", "refresh_token": "rt-secret"}


def test_key_rotation_reads_old_and_writes_new(clean, key, monkeypatch):
    creds = Credentials(db.engine(), "acme-hvac", "books")
    creds.put({"v": 1})
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", f"{new},{key}")
    assert creds.get() == {"v": 1}
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        creds.get()


def test_refresh_renews_once_when_many_workers_find_it_expired(clean, key):
    creds = Credentials(db.engine(), "acme-hvac", "books")
    creds.put({"access_token": "old", "refresh_token": "r1", "expires_at": 0})
    calls = []

    def renew(current):
        calls.append(current["refresh_token"])
        time.sleep(0.2)  # the token endpoint takes a while; the others wait on the row lock
        return {"access_token": "new", "refresh_token": "r2", "expires_at": time.time() + 3600}

    results = []

    def worker():
        results.append(creds.refresh(lambda c: c["expires_at"] > time.time(), renew))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["r1"]  # the rotating refresh token was used exactly once
    assert {r["refresh_token"] for r in results} == {"r2"}
    assert creds.get()["refresh_token"] == "r2"


def test_refresh_without_stored_credentials_says_how_to_set_them(clean, key):
    with pytest.raises(ConfigError, match="invoicer credentials set"):
        Credentials(db.engine(), "acme-hvac", "nowhere").refresh(lambda c: True, lambda c: c)


def test_missing_key_is_a_clear_error(clean, monkeypatch):
    monkeypatch.delenv("INVOICER_CREDENTIALS_KEY", raising=False)
    with pytest.raises(ConfigError, match="INVOICER_CREDENTIALS_KEY"):
        Credentials(db.engine(), "acme-hvac", "books").put({"a": 1})


def test_refs_first_writer_wins(clean):
    refs = Refs(db.engine(), "acme-hvac", "books")
    assert refs.get("customer", "C-1") is None
    assert refs.put("customer", "C-1", "42") == "42"
    assert refs.put("customer", "C-1", "43") == "42"
