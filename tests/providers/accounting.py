"""One harness for the adapter tests of the accounting platforms built on providers/simkit.py (Zoho Books,
FreshBooks, Wave, MYOB): a fresh simulator state, its environment, stored OAuth tokens, and a provider
factory with real PostgreSQL (credentials, refs) and Redis (limiter) behind it."""
from __future__ import annotations

from types import SimpleNamespace

from cryptography.fernet import Fernet

from invoicer import db
from invoicer.pipeline import Ctx


def make_ctx(tmp_path, attempt: int = 1) -> Ctx:
    return Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="books")


def harness(running, monkeypatch, tmp_path, cls, options) -> SimpleNamespace:
    """`running`: a Running simulator (reset here); `options(url, **extra)`: the tenant's entry."""
    sim = running.sim
    sim.reset()
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    for k, v in sim.env().items():
        monkeypatch.setenv(k, v)
    ctx = make_ctx(tmp_path)
    tokens = sim.tokens()
    if tokens:
        ctx.credentials.put(tokens)

    def provider(attempt: int = 1, **extra):
        return cls(options(running.url, **extra), make_ctx(tmp_path, attempt))

    return SimpleNamespace(sim=sim, url=running.url, ctx=ctx, provider=provider)


def calls(sim, method: str, suffix: str) -> list:
    return [r for r in sim.received if r.method == method and r.path.endswith(suffix)]


def pipeline_step(options: dict, provider: str, key: str, doc: dict, tmp_path, attempt: int) -> dict:
    """invoicer.pipeline._invoice as a worker runs it, for a tenant with this one platform as `books`."""
    from invoicer.config import Tenant
    from invoicer.pipeline import _invoice

    tenant = Tenant.model_validate({"name": "Acme", "sources": {}, "platforms": {"books": options}})
    row = SimpleNamespace(target="books", provider=provider, idempotency_key=key)
    return _invoice(row, doc, tenant, make_ctx(tmp_path, attempt))
