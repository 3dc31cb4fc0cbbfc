"""Helpers for the MYOB tests: tenant options and an AUD, 10 % GST version of the Xero helpers' invoice."""
from __future__ import annotations

from invoicer.providers.myob.simulator import ACCOUNTS, CF, FRE, GST
from tests.providers.xero import make_doc as _make_doc


def make_doc(**changes) -> dict:
    """200.00 labour + 50.00 material (taxed) + 25.00 fee, 10 % off (27.50), 10 % GST on the discounted
    material (4.50): total 252.00 AUD."""
    changes.setdefault("currency", "AUD")
    changes.setdefault("tax", {"rate": "0.10", "jurisdiction": "AU-GST"})
    return _make_doc(**changes)


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "myob", "company_file_id": CF, "accounts": dict(ACCOUNTS),
           "tax_codes": {"taxable": GST, "exempt": FRE}, "currency": "AUD"}
    if url:
        out.update(base_url=url, token_url=f"{url}/oauth2/v1/authorize")
    out.update(extra)
    return out
