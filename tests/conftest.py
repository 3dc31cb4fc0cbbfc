"""Test harness: a real PostgreSQL database and a real Redis, never mocks of either.

Each test session gets its own PostgreSQL database (dropped at the end) and its own Redis database
number; tests that need workers start real Celery worker processes.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PG_SERVER = os.environ.get("INVOICER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS_SERVER = os.environ.get("INVOICER_TEST_REDIS", "redis://127.0.0.1:6379")
DB_NAME = f"invoicer_test_{os.getpid()}"
# a database number of its own per run and per xdist worker (8-15), so two test runs on one machine, or two
# workers of one run, do not flush each other; INVOICER_TEST_REDIS_DB picks the first number by hand
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
if "INVOICER_TEST_REDIS_DB" in os.environ:
    REDIS_DB = int(os.environ["INVOICER_TEST_REDIS_DB"]) + _WORKER
else:
    REDIS_DB = 8 + ((int(_RUN[:8], 16) if _RUN else os.getpid()) + _WORKER) % 8
VAR = Path(tempfile.mkdtemp(prefix="invoicer-test-"))
SECRET = "whsec_" + base64.b64encode(b"test-secret-for-the-suite-32byte").decode()

TEST_ENV = {
    "INVOICER_DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
    "INVOICER_BROKER_URL": f"{REDIS_SERVER}/{REDIS_DB}",
    "INVOICER_CONFIG": str(ROOT / "tests" / "tenants.yaml"),
    "INVOICER_VAR_DIR": str(VAR),
    "INVOICER_SECRET_KEY": "test-link-key",
    "INVOICER_API_TOKEN": "test-admin-token",
    "INVOICER_METRICS_TOKEN": "test-metrics-token",
    "INVOICER_TEST_SECRET": SECRET,
    "INVOICER_VISIBILITY_TIMEOUT": "12",
    "INVOICER_TASK_TIME_LIMIT": "8",
    "INVOICER_RETRY_BASE": "0.2",
    "INVOICER_RETRY_CAP": "1",
    "INVOICER_MAX_ATTEMPTS": "4",
    "INVOICER_SWEEP_INTERVAL": "1",
    "INVOICER_SWEEP_GRACE": "5",
}
os.environ.update(TEST_ENV)
ADMIN = {"Authorization": "Bearer test-admin-token"}  # the status and admin endpoints need it


HEAVY_FIXTURES = {"procs", "worker"}  # tests that start invoicer processes


def pytest_collection_modifyitems(items):
    """Under xdist (setup.cfg: -n auto --dist loadgroup), the tests that start processes (invoicer
    processes, or marked slow: demos, browsers) share one worker and so run one at a time, as they
    would without xdist; the in-process tests spread over the other workers beside them."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("processes"))


def wait_for(predicate, timeout: float = 30, every: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def shared_events() -> list[dict]:
    path = SHARED / "events" / "jobs-300.jsonl"
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared data folder sits beside the repository)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def database():
    import sqlalchemy as sa

    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
    from invoicer import config
    from invoicer.migrate import upgrade

    config.reset()
    upgrade(TEST_ENV["INVOICER_DATABASE_URL"])
    yield TEST_ENV["INVOICER_DATABASE_URL"]
    from invoicer import db

    db.engine_for.cache_clear()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()
    shutil.rmtree(VAR, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_client():
    import redis

    client = redis.Redis.from_url(TEST_ENV["INVOICER_BROKER_URL"])
    client.ping()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def clean(database, redis_client):
    """Empty tables (ids keep growing, so a stale message can never hit a new row) and queues."""
    from invoicer import db

    with db.engine().begin() as conn:  # DELETE, not TRUNCATE: on tables this small it is ~20x faster
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # past audit_log's append-only trigger
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())
    redis_client.flushdb()
    for child in VAR.iterdir() if VAR.exists() else []:
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    yield


@pytest.fixture
def client(clean):
    from fastapi.testclient import TestClient

    from invoicer.ingress import create_app

    with TestClient(create_app(), headers=ADMIN) as c:
        yield c


@pytest.fixture
def published():
    """Every task message the ingress really publishes, observed through Celery's own signal."""
    from celery.signals import after_task_publish

    seen = []

    def record(sender=None, body=None, **_):
        seen.append((sender, body))

    after_task_publish.connect(record, weak=False)
    yield seen
    after_task_publish.disconnect(record)


class Processes:
    """Real invoicer processes (workers, beat, ingress) started for a test, stopped after it."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, *args, env: dict | None = None) -> subprocess.Popen:
        log = open(VAR.parent / f"{VAR.name}-{args[0]}-{len(self.procs)}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "invoicer.cli", *args], env={**os.environ, **(env or {})},
                                stdout=log, stderr=log, start_new_session=True, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def worker(self, *extra, env=None, concurrency: int = 4) -> subprocess.Popen:
        return self.start("worker", "--concurrency", str(concurrency), "--log-level", "warning", *extra, env=env)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the whole process group: the machine is gone, nothing is given back."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


@pytest.fixture
def procs(clean):
    p = Processes()
    yield p
    p.stop_all()


@pytest.fixture
def worker(procs):
    """One real Celery worker (prefork, 4 processes) and beat, on the test broker and database."""
    w = procs.worker()
    procs.start("beat", "--log-level", "warning")
    return w


def sign(body: str, msg_id: str = "msg_1", secret: str = SECRET, at: float | None = None) -> dict:
    from datetime import datetime, timezone

    from standardwebhooks import Webhook

    when = datetime.fromtimestamp(at if at is not None else time.time(), tz=timezone.utc)
    return {"content-type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())), "webhook-signature": Webhook(secret).sign(msg_id, when, body)}


def post(client, event: dict, **kw):
    body = json.dumps(event, ensure_ascii=False)
    return client.post("/v1/events", content=body.encode(), headers=sign(body, f"msg_{event['id']}", **kw))


def make_event(event_id: str = "evt-1", tenant: str = "acme-hvac", type: str = "job.completed",
               job_id: str = "J-1", **job_changes) -> dict:
    """A small valid contract v1 event; totals: 2h x 100 + 1 x 50.00 + fee 25 = 275.00, 10% off, 8% tax."""
    job = {
        "id": job_id, "number": job_id.removeprefix("J-"), "completed_at": "2026-11-02T13:00:00Z",
        "technician": {"id": "T-1", "name": "Łukasz Żółć"}, "summary": "Replaced capacitor.",
        "service_address": {"line1": "1 Elm St", "city": "Orlando", "region": "FL", "postal_code": "32801",
                            "country": "US"},
        "labor": [{"description": "Diagnosis and repair", "hours": "2", "rate": "100.00", "taxable": False}],
        "materials": [{"sku": "CAP-1", "description": "Run capacitor", "quantity": "1", "unit_price": "50.00",
                       "taxable": True}],
        "fees": [{"description": "Trip charge", "amount": "25.00", "taxable": False}],
        "discounts": [{"description": "Member discount", "percent": "10"}],
        "tax": {"rate": "0.08", "jurisdiction": "FL"}, "currency": "USD", "payment_terms_days": 30,
    }
    job.update(job_changes)
    event = {"type": type, "id": event_id, "source": "mobile-app", "occurred_at": "2026-11-02T13:00:05Z",
             "tenant": tenant, "job": job,
             "customer": {"id": "C-1", "name": "Nguyễn Thị Hương", "email": "huong@example.com",
                          "phone": "+14075550100", "billing_address": None, "external_ids": {}}}
    if type == "job.signed":
        job.setdefault("signature", {"signed_by": "Nguyễn Thị Hương", "signed_at": "2026-11-02T13:05:00Z"})
    return event


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port: int, path: str) -> bool:
    """The local server on `port` answers `path` with 200."""
    import requests

    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
    except requests.RequestException:  # refused, or too slow to answer on a busy machine: not yet
        return False
