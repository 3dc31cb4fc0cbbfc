"""One harness for the dispatch systems' webhook tests (Jobber, ServiceTitan): a fresh simulator, its
environment, the tenant's stored credentials, and the ingress app on a tenants file taking its webhooks."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

from sqlalchemy import select

from invoicer import db
from tests.conftest import ADMIN
from tests.providers.accounting import make_ctx


@contextmanager
def hook_api(running, monkeypatch, tmp_path, published, tenants: Callable[[], None], platform: str):
    """A TestClient on the ingress, with `.sim` and `.published`; `tenants()` writes the tenants file and
    `platform` names the entry whose credentials the simulator hands out."""
    from cryptography.fernet import Fernet
    from fastapi.testclient import TestClient

    from invoicer.ingress import create_app

    sim = running.sim
    sim.reset()
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    for k, v in sim.env().items():
        monkeypatch.setenv(k, v)
    tenants()
    ctx = make_ctx(tmp_path)
    ctx.platform = platform
    ctx.credentials.put(sim.tokens())
    with TestClient(create_app(), headers=ADMIN) as c:
        c.sim, c.published = sim, published
        yield c


def rows(table):
    with db.engine().connect() as conn:
        return conn.execute(select(table)).all()
