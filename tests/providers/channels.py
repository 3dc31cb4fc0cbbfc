"""Run the pipeline in this process for one job on a tenants file of the test's own: ingest, invoice,
PDF, then the message deliveries, each run as a worker would (retries waited for, at most 1 s here)."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager

import pytest
import yaml
from sqlalchemy import select

from invoicer import config, db, pipeline
from invoicer.ingress import persist
from invoicer.models import Event
from invoicer.providers.simulate import Running

from ..conftest import make_event


@pytest.fixture(autouse=True)
def own_tenants_forgotten():
    """A test that used its own tenants file leaves no cached copy of it to the tests after it."""
    yield
    config.reset()


def use_tenants(monkeypatch, tmp_path, tenants: dict) -> None:
    base = {"platforms": {"books": {"provider": "local"}}, "sources": {"*": {"unsigned": True}}}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": {k: {**base, **v} for k, v in tenants.items()}}, allow_unicode=True))
    monkeypatch.setenv("INVOICER_CONFIG", str(path))
    config.reset()


def one_channel(monkeypatch, tmp_path, kind: str, channel: dict, **channels) -> None:
    """Tenant acme-hvac telling its customer over one channel (`kind`: email or sms) set to `channel`."""
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "channels": {
        "customer": [kind], kind: channel, **channels}}})


@contextmanager
def serve(simulator, monkeypatch):
    """An HTTP simulator on loopback, its url on it, the environment its channel entry names set."""
    with Running(simulator) as running:
        simulator.url = running.url
        for k, v in simulator.env().items():
            monkeypatch.setenv(k, v)
        yield simulator


def run_job(tenant: str = "acme-hvac", max_steps: int = 40, **customer) -> int:
    """Ingest one job and run every step to its end; the invoice id."""
    event = make_event(tenant=tenant)
    event["customer"].update(customer)
    pk, _ = persist(tenant, "mobile-app", Event.model_validate(event), json.dumps(event))
    queue = [i for _, i in pipeline.process_event(pk)]
    for _ in range(max_steps):
        if not queue:
            break
        delivery = queue.pop(0)
        outcome = pipeline.run_delivery(delivery)
        queue += [i for _, i in outcome.enqueue] + [i for _, i, _ in outcome.later]
        if outcome.retry_in is not None:
            time.sleep(min(outcome.retry_in, 1.2))
            queue.append(delivery)
    with db.engine().connect() as conn:
        return conn.execute(select(db.invoices.c.id).order_by(db.invoices.c.id.desc())).scalar()


def messages(invoice_id: int, kind: str | None = None) -> list:
    d = db.deliveries.c
    q = select(db.deliveries).where(d.invoice_id == invoice_id, d.kind.in_(("email", "sms", "slack")))
    if kind:
        q = q.where(d.kind == kind)
    with db.engine().connect() as conn:
        return conn.execute(q.order_by(d.id)).all()
