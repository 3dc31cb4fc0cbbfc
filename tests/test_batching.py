"""Group commit at the ingress and map-job for a batch (process_many), on real PostgreSQL and Redis.

A batch is made deterministic by holding a lock on the events table from another connection: the
first request's batch waits on it, the next requests gather behind it and go as one batch."""
from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy import func, select

from invoicer import db, pipeline

from .conftest import free_port, make_event, post, sign, wait_for
from .test_ingress import _serve, stored


def queued(redis_client, queue: str = "ingest") -> list[tuple[str, list]]:
    """The task messages waiting in a Redis queue: (task name, positional args), oldest first."""
    out = []
    for raw in reversed(redis_client.lrange(queue, 0, -1)):
        msg = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(msg["body"]))
        out.append((msg["headers"]["task"], args))
    return out


def _queued_deliveries(redis_client) -> int:
    """How many delivery ids wait on the invoices queue (a message carries a list of them, or one)."""
    return sum(len(a[0]) if isinstance(a[0], list) else 1 for _, a in queued(redis_client, "invoices"))


def queued_event_pks(redis_client) -> list[int]:
    pks = []
    for name, args in queued(redis_client):
        pks += args[0] if name == "invoicer.ingest.process_many" else [args[0]]
    return pks


def stored_pks() -> list[int]:
    with db.engine().connect() as conn:
        return sorted(conn.execute(select(db.events.c.id)).scalars())


class Held:
    """LOCK TABLE events from another connection: inserts wait until release()."""

    def __init__(self):
        self.conn = db.engine().connect()
        self.tx = self.conn.begin()
        self.conn.execute(sa.text("LOCK TABLE events IN EXCLUSIVE MODE"))

    def waiting(self) -> list[int]:
        """The backends waiting for this lock (the ingress's group commit); asked on a connection of its
        own, since pg_stat_activity holds still for the length of a transaction."""
        with db.engine().connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalars())

    def release(self) -> None:
        if not self.conn.closed:
            self.tx.rollback()
            self.conn.close()


@pytest.fixture
def held(client):
    """The lock on the events table, taken; released at the latest when the test ends (before the app stops)."""
    lock = Held()
    yield lock
    lock.release()


def send_all(client, events: list[dict]) -> tuple[list[threading.Thread], dict]:
    answers = {}

    def send(i, e):
        answers[i] = post(client, e)

    threads = [threading.Thread(target=send, args=(i, e)) for i, e in enumerate(events)]
    for t in threads:
        t.start()
    return threads, answers


def test_many_concurrent_posts_commit_and_publish_each_event_exactly_once(client, redis_client):
    events = [make_event(f"evt-{i}", job_id=f"J-{i % 40}") for i in range(120)]
    threads, answers = send_all(client, events + events[:30])  # 30 sent twice, at the same time
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200] * 30 + [202] * 120
    assert stored() == 120
    published = queued_event_pks(redis_client)
    assert sorted(published) == stored_pks()  # each stored event in exactly one message
    assert {name for name, _ in queued(redis_client)} == {"invoicer.ingest.process_many"}


def test_the_requests_waiting_behind_a_commit_go_as_one_batch_duplicates_included(client, redis_client, held):
    first, answers = send_all(client, [make_event("evt-first")])
    wait_for(held.waiting, 20, what="the first batch waiting on the lock")
    later = [make_event(f"evt-{i}") for i in range(8)] + [make_event("evt-3"), make_event("evt-first")]
    threads, later_answers = send_all(client, later)
    batcher = client.app.state.batcher
    wait_for(lambda: len(batcher.waiting) == len(later), 20, what="the next requests gathered")
    held.release()
    for t in first + threads:
        t.join()
    assert answers[0].status_code == 202
    codes = [later_answers[i].status_code for i in range(len(later))]
    # of the two copies of evt-3 in this batch, the one that arrived first is stored; evt-first was
    # stored by the first batch
    assert codes[:3] + codes[4:8] == [202] * 7 and sorted([codes[3], codes[8]]) == [200, 202] and codes[9] == 200
    new, copy = sorted((later_answers[3], later_answers[8]), key=lambda r: r.status_code, reverse=True)
    assert copy.json() == {**new.json(), "duplicate": True}
    assert stored() == 9
    messages = queued(redis_client)
    assert sorted(len(args[0]) for _, args in messages) == [1, 8]  # one message per batch, new events only
    assert sorted(queued_event_pks(redis_client)) == stored_pks()


def test_the_database_failing_mid_batch_answers_503_to_every_member_and_stores_nothing(client, redis_client, held):
    threads, answers = send_all(client, [make_event(f"evt-{i}") for i in range(6)])
    batcher = client.app.state.batcher

    def kill_waiting():  # the database goes away under every batch that is waiting on it
        for pid in held.waiting():
            held.conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        return len(answers) == 6

    wait_for(kill_waiting, 30, every=0.2, what="every request answered")
    for t in threads:
        t.join()
    assert batcher.draining is None
    held.release()
    for r in answers.values():
        assert r.status_code == 503 and r.headers["retry-after"] and r.json()["error"] == "unavailable"
    assert stored() == 0 and redis_client.llen("ingest") == 0
    assert post(client, make_event("evt-0")).status_code == 202  # the pool has recovered: nothing was half stored


def test_broker_down_stores_every_batch_and_the_sweep_publishes_each_event_once(procs, redis_client):
    base = _serve(procs, INVOICER_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    codes = []

    def send(i):
        body = json.dumps(make_event(f"evt-{i}", job_id=f"J-{i}"))
        codes.append(requests.post(f"{base}/v1/events", data=body, headers=sign(body, f"msg_{i}"), timeout=60).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [202] * 12 and stored() == 12 and redis_client.llen("ingest") == 0
    from invoicer.tasks import redrive

    later = db.utcnow() + timedelta(minutes=5)
    redrive(*pipeline.stalled(now=later))
    assert sorted(queued_event_pks(redis_client)) == stored_pks()
    redrive(*pipeline.stalled(now=later))  # the sweep backs off: no second copy at once
    assert sorted(queued_event_pks(redis_client)) == stored_pks()


# ---------------------------------------------------------------- process_many

def _scenario() -> list[dict]:
    """Events that exercise map-job: two of one job in one batch, an out-of-order report, an update after
    invoicing, the signed trigger, a second tenant, and a body the code cannot apply in the middle."""
    newer = make_event("e-2", type="job.updated", job_id="J-2", summary="newer")
    newer["occurred_at"] = "2026-11-02T14:00:00Z"
    older = make_event("e-3", job_id="J-2", summary="older")  # completed, but reported before the update
    return [
        make_event("e-1", job_id="J-1"),
        newer,
        older,
        make_event("e-4", type="job.updated", job_id="J-1", summary="after the invoice"),
        "BAD",
        make_event("e-5", tenant="signed-co", job_id="S-1"),
        make_event("e-6", tenant="signed-co", type="job.signed", job_id="S-1"),
        make_event("e-7", tenant="polar-air", job_id="P-1"),
        make_event("e-1", job_id="J-1", summary="same id from another source") | {"source": "portal"},
    ]


def _store(events) -> list[int]:
    from invoicer.ingress import persist
    from invoicer.models import Event

    pks = []
    for i, e in enumerate(events):
        if e == "BAD":  # stored, but its body is not an event any more (a bug elsewhere, a hand edit)
            with db.engine().begin() as conn:
                pks.append(conn.execute(db.events.insert().values(
                    tenant="acme-hvac", source="mobile-app", event_id=f"bad-{i}", type="job.completed",
                    job_id="J-1", body="{}", status="accepted", received_at=db.utcnow()).returning(db.events.c.id))
                    .scalar_one())
            continue
        pks.append(persist(e["tenant"], e["source"], Event.model_validate(e), json.dumps(e))[0])
    return pks


def _outcome() -> dict:
    """Everything map-job decides, without row ids."""
    with db.engine().connect() as conn:
        ev = {r.id: r.event_id for r in conn.execute(select(db.events.c.id, db.events.c.event_id))}
        jobs = {r.id: (r.tenant, r.job_id) for r in conn.execute(select(db.jobs))}
        numbers = {r.id: r.number for r in conn.execute(select(db.invoices))}
        return {
            "events": sorted((r.event_id, r.source, r.status, (r.error or "")[:40]) for r in conn.execute(select(db.events))),
            "jobs": sorted((r.tenant, r.job_id, r.state, r.needs_review, ev[r.event_pk]) for r in conn.execute(select(db.jobs))),
            "invoices": sorted((jobs[r.job_pk], r.number, str(r.total), ev[r.event_pk])
                               for r in conn.execute(select(db.invoices))),
            "deliveries": sorted((numbers[r.invoice_id], r.kind, r.target, r.status)
                                 for r in conn.execute(select(db.deliveries))),
            "audit": sorted((r.tenant, r.action, ev.get(r.event_pk), jobs.get(r.job_pk))
                            for r in conn.execute(select(db.audit_log))),
            "lines": conn.execute(select(func.count()).select_from(db.invoice_lines)).scalar_one(),
        }


def _empty() -> None:
    with db.engine().begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


def test_process_many_has_the_outcome_of_one_by_one_a_bad_event_included(clean, redis_client):
    from invoicer.tasks.pipeline import process_event, process_many

    for pk in _store(_scenario()):
        process_event.run(pk)
    one_by_one = _outcome()
    one_by_one_queued = _queued_deliveries(redis_client)
    _empty()
    redis_client.flushdb()

    pks = _store(_scenario())
    process_many.run(pks)
    assert _outcome() == one_by_one
    assert _queued_deliveries(redis_client) == one_by_one_queued  # the same deliveries started
    assert len(queued(redis_client, "invoices")) == 1  # ... in one message: enqueue batches them
    assert one_by_one["invoices"] and any(s == "failed" for _, _, s, _ in one_by_one["events"])
    process_many.run(pks)  # a redelivery changes nothing
    assert _outcome() == one_by_one


def test_two_workers_applying_events_of_one_new_job_at_once_make_one_job_and_one_invoice(clean):
    pks = _store([make_event(f"e-{i}", type="job.updated" if i % 2 else "job.completed", job_id="J-1")
                  for i in range(8)])
    done = []
    workers = [threading.Thread(target=lambda part=part: done.append(pipeline.process_events(part)))
               for part in (pks[0::2], pks[1::2])]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(done) == 2
    with db.engine().connect() as c:
        assert c.execute(select(func.count()).select_from(db.jobs)).scalar_one() == 1
        assert c.execute(select(func.count()).select_from(db.invoices)).scalar_one() == 1
        assert set(c.execute(select(db.events.c.status)).scalars()) == {"processed"}


def test_a_batch_cut_short_by_the_soft_time_limit_is_retried_whole_not_failed(clean, monkeypatch):
    from celery.exceptions import SoftTimeLimitExceeded

    from invoicer.tasks.pipeline import process_many

    pks = _store([make_event(f"e-{i}", job_id=f"J-{i}") for i in range(3)])
    real = pipeline._apply
    calls = []

    def slow_second(conn, ev):
        calls.append(ev.id)
        if len(calls) == 2:
            raise SoftTimeLimitExceeded()  # what billiard raises in the task when the soft limit passes
        return real(conn, ev)

    monkeypatch.setattr(pipeline, "_apply", slow_second)
    with pytest.raises(SoftTimeLimitExceeded):  # called directly, Celery's retry raises the cause
        process_many.run(pks)
    with db.engine().connect() as c:
        assert set(c.execute(select(db.events.c.status)).scalars()) == {"accepted"}
        assert c.execute(select(func.count()).select_from(db.jobs)).scalar_one() == 0
    process_many.run(pks)  # the retry
    with db.engine().connect() as c:
        assert set(c.execute(select(db.events.c.status)).scalars()) == {"processed"}
        assert c.execute(select(func.count()).select_from(db.invoices)).scalar_one() == 3
