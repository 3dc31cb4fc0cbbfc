"""`invoicer demo`: the whole product on one machine with no setup.

Starts the ingress, real Celery workers and beat as child processes, pushes sample jobs through the
ingress, waits for every job to finish and prints a summary. SQLite and an embedded broker unless
the environment names a database and broker; a Redis on 127.0.0.1:6379 is used when one answers.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from sqlalchemy import func, select
from tqdm import tqdm

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
EMBEDDED = "the embedded broker (files under var/broker; no server needed)"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def choose_environment(port: int) -> tuple[dict, str]:
    env = dict(os.environ)
    if env.get("INVOICER_BROKER_URL", "").startswith("filesystem"):
        broker = EMBEDDED
    elif "INVOICER_BROKER_URL" in env:
        broker = "the broker at INVOICER_BROKER_URL"
    elif _redis_answers():
        env["INVOICER_BROKER_URL"] = LOCAL_REDIS
        broker = "Redis on 127.0.0.1:6379"
    else:
        env["INVOICER_BROKER_URL"] = "filesystem://localhost/"
        broker = EMBEDDED
    env.setdefault("INVOICER_SECRET_KEY", secrets.token_urlsafe(32))
    env.setdefault("INVOICER_SWEEP_INTERVAL", "5")
    env.setdefault("INVOICER_SWEEP_GRACE", "20")
    env["INVOICER_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    return env, broker


def _progress(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="ev", file=sys.stderr, dynamic_ncols=True,
                disable=not sys.stderr.isatty() and os.environ.get("INVOICER_PROGRESS") != "1")


def run(count: int = 300, events_file: str | None = None, workers: int = 2, port: int = 0,
        timeout: float = 600, sandbox: bool = False, log_level: str = "warning") -> int:
    port = port or _free_port()
    env, broker = choose_environment(port)
    box = None
    if sandbox:  # the vendor simulators, in this process, and a tenants file that points at them
        from . import sandbox as sb

        box = sb.start()
        env.update(box.env)
        var = Path(env.get("INVOICER_VAR_DIR", "var"))
        var.mkdir(parents=True, exist_ok=True)
        (var / "sandbox-tenants.yaml").write_text(box.tenants_yaml())
        env["INVOICER_CONFIG"] = str(var / "sandbox-tenants.yaml")
    os.environ.update(env)
    from . import config, db
    from .migrate import upgrade
    from .sender import post_all, read_jsonl

    config.reset()
    cfg = config.settings()
    config.tenants()
    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(cfg.database_url)
    if box:
        import yaml

        box.seed(db.engine(), yaml.safe_load(box.tenants_yaml())["tenants"])
        where = " | ".join(f"{slug} at {r.url}" for slug, r in box.running.items())
        print(f"invoicer demo: sandbox: {where} | tenants file {env['INVOICER_CONFIG']}", flush=True)
    where = "SQLite at " + cfg.database_url.removeprefix("sqlite:///") if cfg.database_url.startswith("sqlite") \
        else "the database at INVOICER_DATABASE_URL"
    print(f"invoicer demo: {where}; broker: {broker}", flush=True)

    if events_file:
        events = read_jsonl(events_file)
    else:
        from .sample import generate

        events = generate(count)
    logs = open(cfg.var_dir / "demo.log", "ab")  # the processes' JSON log lines (invoicer.logs)
    me = [sys.executable, "-m", "invoicer.cli"]
    procs = [subprocess.Popen(me + ["serve", "--port", str(port), "--log-level", log_level], env=env,
                              stdout=logs, stderr=logs)]
    for i in range(workers):
        procs.append(subprocess.Popen(me + ["worker", "--concurrency", "2", "--hostname", f"demo{i}@%h",
                                            "--log-level", log_level], env=env, stdout=logs, stderr=logs))
    procs.append(subprocess.Popen(me + ["beat", "--log-level", log_level], env=env, stdout=logs, stderr=logs))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow to answer on a busy machine
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                print(f"invoicer demo: the ingress did not come up; see {cfg.var_dir / 'demo.log'}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        started = time.monotonic()
        with _progress(len(events), "sending") as bar:
            sent = post_all(events, base, concurrency=16, progress=bar)
        finished = _wait(db, len(events), timeout, started)
        elapsed = time.monotonic() - started
        summary = _summary(db, sent, elapsed, len(events))
        print(summary["text"])
        if sent["errors"]:
            print("\n".join(["rejected events:"] + sent["errors"][:10]), file=sys.stderr)
        if not finished:
            print(f"invoicer demo: not every job finished within {timeout:.0f} s; see `invoicer dlq list` "
                  f"and {cfg.var_dir / 'demo.log'}", file=sys.stderr)
            return 1
        return 0 if not sent["rejected"] and not summary["dead"] else 1
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if box:
            box.stop()


def busy(db) -> int:
    """Events not yet applied plus deliveries not yet settled."""
    with db.engine().connect() as conn:
        events = conn.execute(select(func.count()).select_from(db.events)
                              .where(db.events.c.status == "accepted")).scalar_one()
        open_ = conn.execute(select(func.count()).select_from(db.deliveries)
                             .where(db.deliveries.c.status.in_(["pending", "running", "retry"]))).scalar_one()
        stages = conn.execute(select(func.count()).select_from(db.invoices)
                              .where(db.invoices.c.stage != "done")).scalar_one()
        dead = conn.execute(select(func.count()).select_from(db.deliveries)
                            .where(db.deliveries.c.status == "dead")).scalar_one()
    return events + open_ + max(0, stages - dead)


def _wait(db, total: int, timeout: float, started: float) -> bool:
    with _progress(total, "finishing") as bar:
        while time.monotonic() - started < timeout:
            left = busy(db)
            bar.n = max(0, total - min(left, total))
            bar.refresh()
            if left == 0:
                return True
            time.sleep(0.25)
    return False


def _summary(db, sent: dict, elapsed: float, total: int) -> dict:
    d = db.deliveries.c
    with db.engine().connect() as conn:
        rows = conn.execute(select(d.kind, d.target, d.status, func.count()).group_by(d.kind, d.target, d.status)).all()
        jobs = dict(conn.execute(select(db.jobs.c.state, func.count()).group_by(db.jobs.c.state)).all())
    platforms = {}
    for kind, target, status, n in rows:
        if kind == "invoice" and status == "done":
            platforms[target] = platforms.get(target, 0) + n

    def total_of(kind, status):
        return sum(n for k, _, s, n in rows if k == kind and s == status)

    dead = sum(n for _, _, s, n in rows if s == "dead")
    text = "\n".join([
        "",
        f"events sent          {total}",
        f"  accepted           {sent['accepted']}",
        f"  duplicates         {sent['duplicate']}",
        f"  rejected           {sent['rejected']}",
        f"jobs                 {sum(jobs.values())}  ({', '.join(f'{k} {v}' for k, v in sorted(jobs.items()))})",
        "invoices             " + (", ".join(f"{k} {v}" for k, v in sorted(platforms.items())) or "0"),
        f"PDFs                 {total_of('pdf', 'done')}",
        f"emails               {total_of('email', 'done')}  (skipped {total_of('email', 'skipped')})",
        f"SMS                  {total_of('sms', 'done')}  (skipped {total_of('sms', 'skipped')})",
        f"failures             {dead}",
        f"elapsed              {elapsed:.1f} s",
        f"events per second    {total / elapsed:.1f}" if elapsed else "",
    ])
    return {"text": text, "dead": dead}
