"""Issue 12's end-to-end test, on real processes (ingress, Celery worker, beat), real PostgreSQL and Redis,
and the Jobber and QuickBooks simulators: Jobber's signed "visit complete" webhook arrives three times; the
job is fetched from Jobber once, the invoice made in Jobber and in QuickBooks, the PDF rendered and the
customer emailed -- each exactly once."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from invoicer import db

from .conftest import ADMIN, VAR, answers, free_port, wait_for


@pytest.fixture
def sandbox(monkeypatch, tmp_path):
    from invoicer import sandbox as sb

    box = sb.start(["jobber", "quickbooks"])
    for k, v in box.env.items():
        monkeypatch.setenv(k, v)
    tenant = box.tenant("Field Co", "jobber", "quickbooks", channels={"customer": ["email"], "finance_emails": []},
                        sources={"jobber": {"secret_env": "INVOICER_JOBBER_CLIENT_SECRET"}})
    tenants = {"field-co": tenant}
    path = tmp_path / "tenants.yaml"
    path.write_text(box.tenants_yaml(tenants))
    box.config, box.tenants = str(path), tenants
    yield box
    box.stop()


def count(table, *where) -> int:
    with db.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def test_a_jobber_visit_complete_delivered_three_times_invoices_once_everywhere(procs, sandbox):
    env = {**sandbox.env, "INVOICER_CONFIG": sandbox.config}
    sandbox.seed(db.engine(), sandbox.tenants)
    jobber = sandbox.jobber.sim
    ids = jobber.add_job()
    jobber.complete_visit(ids["visits"][0])
    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    procs.worker(env=env)
    wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
    base = f"http://127.0.0.1:{port}"

    body, headers = jobber.webhook("VISIT_COMPLETE", ids["visits"][0])
    codes = [requests.post(f"{base}/v1/hooks/jobber/field-co", data=body, headers=headers, timeout=10).status_code
             for _ in range(3)]  # at-least-once: Jobber sends it again when an answer seems lost
    assert codes == [202, 200, 200]

    def done():
        s = requests.get(f"{base}/v1/jobs/field-co/{ids['job']}", headers=ADMIN, timeout=10)
        return s.json() if s.status_code == 200 and s.json().get("state") in ("done", "failed") else None

    status = wait_for(done, 90, what="the Jobber job invoiced everywhere")
    assert status["state"] == "done", json.dumps(status, indent=1)
    [invoice] = status["invoices"]
    total = Decimal(invoice["total"])
    assert total == Decimal("184.14")  # 1.5 h x 90.00 + 45.50 taxed at 8 %

    [made] = jobber.account.invoices.values()
    assert made["total"] == total and made["_jobs"] == [ids["job"]] and made["invoiceStatus"] == "awaiting_payment"
    [qbo] = sandbox.quickbooks.sim.invoices.values()
    assert Decimal(str(qbo["TotalAmt"])) == total
    platforms = {p["platform"]: p for p in invoice["platforms"]}
    assert platforms["jobber"]["external_id"] == made["id"] and platforms["quickbooks"]["external_id"] == qbo["Id"]

    fetches = [r for r in jobber.received if r.path == "/api/graphql" and "visit(" in r.json()["query"]]
    assert len(fetches) == 1
    assert count(db.hook_deliveries) == 1 and count(db.events) == 1
    assert count(db.deliveries, db.deliveries.c.kind == "pdf", db.deliveries.c.status == "done") == 1
    [email] = (VAR / "outbox" / "email" / "field-co").glob("*.eml")
    assert "pat@example.com" in email.read_text(errors="replace")
    with db.engine().connect() as conn:
        mapped = conn.execute(select(db.audit_log).where(db.audit_log.c.action == "hook_mapped")).one()
    assert mapped.detail["topic"] == "VISIT_COMPLETE" and mapped.detail["job_id"] == ids["job"]
