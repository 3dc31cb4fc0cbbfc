"""The whole path on real processes: ingress -> Redis -> Celery workers -> PostgreSQL, PDF and outbox."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

from sqlalchemy import select

from invoicer import db, documents, money
from invoicer.models import Event

from .conftest import VAR, make_event, post, shared_events, wait_for


def job_done(client, tenant, job_id, state="done"):
    r = client.get(f"/v1/jobs/{tenant}/{job_id}")
    return r.json() if r.status_code == 200 and r.json()["state"] == state else None


def ledger(tenant=None):
    q = select(db.local_ledger)
    if tenant:
        q = q.where(db.local_ledger.c.tenant == tenant)
    with db.engine().connect() as conn:
        return conn.execute(q).all()


def test_every_sample_event_is_invoiced_rendered_and_notified(client, worker):
    events = shared_events()
    for e in events:
        assert post(client, e).status_code == 202, e["id"]
    triggering = {(e["tenant"], e["job"]["id"]) for e in events if e["type"] != "job.updated"}
    for tenant, job_id in sorted(triggering):
        status = wait_for(lambda: job_done(client, tenant, job_id), 120, what=f"{tenant}/{job_id}")
        [invoice] = status["invoices"]
        assert invoice["pdf"]["status"] == "done" and invoice["pdf"]["url"].startswith("http")
        assert {p["status"] for p in invoice["platforms"]} == {"done"}
        assert all(n["status"] in ("done", "skipped") for n in invoice["notifications"])
        assert invoice["notifications"], "every tenant here tells somebody"
    by_job = {(e["tenant"], e["job"]["id"]): Event.model_validate(e) for e in events}
    rows = ledger()
    platforms = {"acme-hvac": 2, "polar-air": 1, "northwind-heating": 1}
    assert len(rows) == sum(platforms[t] for t, _ in triggering)
    for row in rows:  # every platform's invoice carries the money rules' total, to the minor unit
        _, job_id = row.reference.split("/", 1)
        _, _, totals = money.price(by_job[(row.tenant, job_id)].job)
        assert row.total == totals.total and row.currency == by_job[(row.tenant, job_id)].job.currency
    pdfs = list((VAR / "invoices").rglob("*.pdf"))
    assert len(pdfs) == len(triggering)
    assert all(p.read_bytes().startswith(b"%PDF") for p in pdfs)


def test_status_links_every_step_and_the_audit_trail(client, worker):
    post(client, make_event())
    status = wait_for(lambda: job_done(client, "acme-hvac", "J-1"), 60, what="job")
    [invoice] = status["invoices"]
    assert invoice["total"] == "251.10"  # 275.00 - 27.50 + 8% x (taxable 50.00 x 247.50 / 275.00 = 45.00)
    assert sorted(p["platform"] for p in invoice["platforms"]) == ["books", "payments"]
    assert all(p["external_id"] and p["attempts"] == 1 for p in invoice["platforms"])
    assert {(n["channel"], n["to"]) for n in invoice["notifications"]} == {
        ("email", "customer"), ("sms", "customer"), ("email", "finance")}
    assert "huong@" not in json.dumps(status), "contacts are masked in the status"
    actions = [a["action"] for a in status["audit"]]
    assert actions[0] == "job_created" and actions[-1] == "job_done"
    assert actions.count("invoice_done") == 2 and "pdf_done" in actions and actions.count("email_done") == 2
    link = invoice["pdf"]["url"].removeprefix("http://127.0.0.1:8000")
    iid = int(link.removeprefix("/v1/invoices/").split(".pdf?")[0])
    assert link.startswith(f"/v1/invoices/{iid}.pdf?expires=") and "&signature=" in link
    pdf = client.get(link)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    [done] = [a for a in status["audit"] if a["action"] == "pdf_done"]
    assert done["detail"]["sha256"] == hashlib.sha256(pdf.content).hexdigest() == invoice["pdf"]["sha256"]
    refused = [link.replace("signature=", "signature=x"), link.replace("expires=", "expires=1"),
               link.replace(f"/{iid}.pdf", f"/{iid + 1}.pdf"),
               documents.sign_link("", "test-link-key", iid, ttl=-1), f"/v1/invoices/{iid}.pdf",
               link.replace("expires=", "expires=x")]
    for bad in refused:  # tampered, expired or malformed: the same 403 that says nothing more
        r = client.get(bad)
        assert r.status_code == 403 and r.json() == {"error": "forbidden",
                                                     "detail": "the link is invalid or has expired"}, bad
    emails = sorted((VAR / "outbox" / "email" / "acme-hvac").glob("*.eml"))
    assert len(emails) == 2 and b"application/pdf" in emails[0].read_bytes()
    sms = (VAR / "outbox" / "sms.jsonl").read_text().splitlines()
    assert len(sms) == 1 and "ACME-001001" in sms[0]


def test_duplicates_and_both_triggers_make_one_invoice_per_platform(client, worker):
    from concurrent.futures import ThreadPoolExecutor

    post(client, make_event())
    post(client, make_event())
    with ThreadPoolExecutor(20) as pool:  # and the same event 20 times at once
        codes = list(pool.map(lambda i: post(client, make_event()).status_code, range(20)))
    assert codes == [200] * 20
    post(client, make_event("evt-2", type="job.signed"))  # a signature after completion: no second invoice
    status = wait_for(lambda: job_done(client, "acme-hvac", "J-1"), 60, what="job")
    assert len(status["invoices"]) == 1
    assert len(ledger()) == 2
    assert "trigger_after_invoicing" in [a["action"] for a in status["audit"]]


def test_an_older_report_arriving_late_changes_nothing(client, worker):
    signed = make_event("evt-s", type="job.signed")
    signed["occurred_at"] = "2026-11-02T13:10:00Z"
    signed["job"]["materials"][0]["quantity"] = "2"
    post(client, signed)
    wait_for(lambda: job_done(client, "acme-hvac", "J-1"), 60, what="job")
    post(client, make_event("evt-c"))  # the completion report, older, delivered after the signature
    status = wait_for(lambda: (s := job_done(client, "acme-hvac", "J-1")) and
                      "trigger_after_invoicing" in [a["action"] for a in s["audit"]] and s, 30, what="late event")
    assert len(status["invoices"]) == 1 and len(ledger()) == 2
    assert status["invoices"][0]["subtotal"] == "325.00"  # priced from the signed report: 2 capacitors


def test_tenant_that_requires_a_signature_waits_for_it(client, worker):
    post(client, make_event(tenant="signed-co"))
    wait_for(lambda: job_done(client, "signed-co", "J-1", "awaiting_signature"), 30, what="awaiting")
    assert ledger("signed-co") == []
    post(client, make_event("evt-2", tenant="signed-co", type="job.signed"))
    wait_for(lambda: job_done(client, "signed-co", "J-1"), 60, what="job")
    assert len(ledger("signed-co")) == 1


def test_update_before_invoicing_changes_the_draft_after_it_is_flagged(client, worker):
    post(client, make_event(tenant="signed-co"))
    updated = make_event("evt-u", tenant="signed-co", type="job.updated")
    updated["occurred_at"] = "2026-11-02T14:00:00Z"
    updated["job"]["labor"][0]["hours"] = "3"
    post(client, updated)
    # both applied (two messages: a busy worker may take them in either order) before the signature comes
    wait_for(lambda: (s := job_done(client, "signed-co", "J-1", "awaiting_signature"))
             and "draft_updated" in [a["action"] for a in s["audit"]], 30, what="awaiting, with the update")
    signed = make_event("evt-s", tenant="signed-co", type="job.signed")
    signed["occurred_at"] = "2026-11-02T13:30:00Z"  # signed before the update was made
    post(client, signed)
    status = wait_for(lambda: job_done(client, "signed-co", "J-1"), 60, what="job")
    assert status["invoices"][0]["subtotal"] == "375.00"  # priced from the update: 3 h
    late = make_event("evt-u2", tenant="signed-co", type="job.updated")
    late["occurred_at"] = "2026-11-02T15:00:00Z"
    post(client, late)
    status = wait_for(lambda: (s := job_done(client, "signed-co", "J-1")) and s["needs_review"] and s, 30,
                      what="review flag")
    assert len(status["invoices"]) == 1 and len(ledger("signed-co")) == 1
    assert "updated_after_invoicing" in [a["action"] for a in status["audit"]]


def test_retryable_failures_are_retried_and_recorded(client, worker):
    post(client, make_event(tenant="flaky-co"))
    status = wait_for(lambda: job_done(client, "flaky-co", "J-1"), 60, what="job")
    [platform] = status["invoices"][0]["platforms"]
    assert platform["attempts"] == 3 and platform["status"] == "done"
    assert len(ledger("flaky-co")) == 1
    assert [a["action"] for a in status["audit"]].count("retry_scheduled") == 2
    with db.engine().connect() as conn:
        outcomes = conn.execute(select(db.attempts.c.outcome).order_by(db.attempts.c.id)
                                .where(db.attempts.c.delivery_id == platform["id"])).scalars().all()
    assert outcomes == ["retry", "retry", "ok"]


def test_permanent_failure_is_dead_lettered_at_once_and_replayable(client, worker):
    from invoicer import dlq
    from invoicer.cli import main

    post(client, make_event(tenant="broken-co"))
    status = wait_for(lambda: job_done(client, "broken-co", "J-1", "failed"), 60, what="failed job")
    erp = next(p for p in status["invoices"][0]["platforms"] if p["platform"] == "erp")
    assert erp["status"] == "dead" and erp["attempts"] == 1
    assert "does not exist" in erp["last_error"]
    assert status["invoices"][0]["pdf"] is None, "nothing is sent before every platform has the invoice"
    [dead] = dlq.dead_letters()
    assert dead["id"] == erp["id"] and dead["tenant"] == "broken-co"
    assert main(["dlq", "retry", str(erp["id"])]) == 0
    wait_for(lambda: job_done(client, "broken-co", "J-1", "failed"), 30, what="dead again")
    status = client.get("/v1/jobs/broken-co/J-1").json()
    actions = [a["action"] for a in status["audit"]]
    assert actions.count("dead_lettered") == 2 and "dlq_retry" in actions
    # the job fails as soon as the ERP is dead; the healthy platform's call may still be under way
    wait_for(lambda: next(p for p in client.get("/v1/jobs/broken-co/J-1").json()["invoices"][0]["platforms"]
                          if p["platform"] == "books")["status"] == "done", 30, what="books done")
    assert len(ledger("broken-co")) == 1  # the healthy platform was not asked twice
    assert main(["dlq", "retry", "999999"]) == 1
    shown = dlq.show(erp["id"])
    assert [a["outcome"] for a in shown["attempts_made"]] == ["dead", "dead"]

    # the operator gives up on that platform: the invoice moves on without it, once
    r = client.post(f"/v1/admin/dlq/{erp['id']}/discard", json={"reason": "the ERP was retired"})
    assert r.status_code == 200, r.text
    status = wait_for(lambda: job_done(client, "broken-co", "J-1"), 60, what="the job done without the ERP")
    assert status["invoices"][0]["pdf"]["status"] == "done"
    again = client.post(f"/v1/admin/dlq/{erp['id']}/discard", json={"reason": "again"})
    assert again.status_code == 409 and client.post(f"/v1/admin/dlq/{erp['id']}/retry").status_code == 409
    actions = [a["action"] for a in client.get("/v1/jobs/broken-co/J-1").json()["audit"]]
    assert actions.count("dlq_discarded") == 1 and dlq.dead_letters() == []


def test_a_customer_without_contacts_is_skipped_with_a_reason(client, worker):
    event = make_event()
    event["customer"].update(email=None, phone=None)
    post(client, event)
    status = wait_for(lambda: job_done(client, "acme-hvac", "J-1"), 60, what="job")
    skipped = {n["channel"]: n["reason"] for n in status["invoices"][0]["notifications"] if n["status"] == "skipped"}
    assert skipped == {"email": "customer has no email address", "sms": "customer has no phone number"}


def test_zero_and_three_decimal_currencies(client, worker):
    post(client, make_event(job_id="J-JPY", currency="JPY", labor=[
        {"description": "Repair", "hours": "1.5", "rate": "8333", "taxable": True}],
        materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"}))
    post(client, make_event("evt-2", job_id="J-KWD", currency="KWD", labor=[
        {"description": "Repair", "hours": "1.25", "rate": "12.125", "taxable": True}],
        materials=[], fees=[], discounts=[], tax={"rate": "0.05", "jurisdiction": "KW"}))
    jpy = wait_for(lambda: job_done(client, "acme-hvac", "J-JPY"), 60, what="JPY")["invoices"][0]
    kwd = wait_for(lambda: job_done(client, "acme-hvac", "J-KWD"), 60, what="KWD")["invoices"][0]
    assert (jpy["subtotal"], jpy["tax"], jpy["total"]) == ("12500", "1250", "13750")  # 12499.5 rounds up
    assert (kwd["subtotal"], kwd["tax"], kwd["total"]) == ("15.156", "0.758", "15.914")
    assert {r.total for r in ledger() if r.currency == "KWD"} == {Decimal("15.914")}


def test_the_audit_log_is_append_only(client):
    import pytest
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    post(client, make_event())
    with db.engine().begin() as conn:
        conn.execute(db.audit_log.insert().values(tenant="acme-hvac", action="test"))
    for stmt in (update(db.audit_log).values(action="forged"), delete(db.audit_log)):
        with pytest.raises(DBAPIError, match="append-only"):
            with db.engine().begin() as conn:
                conn.execute(stmt)
