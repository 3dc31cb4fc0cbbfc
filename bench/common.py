"""What the benchmark scripts share: printing, child processes, ports, and a fresh database and Redis."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def say(*parts) -> None:
    print(*parts, flush=True)


def note(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


class Procs:
    """Child processes, each in its own session (so a worker's pool children go with it), each
    writing to `<folder>/<name>.log`."""

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env = folder, env
        self.running: list[subprocess.Popen] = []

    def start(self, name: str, argv: list[str], env: dict | None = None, folder: Path | None = None,
              cwd: Path = ROOT) -> subprocess.Popen:
        path = (folder or self.folder) / f"{name}.log"
        with open(path, "ab") as log:
            proc = subprocess.Popen(argv, cwd=cwd, env=env or self.env, stdout=log, stderr=log,
                                    start_new_session=True)
        proc.bench_name = name  # type: ignore[attr-defined]
        proc.bench_log = path  # type: ignore[attr-defined]
        self.running.append(proc)
        return proc

    def stop(self, *procs: subprocess.Popen, grace: float = 15) -> None:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
            try:  # pool children left behind by a parent that died first
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if p in self.running:
                self.running.remove(p)

    def stop_all(self) -> None:
        self.stop(*list(self.running), grace=10)


def log_tail(proc, lines: int = 15) -> str:
    path = getattr(proc, "bench_log", None)
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.bench_name} exited early:\n{log_tail(proc)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def reset_database(name: str) -> None:
    """Drop and make the benchmark's own database, then migrate it."""
    import sqlalchemy as sa

    from invoicer import config, db
    from invoicer.migrate import upgrade

    url = f"{PG_SERVER}/{name}"
    db.engine_for(url).dispose()  # connections to the database about to be dropped
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    config.reset()
    upgrade(url)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def loadavg() -> str:
    """The machine's 1, 5 and 15 minute load averages, as /proc/loadavg says."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def post_load(procs: Procs, url: str, bodies: Path, count: int, concurrency: int, timeout: float) -> dict:
    """bench/load.py, closed loop, run to completion: its JSON summary (rps, p50_ms, p99_ms, statuses ...)."""
    import json

    argv = [PY, str(BENCH / "load.py"), "--url", url, "--bodies", str(bodies), "--count", str(count),
            "--concurrency", str(concurrency)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    proc.bench_name = "load"  # type: ignore[attr-defined]
    procs.running.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the load generator did not finish within {timeout:.0f} s") from None
    finally:
        procs.stop(proc, grace=2)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-2000:]}")
    return json.loads(out)


def wait_workers(broker: str, names: list[str], workers: list[subprocess.Popen], timeout: float = 60) -> None:
    """Until every worker answers a broadcast ping (remote control over the broker)."""
    from celery import Celery

    app = Celery(broker=broker)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"{w.bench_name} exited early:\n{log_tail(w)}")
            answered = set()
            for reply in app.control.ping(timeout=1.0) or []:
                answered.update(reply)
            if all(any(a.startswith(n + "@") for a in answered) for n in names):
                return
            time.sleep(0.3)
    finally:
        app.close()
    raise RuntimeError(f"the workers did not answer a ping within {timeout:.0f} s")


def finish(procs: Procs, redis_url: str, tmp: Path, keep: bool, json_path: str | None, results: dict | None) -> None:
    """The end of every run: stop what was started, flush the benchmark's Redis database, write the
    figures when asked, remove the scratch folder unless kept."""
    import json
    import shutil

    procs.stop_all()
    try:
        flush_redis(redis_url)
    except Exception:
        pass
    if json_path and results:
        Path(json_path).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
