"""Helpers for the Dynamics 365 tests: tenant options on the Business Central simulator."""
from __future__ import annotations

from invoicer.providers.dynamics365.simulator import BusinessCentralSimulator


def bc_options(sim: BusinessCentralSimulator, url: str | None = None, **extra) -> dict:
    """The entry the simulator suggests, with the app's credentials under the default variable names."""
    out = sim.platform(url or "http://127.0.0.1:9")
    out.pop("client_id_env"), out.pop("client_secret_env")
    if url is None:
        out.pop("base_url"), out.pop("token_url")
    out.update(extra)
    return out
