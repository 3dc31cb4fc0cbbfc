"""Helpers for the DocuSign provider tests: the canonical invoice with a rendered PDF, tenant options."""
from __future__ import annotations

from tests.providers.hubspot import make_doc as _make_doc

PDF = b"%PDF-1.7\n% an invoice\n%%EOF\n"


def make_doc(**kw) -> dict:
    """tests.providers.hubspot's canonical invoice (251.10 USD, customer huong@example.com) with its PDF."""
    doc = _make_doc(**kw)
    doc["pdf"] = {"filename": f"{doc['number']}.pdf", "data": PDF, "link": None, "sha256": "0" * 64}
    return doc


def options(sim, **extra) -> dict:
    return {**sim.platform(sim.url), **extra}


def signing_tenant(monkeypatch, tmp_path, sim) -> None:
    """acme-hvac invoicing on the local ledger and asking its customer to sign on DocuSign (no messages)."""
    from tests.providers.channels import use_tenants

    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {
        "name": "Acme Heating & Cooling", "platforms": {"books": {"provider": "local"},
                                                        "sign": sim.platform(sim.url)},
        "channels": {"customer": [], "finance_emails": []}}})
