"""Helpers for the Odoo tests: tenant options on the simulator."""
from __future__ import annotations

from invoicer.providers.odoo.simulator import OdooSimulator


def odoo_options(sim: OdooSimulator, url: str = "http://127.0.0.1:9", **extra) -> dict:
    """The entry the simulator suggests, with the API key under the default variable name."""
    out = sim.platform(url)
    out.pop("api_key_env")
    out.update(extra)
    return out
