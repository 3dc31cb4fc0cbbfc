"""Helpers for the Wave tests: tenant options; canonical invoices come from the Xero helpers."""
from __future__ import annotations

from invoicer.providers.wave.simulator import BUSINESS
from tests.providers.xero import make_doc  # noqa: F401  -- the same 251.10 USD invoice

PRODUCTS = {"labor": "Product:labor", "material": "Product:material", "fee": "Product:fee"}


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "wave", "business_id": BUSINESS, "products": dict(PRODUCTS)}
    if url:
        out.update(base_url=url, token_url=f"{url}/oauth2/token/")
    out.update(extra)
    return out
