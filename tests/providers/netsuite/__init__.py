"""Helpers for the NetSuite provider tests: the tenant options the simulator's account fits."""
from __future__ import annotations

from invoicer.providers.netsuite.simulator import NetSuiteSimulator
from tests.providers.xero import make_doc  # noqa: F401 -- the same canonical test invoice (251.10 USD)


def options(url: str | None = None, **extra) -> dict:
    out = NetSuiteSimulator().platform(url or "https://tstdrv2710001.suitetalk.api.netsuite.com")
    if not url:
        out.pop("base_url")
    out.update(extra)
    return out
