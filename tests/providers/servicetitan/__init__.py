"""Helpers for the ServiceTitan tests: the tenant's entry and a tenants file taking its webhooks."""
from __future__ import annotations

import yaml

from invoicer import config
from invoicer.providers.servicetitan.simulator import TENANT


def options(url: str | None = None, **extra) -> dict:
    out = {"provider": "servicetitan", "tenant_id": TENANT, "currency": "USD", "tax_rate": "0.08"}
    if url:
        out.update(base_url=url, token_url=f"{url}/connect/token")
    out.update(extra)
    return out


def use_tenants(monkeypatch, tmp_path, url: str, hmac_key: str) -> None:
    monkeypatch.setenv("INVOICER_TEST_ST_HMAC", hmac_key)
    tenant = {"name": "Acme Heating & Cooling", "platforms": {"books": options(url)},
              "channels": {"customer": ["email"]}, "sources": {"servicetitan": {"secret_env": "INVOICER_TEST_ST_HMAC"}}}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": {"acme-hvac": tenant}}, allow_unicode=True))
    monkeypatch.setenv("INVOICER_CONFIG", str(path))
    config.reset()
