"""One way to test an ERP adapter against its simulator: a server per module, fresh state per test, the
simulator's sandbox environment set, and providers made for any attempt with changed options."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.pipeline import Ctx
from invoicer.providers.simulate import Running


def fixtures(make_sim, provider_cls, options, platform: str):
    """(running, env) fixtures: `env.provider(attempt=1, **option_changes)`, `env.sim`, `env.url`."""

    @pytest.fixture(scope="module")
    def running():
        with Running(make_sim()) as r:
            yield r

    @pytest.fixture
    def env(clean, running, tmp_path, monkeypatch):
        sim = running.sim
        sim.reset()
        monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)

        def provider(attempt: int = 1, **extra):
            ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform=platform)
            return provider_cls(options(running.url, **extra), ctx)

        return SimpleNamespace(sim=sim, url=running.url, provider=provider)

    return running, env
