"""Everything the crash suite starts, and may kill: its own Redis and PostgreSQL, the ingress, several
Celery workers, beat, and the vendor simulators (served in this process, so their records are read
directly). Nothing here touches the shared Redis on 6379 or PostgreSQL on 5432.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = ("quickbooks", "stripe")
CHANNELS = ("sendgrid", "twilio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:  # a server that is restarting: not yet
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class PrivateRedis:
    """A redis-server of our own on a free port, no persistence (like the shared one): a restart
    loses every queued and unacknowledged message."""

    def __init__(self, folder: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed: scripts/test installs it")
        self.port, self.folder, self.proc = free_port(), folder, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        log = open(self.folder / "redis.log", "ab")
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=log, stderr=log, start_new_session=True)
        wait_until(lambda: redis.Redis(port=self.port, socket_connect_timeout=0.2).ping(), 15, "redis")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, down: float = 1.0) -> None:
        self.kill()
        time.sleep(down)
        self.start()


def _pg_bin(name: str) -> str:
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True) + [f"/usr/local/bin/{name}"]:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} (PostgreSQL server binaries) is not installed")
    return found


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb into a temporary folder), so it can be crashed
    (`pg_ctl stop -m immediate`: no clean shutdown, recovery on start) and started again. As root,
    the server runs as the `postgres` user, as PostgreSQL requires."""

    def __init__(self):
        # a folder of its own under /tmp: the server's user must reach it (a pytest tmp_path is root's only)
        self.folder = Path(tempfile.mkdtemp(prefix="invoicer-fault-pg-"))
        self.data, self.port = self.folder / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/invoicer"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        done = subprocess.run(self.as_user + list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              cwd=self.folder)
        if done.returncode:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.decode(errors='replace')[-500:]}")

    def init(self) -> None:
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        self.start()
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE invoicer")

    def start(self) -> None:
        # fsync off: this cluster holds nothing worth keeping, and the machine is shared
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.folder / "server.log"),
                  "-w", "-t", "60", "start")

    def crash(self) -> None:
        """Stop as a crash would: every connection cut, no checkpoint."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self, down: float = 1.0) -> None:
        self.crash()
        time.sleep(down)
        self.start()

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


# the workers: two prefork workers on every queue and one threads pool on the I/O queues (the two
# pools restore differently after a kill; ../shared/RELIABILITY.md item 6)
WORKERS = [
    ("w1", ["--concurrency", "2"]),
    ("w2", ["--concurrency", "2"]),
    ("w3", ["--concurrency", "4", "--pool", "threads", "--queues", "invoices,notify"]),
]


class Cluster:
    """The whole product on private servers. Use as a context manager; everything stops on exit."""

    def __init__(self, folder: Path | None = None, workers=WORKERS, env: dict[str, str] | None = None):
        self.folder = Path(folder or tempfile.mkdtemp(prefix="invoicer-fault-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.worker_specs = dict(workers)
        self.redis = PrivateRedis(self.folder)
        self.pg = PrivatePostgres()
        self.procs: dict[str, subprocess.Popen] = {}
        self.box = None
        self.env: dict[str, str] = {}
        self.overrides = env or {}
        self.port = free_port()
        self.kills = 0
        self.engine = None

    # ------------------------------------------------------------ start and stop

    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        import sqlalchemy as sa
        import yaml

        from invoicer import db, sandbox
        from invoicer.migrate import upgrade
        from invoicer.providers.sendgrid.simulator import SendGridSimulator
        from invoicer.providers.quickbooks.simulator import QuickBooksSimulator
        from invoicer.providers.simulate import Running
        from invoicer.providers.twilio.simulator import TwilioSimulator

        self.redis.start()
        self.box = sandbox.start(list(PLATFORMS))
        # a second QuickBooks company (each tenant has its own); the channels' simulators are not in
        # the sandbox (they take no platform entry): both served beside it
        self.box.running.update({"quickbooks-2": Running(QuickBooksSimulator(realm_id="9341453050000002")),
                                 "sendgrid": Running(SendGridSimulator()), "twilio": Running(TwilioSimulator())})
        for slug in CHANNELS:
            self.box.env.update(self.sim(slug).env())
        for running in self.box.running.values():  # a client that gave up on a stalled answer is expected
            running.server.handle_error = lambda request, address: None
        for slug in PLATFORMS:
            for sim in self.sims(slug):
                sim.stall_seconds = 12  # past the task's soft (6 s) and hard (8 s) limits
        self.tenants = tenants(self.box)
        (self.folder / "tenants.yaml").write_text(yaml.safe_dump({"tenants": self.tenants}, sort_keys=False,
                                                                  allow_unicode=True))
        (self.folder / "var").mkdir(exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("INVOICER_")}, **self.box.env,
                    **ENV, "INVOICER_DATABASE_URL": self.pg.url, "INVOICER_BROKER_URL": self.redis.url,
                    "INVOICER_CONFIG": str(self.folder / "tenants.yaml"), "INVOICER_VAR_DIR": str(self.folder / "var"),
                    "INVOICER_PUBLIC_URL": f"http://127.0.0.1:{self.port}", **self.overrides}
        for name in self.worker_specs:  # they take seconds to start: meanwhile, the database is made
            self.start_worker(name)
        self.pg.init()
        upgrade(self.pg.url)
        db.engine_for(self.pg.url).dispose()
        self.engine = sa.create_engine(self.pg.url, pool_pre_ping=True, pool_size=2)
        self._seed()
        self._start("serve", ["serve", "--port", str(self.port), "--log-level", "warning"])
        self._start("beat", ["beat", "--log-level", "warning"])
        wait_until(lambda: self._ready(), 60, "the ingress")

    def _seed(self) -> None:
        """QuickBooks' OAuth tokens, stored as the consent flow would have (encrypted with the run's key)."""
        from invoicer.credentials import Credentials

        old = os.environ.get("INVOICER_CREDENTIALS_KEY")
        os.environ["INVOICER_CREDENTIALS_KEY"] = self.env["INVOICER_CREDENTIALS_KEY"]
        try:
            for slug, tenant in self.tenants.items():
                for name, platform in tenant["platforms"].items():
                    sim = next(s for s in self.sims(platform["provider"]) if platform.get("realm_id") in
                               (None, getattr(s, "realm_id", None)))
                    tokens = sim.tokens()
                    if tokens:
                        Credentials(self.engine, slug, name).put(tokens)
        finally:
            if old is None:
                os.environ.pop("INVOICER_CREDENTIALS_KEY", None)
            else:
                os.environ["INVOICER_CREDENTIALS_KEY"] = old

    def _ready(self) -> bool:
        import requests

        return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "invoicer.cli", *args], env=self.env, cwd=ROOT,
                                stdout=log, stderr=log, start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str) -> None:
        self._start(name, ["worker", "--hostname", f"{name}@fault", "--log-level", "warning",
                           *self.worker_specs[name]])

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its pool children (the machine is gone: nothing is given back), then
        start a fresh one in its place."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
        self.kills += 1
        self.start_worker(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # pool children a dead parent left behind
            except ProcessLookupError:
                pass
        if self.box is not None:
            self.box.stop()
        if self.engine is not None:
            self.engine.dispose()
        self.redis.kill()
        self.pg.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sim(self, key: str):
        return self.box.running[key].sim

    def sims(self, provider: str) -> list:
        """Every simulator of one provider (QuickBooks has one per company)."""
        return [r.sim for key, r in self.box.running.items() if key.split("-")[0] == provider]


# fast retries and short leases, as in tests/conftest.py, so a killed worker's work comes back in seconds
ENV = {
    "INVOICER_SECRET_KEY": "fault-suite-link-key",
    "INVOICER_API_TOKEN": "fault-suite-admin-token",
    "INVOICER_VISIBILITY_TIMEOUT": "12",
    "INVOICER_TASK_TIME_LIMIT": "8",
    "INVOICER_RETRY_BASE": "0.2",
    "INVOICER_RETRY_CAP": "1",
    "INVOICER_MAX_ATTEMPTS": "8",
    "INVOICER_SWEEP_INTERVAL": "1",
    "INVOICER_SWEEP_GRACE": "5",
}


def tenants(box) -> dict[str, dict]:
    """The three tenants of jobs-300.jsonl, on the two invoice platforms, with email (SendGrid) and SMS
    (Twilio) to the customer; every source unsigned (signatures are the fuzzing suite's subject)."""
    platforms = {key: r.sim.platform(r.url) for key, r in box.running.items() if key.split("-")[0] in PLATFORMS}
    channels = {"customer": ["email", "sms"], "email": box.sendgrid.sim.channel(box.sendgrid.url),
                "sms": box.twilio.sim.channel(box.twilio.url)}

    def tenant(name, prefix, keys, **extra):  # distinct prefixes: an invoice number names its tenant
        return {"name": name, "platforms": {k.split("-")[0]: platforms[k] for k in keys}, "channels": channels,
                "numbering": {"prefix": prefix}, "sources": {"*": {"unsigned": True}}, **extra}

    return {
        "acme-hvac": tenant("Acme Heating & Cooling", "ACME-", ["quickbooks", "stripe"]),
        "northwind-heating": tenant("Northwind Heating Ltd", "NW-", ["quickbooks-2"], locale="en_GB"),
        "polar-air": tenant("Polar Air Klimatechnik", "PA-", ["stripe"], locale="nl_NL"),
    }
