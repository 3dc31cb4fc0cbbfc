"""Helpers for the Dynamics 365 tests: tenant options on the Business Central simulator."""
from __future__ import annotations

from types import SimpleNamespace

from invoicer import db
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.dynamics365 import entra
from invoicer.providers.dynamics365.simulator import BusinessCentralSimulator


def bc_options(sim: BusinessCentralSimulator, url: str | None = None, **extra) -> dict:
    """The entry the simulator suggests, with the app's credentials under the default variable names."""
    out = sim.platform(url or "http://127.0.0.1:9")
    out.pop("client_id_env"), out.pop("client_secret_env")
    if url is None:
        out.pop("base_url"), out.pop("token_url")
    out.update(extra)
    return out


def on_simulator(running, tmp_path, monkeypatch, options) -> SimpleNamespace:
    """A fresh simulator state, no cached token, the app's credentials in the environment, and
    `provider(attempt, **options)` building the adapter for the entry `options(**extra)` gives."""
    sim = running.sim
    sim.reset()
    entra.forget()
    monkeypatch.setenv("INVOICER_DYNAMICS365_CLIENT_ID", sim.client_id)
    monkeypatch.setenv("INVOICER_DYNAMICS365_CLIENT_SECRET", sim.client_secret)

    def provider(attempt: int = 1, **extra):
        ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="erp")
        return registry.get("dynamics365")(options(**extra), ctx)

    return SimpleNamespace(sim=sim, provider=provider)
