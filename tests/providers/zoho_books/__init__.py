"""Helpers for the Zoho Books tests: tenant options; canonical invoices come from the Xero helpers."""
from __future__ import annotations

from tests.providers.xero import make_doc  # noqa: F401  -- the same 251.10 USD invoice

ORG = "60012345678"


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "zoho_books", "organization_id": ORG}
    if url:
        out.update(base_url=url, accounts_url=url)
    out.update(extra)
    return out
