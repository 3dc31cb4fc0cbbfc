"""Helpers for the Sage Intacct provider tests: tenant options the simulator's company fits."""
from __future__ import annotations

from invoicer.providers.sage_intacct.simulator import SageIntacctSimulator
from tests.providers.xero import make_doc  # noqa: F401 -- the same canonical test invoice (251.10 USD)


def options(url: str | None = None, **extra) -> dict:
    out = SageIntacctSimulator().platform(url or "https://api.intacct.com")
    if not url:
        out.pop("base_url")
    out.update(extra)
    return out
