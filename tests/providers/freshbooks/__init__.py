"""Helpers for the FreshBooks tests: tenant options; canonical invoices come from the Xero helpers."""
from __future__ import annotations

from tests.providers.xero import make_doc  # noqa: F401  -- the same 251.10 USD invoice

ACCOUNT = "6BApk"


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "freshbooks", "account_id": ACCOUNT}
    if url:
        out["base_url"] = url
    out.update(extra)
    return out
