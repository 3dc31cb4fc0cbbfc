"""Helpers for the Jobber tests: the tenant's entry, a tenants file taking Jobber's webhooks, a canonical
invoice made from a job that came from Jobber."""
from __future__ import annotations

import yaml

from invoicer import config


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "jobber", "currency": "USD", "tax_rate": "0.08", "tax_jurisdiction": "FL"}
    if url:
        out["base_url"] = url
    out.update(extra)
    return out


def use_tenants(monkeypatch, tmp_path, url: str, **platforms) -> None:
    """Tenant acme-hvac on Jobber (`jobs`) and any other platforms, taking Jobber's webhooks signed with the
    app's client secret."""
    tenant = {"name": "Acme Heating & Cooling", "platforms": {"jobs": options(url), **platforms},
              "channels": {"customer": ["email"]},
              "sources": {"jobber": {"secret_env": "INVOICER_JOBBER_CLIENT_SECRET"}}}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": {"acme-hvac": tenant}}, allow_unicode=True))
    monkeypatch.setenv("INVOICER_CONFIG", str(path))
    config.reset()


def doc_from_job(sim, ids: dict, number: str = "ACME-1001") -> dict:
    """The canonical invoice invoicer makes for a Jobber job (through the same mapping as the webhook)."""
    from datetime import datetime, timezone

    from invoicer.models import Event
    from invoicer.pipeline import document
    from invoicer.providers.jobber import transform as t
    from invoicer.providers.jobber.simulator import _Root

    with sim.state:
        root = _Root(sim, sim.account)
        job = root.job(None, ids["job"])
        visit = root.visit(None, ids["visits"][0])
    parts = t.event_parts(job, visit, options())
    parts["job"]["completed_at"] = parts["job"]["completed_at"] or "2026-11-20T15:00:00Z"
    event = Event.model_validate({"type": "job.completed", "id": "e1", "source": "jobber", "tenant": "acme-hvac",
                                  "occurred_at": "2026-11-20T15:00:00Z", **parts})
    tenant = config.Tenant.model_validate({"name": "Acme", "platforms": {"jobs": options()}, "sources": {}})
    return document(event, "acme-hvac", tenant, number, datetime(2026, 11, 20, tzinfo=timezone.utc), 30)
