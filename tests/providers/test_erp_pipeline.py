"""The pipeline on the NetSuite and Sage Intacct simulators (through `invoicer.sandbox`): one job makes one
invoice on each with our total, although the answer to each create is lost on the way back (the worker's
retry finds the invoice by our reference and creates nothing)."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests

from invoicer import db
from tests.conftest import ADMIN, answers, free_port, make_event, wait_for


@pytest.fixture
def box(monkeypatch, tmp_path):
    from invoicer import sandbox

    box = sandbox.start(["netsuite", "sage_intacct"])
    for k, v in box.env.items():
        monkeypatch.setenv(k, v)
    tenants = {"erp-co": box.tenant("ERP Co", "netsuite", "sage_intacct",
                                    channels={"customer": ["email"], "finance_emails": []})}
    path = tmp_path / "tenants.yaml"
    path.write_text(box.tenants_yaml(tenants))
    box.config, box.tenants = str(path), tenants
    yield box
    box.stop()


def test_one_job_one_invoice_on_netsuite_and_sage_intacct_despite_lost_answers(procs, box):
    env = {**box.env, "INVOICER_CONFIG": box.config}
    box.seed(db.engine(), box.tenants)
    ns, si = box["netsuite"].sim, box["sage_intacct"].sim
    ns.inject("", "drop")  # customer upsert answered; the invoice upsert's answer is lost
    si.inject("", "", "", "drop")  # session, customer lookup, customer create answered; create_invoice's lost
    status = _run(procs, env, make_event(tenant="erp-co"))
    assert status["state"] == "done", json.dumps(status, indent=1)
    [invoice] = status["invoices"]
    total = Decimal(invoice["total"])
    assert total == Decimal("251.10")
    [ns_invoice] = ns.invoices.values()
    [si_invoice] = si.invoices.values()
    assert ns_invoice["total"] == total and si_invoice["TOTALENTERED"] == total and si.creates == 1
    platforms = {p["platform"]: p for p in invoice["platforms"]}
    assert platforms["netsuite"]["external_id"] == ns_invoice["id"]
    assert platforms["sage_intacct"]["external_id"] == si_invoice["RECORDNO"]
    assert len(ns.faults) == len(si.faults) == 0  # the drops did happen


def _run(procs, env: dict, event: dict) -> dict:
    """Ingress and a worker on `env`; the event posted; the job's status once it has finished."""
    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    procs.worker(env=env)
    wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
    url = f"http://127.0.0.1:{port}"
    assert requests.post(f"{url}/v1/events", json=event, timeout=10).status_code == 202
    job = f"{url}/v1/jobs/{event['tenant']}/{event['job']['id']}"
    last: dict = {}

    def finished():
        last.clear()
        last.update(requests.get(job, headers=ADMIN, timeout=10).json())
        return dict(last) if last.get("state") in ("done", "failed") else None

    try:
        return wait_for(finished, 180, what="the job on its platforms")  # 2 cores shared by many: be patient
    except AssertionError:
        raise AssertionError(json.dumps(last, indent=1, default=str)) from None
