"""The pipeline on the ERP simulators: one job becomes one posted invoice on Dynamics 365 Business Central
and one on Odoo (JSON-2), each platform emailing it itself (`send: true`), the same total on both; the
same event again makes nothing new."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from invoicer import db

from .conftest import ADMIN, answers, free_port, make_event, wait_for


@pytest.fixture
def sandbox(monkeypatch, tmp_path):
    from invoicer import sandbox as sb

    box = sb.start(["dynamics365", "odoo"])
    for k, v in box.env.items():
        monkeypatch.setenv(k, v)
    tenant = box.tenant("ERP Co", "dynamics365", "odoo", channels={"customer": [], "finance_emails": []})
    tenant["platforms"]["dynamics365"]["send"] = True
    tenant["platforms"]["odoo"].update(send=True, api="json2")
    tenants = {"erp-co": tenant}
    path = tmp_path / "tenants.yaml"
    path.write_text(box.tenants_yaml(tenants))
    box.config, box.tenants = str(path), tenants
    yield box
    box.stop()


def test_business_central_and_odoo_at_once(procs, sandbox):
    env = {**sandbox.env, "INVOICER_CONFIG": sandbox.config}
    sandbox.seed(db.engine(), sandbox.tenants)  # nothing to store: both take keys from the environment
    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    procs.worker(env=env)
    wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
    base = f"http://127.0.0.1:{port}"

    event = make_event(tenant="erp-co")
    for _ in range(2):  # the second delivery of the same event is a duplicate at the ingress
        r = requests.post(f"{base}/v1/events", json=event, timeout=10)
        assert r.status_code in (200, 202), r.text

    def done():
        s = requests.get(f"{base}/v1/jobs/erp-co/J-1", headers=ADMIN, timeout=10).json()
        return s if s.get("state") in ("done", "failed") else None

    status = wait_for(done, 60, what="the job on both platforms")
    assert status["state"] == "done", json.dumps(status, indent=1)
    [invoice] = status["invoices"]
    assert Decimal(invoice["total"]) == Decimal("251.10")

    bc, odoo = sandbox["dynamics365"].sim, sandbox["odoo"].sim
    [bc_invoice] = bc.invoices.values()
    [move] = odoo.moves.values()
    assert bc_invoice["status"] == "Open" and bc_invoice["totalAmountIncludingTax"] == Decimal("251.10")
    assert move["state"] == "posted" and move["amount_total"] == Decimal("251.10")
    assert [m["to"] for m in bc.sent] == [m["to"] for m in odoo.mails] == ["huong@example.com"]
    platforms = {p["platform"]: p for p in invoice["platforms"]}
    assert platforms["dynamics365"]["external_id"] == bc_invoice["id"]
    assert platforms["odoo"]["external_id"] == str(move["id"])
