"""Queues, pools and shutdown: the I/O-bound queues (invoices, notify) on one threads-pool worker with
many calls in flight, the CPU-bound ones (ingest, render) on prefork; every task named
invoicer.<area>.<verb> on the queue of its area with ids as its only arguments; a worker told to stop
(SIGTERM, as `docker stop` and Kubernetes do) in the middle of a platform call finishes it first."""
from __future__ import annotations

import os
import re
import signal
import typing

import pytest
import requests
from sqlalchemy import func, select

from invoicer import db

from .conftest import answers, free_port, make_event, post, wait_for


def test_every_task_is_named_for_its_queue_and_takes_ids_only():
    import invoicer.tasks.pipeline  # noqa: F401  (registers the tasks)
    import invoicer.tasks.sweeper  # noqa: F401
    from invoicer.tasks import QUEUES, app

    ours = {name: t for name, t in app.tasks.items() if not name.startswith("celery.")}
    assert ours and all(name.startswith("invoicer.") for name in ours)
    for name, task in ours.items():
        m = re.fullmatch(r"invoicer\.([a-z]+)\.([a-z_]+)", name)
        assert m and m.group(1) in QUEUES and task.queue == m.group(1), name
        hints = typing.get_type_hints(task.run)
        params = [p for p in hints if p != "return"]
        # an id (a row's primary key), or a list of them, and nothing else: customer data is reloaded from
        # the database (a list may also arrive as one bare id, from a message queued before batches)
        assert all((hints[p] is int and re.fullmatch(r"\w+_(id|pk)", p)) or
                   (hints[p] in (list[int], list[int] | int) and re.fullmatch(r"\w+_(ids|pks)", p))
                   for p in params), (name, hints)


def test_a_threads_pool_sizes_its_http_and_database_pools_to_its_threads():
    from invoicer import workers
    from invoicer.providers import http

    before = http.POOL_MAXSIZE, db.POOL_SIZE
    try:
        workers.size_for("prefork", 96)
        assert (http.POOL_MAXSIZE, db.POOL_SIZE) == before
        from celery.concurrency.thread import TaskPool

        workers.size_for(TaskPool, 96)  # Celery hands the pool over as its class
        assert http.POOL_MAXSIZE == 96 and db.POOL_SIZE == 96
        assert db.engine().pool.size() == 96
        adapter = http.session().get_adapter("https://quickbooks.api.intuit.com")
        assert adapter._pool_maxsize == 96
    finally:
        http.POOL_MAXSIZE, db.POOL_SIZE = before
        http._session = None
        db.engine_for.cache_clear()


def test_the_shared_session_keeps_no_cookies_between_tenants():
    """One session serves every tenant: a cookie a vendor sets for one must not ride on the next call."""
    from invoicer.providers import http
    from invoicer.providers.simulate import Reply, Running, Simulator

    class Cookies(Simulator):
        def reply(self, request):
            return Reply(200, {"cookie": request.headers.get("cookie")}, {"Set-Cookie": "tenant=acme; Path=/"})

        routes = [("GET", "/c", reply)]

    with Running(Cookies()) as running:
        first = http.call("GET", f"{running.url}/c", slug="test").json()
        second = http.call("GET", f"{running.url}/c", slug="test").json()
    assert first == second == {"cookie": None}


@pytest.fixture
def quickbooks(monkeypatch, tmp_path):
    from invoicer import sandbox as sb

    box = sb.start(["quickbooks"])
    tenants = {"threads-co": box.tenant("Threads Co", "quickbooks",
                                        channels={"customer": ["email", "sms"], "finance_emails": []})}
    path = tmp_path / "tenants.yaml"
    path.write_text(box.tenants_yaml(tenants))
    for k, v in box.env.items():
        monkeypatch.setenv(k, v)
    box.config, box.tenants = str(path), tenants
    yield box
    box.stop()


@pytest.mark.slow
def test_io_queues_on_threads_and_cpu_queues_on_prefork_invoice_each_job_once(procs, quickbooks):
    """24 jobs at once: a 32-thread worker takes every platform call and message, a prefork worker maps
    the jobs and renders the PDFs. The stored token has expired, so the threads all want a new one
    at the same moment: QuickBooks rotates refresh tokens, and exactly one renewal may happen."""
    from invoicer.credentials import Credentials

    env = {**quickbooks.env, "INVOICER_CONFIG": quickbooks.config}
    quickbooks.seed(db.engine(), quickbooks.tenants)
    sim = quickbooks.quickbooks.sim
    creds = Credentials(db.engine(), "threads-co", "quickbooks")
    creds.put({**creds.get(), "expires_at": 0})
    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    procs.start("worker", "--pool", "threads", "--concurrency", "32", "--queues", "invoices,notify",
                "--hostname", "io@%h", "--log-level", "warning", env=env)
    procs.start("worker", "--concurrency", "2", "--queues", "ingest,render,beat", "--hostname", "cpu@%h",
                "--log-level", "warning", env=env)
    wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
    jobs = 24
    for i in range(jobs):
        event = make_event(f"evt-{i}", tenant="threads-co", job_id=f"J-{i}")
        # a customer each: QuickBooks refuses two customers of one name (its error 6240)
        event["customer"].update(id=f"C-{i}", name=f"Customer {i}", email=f"c{i}@example.com")
        assert requests.post(f"http://127.0.0.1:{port}/v1/events", json=event, timeout=10).status_code == 202

    j = db.jobs.c
    with db.engine().connect() as conn:
        def finished():
            states = conn.execute(select(j.state, func.count()).group_by(j.state)).all()
            return dict(states) if sum(n for s, n in states if s in ("done", "failed")) == jobs else None

        states = wait_for(finished, 120, what="every job invoiced, rendered and notified")
        d = db.deliveries.c
        why = conn.execute(select(d.kind, d.status, d.attempts, d.last_error).where(d.status != "done")).all() + \
            conn.execute(select(db.events.c.error).where(db.events.c.status == "failed")).all()
        assert states == {"done": jobs}, why
        by_kind = dict(conn.execute(select(d.kind, func.count()).where(d.status == "done").group_by(d.kind)).all())
        numbers = conn.execute(select(db.invoices.c.number)).scalars().all()
    assert by_kind == {"invoice": jobs, "pdf": jobs, "email": jobs, "sms": jobs}
    assert len(sim.invoices) == jobs
    assert all(len(sim.by_number(n)) == 1 for n in numbers)  # each job's invoice exactly once at QuickBooks
    assert sim.token_refreshes == 1

    from invoicer.tasks import app

    stats = wait_for(lambda: app.control.inspect(destination=[f"io@{os.uname().nodename}"], timeout=2).stats(),
                     20, what="the threads worker's stats")
    pool = next(iter(stats.values()))["pool"]
    assert pool["max-concurrency"] == 32 and pool["threads"] > 1


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_sigterm_mid_call_finishes_the_call_before_the_worker_exits(client, procs, pool):
    """slow-co's platform answers 4 s after taking the invoice. SIGTERM to the worker's main process
    (what `docker stop` and Kubernetes send) while the call is under way: a warm shutdown waits for
    it, records it, and exits 0; another worker does the rest of the job. One invoice, one attempt."""
    first = procs.start("worker", "--pool", pool, "--concurrency", "4", "--log-level", "warning")
    assert post(client, make_event(tenant="slow-co")).status_code == 202
    d = db.deliveries.c

    def count(table, *where):
        with db.engine().connect() as conn:
            return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

    wait_for(lambda: count(db.local_ledger) == 1 and count(db.deliveries, d.status == "running"), 30,
             what="the platform call to be under way")
    os.kill(first.pid, signal.SIGTERM)
    assert first.wait(60) == 0
    with db.engine().connect() as conn:
        row = conn.execute(select(db.deliveries).where(d.kind == "invoice")).one()
    assert row.status == "done" and row.attempts == 1  # finished by the worker that was stopping

    procs.start("worker", "--concurrency", "2", "--log-level", "warning")
    wait_for(lambda: client.get("/v1/jobs/slow-co/J-1").json().get("state") == "done", 60, what="the rest of the job")
    assert count(db.local_ledger) == 1
    assert count(db.attempts) == count(db.deliveries)  # one attempt per step: nothing was run twice
