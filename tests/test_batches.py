"""Deliveries run in batches (pipeline.run_deliveries, one task message carrying many ids): each member
ends as it would have alone, with the same attempts and audit rows, and a worker killed mid-batch loses
nothing and doubles nothing."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from invoicer import db, pipeline
from invoicer.ingress import persist
from invoicer.models import Event

from .conftest import make_event, wait_for


def ingest(tenant: str, job_id: str) -> list[tuple[str, int]]:
    event = make_event(event_id=f"evt-{tenant}-{job_id}", tenant=tenant, job_id=job_id)
    pk, _ = persist(tenant, "mobile-app", Event.model_validate(event), json.dumps(event))
    return pipeline.process_event(pk)


def setup(prefix: str) -> dict[str, int]:
    """One delivery in each situation a batch must handle, by role."""
    d = db.deliveries.c
    roles = {"ok": ingest("acme-hvac", f"{prefix}-1")[0][1]}
    roles["done"] = ingest("acme-hvac", f"{prefix}-2")[0][1]
    assert pipeline.run_delivery(roles["done"]).enqueue == []  # its sibling platform is still pending
    roles["leased"] = ingest("acme-hvac", f"{prefix}-3")[0][1]
    with db.engine().begin() as conn:  # another copy is running it
        conn.execute(update(db.deliveries).where(d.id == roles["leased"]).values(
            status="running", attempts=1, claimed_until=db.utcnow() + timedelta(seconds=30)))
    books, erp = ingest("broken-co", f"{prefix}-4")
    roles["sibling_of_dead"], roles["dead"] = books[1], erp[1]
    roles["retry"] = ingest("flaky-co", f"{prefix}-5")[0][1]
    return roles


def outcome_of(roles: dict[str, int]) -> dict:
    """Per role: status, attempts, the attempt rows and the audit rows, without ids or times."""
    d, a, log = db.deliveries.c, db.attempts.c, db.audit_log.c
    out = {}
    with db.engine().connect() as conn:
        for role, delivery_id in roles.items():
            row = conn.execute(select(db.deliveries).where(d.id == delivery_id)).one()
            tries = conn.execute(select(a.number, a.outcome, a.error_type).where(a.delivery_id == delivery_id)
                                 .order_by(a.id)).all()
            audits = conn.execute(select(log.action, log.detail).where(log.delivery_id == delivery_id)
                                  .order_by(log.id)).all()
            out[role] = (row.status, row.attempts, [tuple(t) for t in tries],
                         [(act, {k: v for k, v in (detail or {}).items() if k not in ("external_id", "retry_in_s")})
                          for act, detail in audits])
    return out


def test_a_mixed_batch_ends_each_member_as_one_by_one_would(clean):
    alone = setup("A")
    one_by_one = {role: pipeline.run_delivery(i) for role, i in alone.items()}
    together = setup("B")
    batch = pipeline.run_deliveries(list(together.values()))

    assert outcome_of(together) == outcome_of(alone)
    got = outcome_of(together)
    assert got["ok"][:2] == ("done", 1) and got["sibling_of_dead"][:2] == ("done", 1)
    assert got["done"][:3] == ("done", 1, [(1, "ok", None)])  # not run again
    assert got["leased"] == ("running", 1, [], [])  # not touched: the other copy holds it
    assert got["dead"][:3] == ("dead", 1, [(1, "dead", "Rejected")])
    assert got["dead"][3][-1][0] == "dead_lettered"
    assert got["retry"][:3] == ("retry", 1, [(1, "retry", "Unavailable")])
    assert got["retry"][3][-1][0] == "retry_scheduled"

    # what comes next: the leased one looked at again when its lease ends, the retry after its backoff
    later = {i: s for _, i, s in batch.later}
    assert set(later) == {together["leased"], together["retry"]}
    assert 25 < later[together["leased"]] <= 31
    assert one_by_one["leased"].retry_in is not None and one_by_one["retry"].retry_in is not None
    assert one_by_one["dead"].retry_in is None and one_by_one["ok"].retry_in is None
    # acme's invoices wait for their second platform; nothing moves on until then
    assert batch.enqueue == []
    with db.engine().connect() as conn:
        failed = conn.execute(select(db.jobs.c.job_id).where(db.jobs.c.state == "failed")).scalars().all()
    assert sorted(failed) == ["A-4", "B-4"]


def test_a_batch_moves_every_invoice_on_once_and_its_next_stage_comes_batched(clean):
    firsts = [ingest("polar-air", f"J-{n}") for n in range(6)]  # one platform each
    out = pipeline.run_deliveries([i for f in firsts for _, i in f])
    assert sorted(k for k, _ in out.enqueue) == ["pdf"] * 6
    out = pipeline.run_deliveries([i for _, i in out.enqueue])
    assert sorted(k for k, _ in out.enqueue) == ["email"] * 6
    out = pipeline.run_deliveries([i for _, i in out.enqueue])
    assert out.enqueue == [] and out.later == []
    with db.engine().connect() as conn:
        jobs = conn.execute(select(db.jobs.c.state, func.count()).group_by(db.jobs.c.state)).all()
        done = conn.execute(select(func.count()).select_from(db.audit_log)
                            .where(db.audit_log.c.action == "job_done")).scalar_one()
        pdfs = conn.execute(select(func.count()).select_from(db.attempts).join(
            db.deliveries, db.deliveries.c.id == db.attempts.c.delivery_id).where(db.deliveries.c.kind == "pdf")
        ).scalar_one()
    assert jobs == [("done", 6)] and done == 6 and pdfs == 6


def test_a_message_queued_before_batches_with_a_bare_id_still_runs(clean):
    from invoicer.tasks.pipeline import create_invoice

    [(_, delivery_id)] = ingest("polar-air", "J-1")
    create_invoice.run(delivery_id)  # the task body, as a worker runs an old message
    with db.engine().connect() as conn:
        status = conn.execute(select(db.deliveries.c.status).where(db.deliveries.c.id == delivery_id)).scalar()
    assert status == "done"


def _count(table, *where) -> int:
    with db.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_a_worker_sigkilled_mid_batch_loses_nothing_and_doubles_nothing(procs):
    """Five invoices in one task message; the platform has taken all five when the worker dies. No beat:
    the message comes back through the visibility timeout, every member waits out its lease and then
    finds its invoice on the platform by its key instead of making a second one."""
    from invoicer.tasks import enqueue

    follow = [f for n in range(5) for f in ingest("slow-co", f"J-{n}")]
    enqueue(follow)  # one message, five ids
    first = procs.worker(concurrency=2)
    d = db.deliveries.c
    wait_for(lambda: _count(db.local_ledger) == 5 and _count(db.deliveries, d.status == "running") == 5, 60,
             what="all five platform calls under way in one batch")
    procs.kill(first)
    procs.worker(concurrency=2)
    wait_for(lambda: _count(db.jobs, db.jobs.c.state == "done") == 5, 120, what="every job done on the second worker")
    assert _count(db.local_ledger) == 5
    with db.engine().connect() as conn:
        rows = conn.execute(select(db.deliveries).where(d.kind == "invoice")).all()
    assert [(r.status, r.attempts, r.detail["found_existing"]) for r in rows] == [("done", 2, True)] * 5
    assert _count(db.deliveries, d.kind == "email", d.status == "done") == 5
    assert _count(db.attempts) == 5 + 5 + 5  # the invoices' second tries, the PDFs, the emails
