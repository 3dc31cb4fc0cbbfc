"""Benchmark: invoicer against the flow a shop would wire up by hand (Node-RED), on the same work.

    .venv/bin/python bench/peer.py [--events N] [--connections C] [--workers W] [--concurrency K]
                                   [--pool prefork|threads] [--redis URL] [--json FILE] [--keep]

1. The peer: `../shared/bench/peer-nodered/run.sh` as it is (Node-RED: POST /events -> map the job ->
   POST an invoice -> POST an email -> 202, against fakeprov.js; nothing persisted, no PDF, no retries),
   wrk -c16 for 10 s, the same body every time. Its requests/s is the figure to match.
2. invoicer at the door: `invoicer serve` alone (no workers), N distinct events posted by
   bench/load.py over C keep-alive connections (16, like the peer's wrk): each answer is a 202 after
   the event is committed to PostgreSQL and its task published to Redis.
3. invoicer end to end: the same N events posted again into an empty database with W workers
   (`invoicer worker --concurrency K`) already running; timed from the first event posted to the last
   customer email written (every delivery settled). Figure: N / that time. The door's rate during
   this run is printed too (the workers share the 2 cores with the ingress).

The same work as the peer: one tenant, each event a new job (`job.completed`, so one invoice each), one
platform (the built-in `local` ledger: an invoice row committed to PostgreSQL) and one email (the
customer only, no finance copy, no SMS) by the built-in `local` channel: an .eml file written and
fsynced. Those are the comparable targets: the peer's fake vendor answers at once and does nothing,
the local platform and outbox are invoicer's cheapest durable effects with no HTTP hop that a
simulator's own Python would add to the same 2 cores. What invoicer does and the peer does not: it
persists the event, job, invoice, lines, deliveries, attempts and audit rows, keys every effect so a
redelivery cannot double it, retries, and it renders the branded PDF: the pipeline renders one for
every invoice and no tenant option skips it (`channels.pdf: link` is used, so the email carries the
signed link, not an attachment, like the peer's body-only email).

Uses PostgreSQL `invoicer_peer` (dropped and recreated per phase, left for inspection) and Redis
database 7 on 127.0.0.1:6379 by default (flushed per phase and at the end). Node-RED listens on 1880 and
the fake vendor on 9100 (run.sh's ports). Loopback only; every process it starts is stopped at the
end, Ctrl-C included; every phase has a time limit.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (PG_SERVER, PY, ROOT, Procs, finish, flush_redis, free_port, loadavg, note, post_load,  # noqa: E402
                    reset_database, say, wait_http, wait_workers)

DB_NAME = "invoicer_peer"
TENANT = "peer-co"
PEER = ROOT.parent / "shared" / "bench" / "peer-nodered" / "run.sh"
TMP = Path(tempfile.mkdtemp(prefix="invoicer-peer-"))
TENANTS_YAML = f"""\
# bench/peer.py: one tenant, the local ledger, one customer email (the PDF linked, not attached)
tenants:
  {TENANT}:
    name: Peer Heating Co
    address: ["1 Loop Rd", "Springfield, IL 62701", "United States"]
    locale: en_US
    platforms:
      ledger: {{provider: local}}
    channels:
      customer: [email]
      pdf: link
    numbering: {{prefix: "PEER-", start: 1, width: 7}}
    sources:
      "*": {{unsigned: true}}
"""


def one_invoice_events(count: int, tenant: str, seed: int = 11) -> list[dict]:
    """`count` generated `job.completed` events, each a new job of `tenant` with a customer email:
    one invoice and one customer email each."""
    from invoicer.sample import generate

    out, n = [], count * 2
    while len(out) < count:
        out = [dict(e, tenant=tenant) for e in generate(n, seed=seed, tenants=(tenant,))
               if e["type"] == "job.completed" and e["customer"].get("email")][:count]
        n *= 2
    return out


def write_bodies(path: Path, events: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def bench_env(db_name: str, redis_url: str, folder: Path) -> dict:
    (folder / "var").mkdir(parents=True, exist_ok=True)
    (folder / "tenants.yaml").write_text(TENANTS_YAML, encoding="utf-8")
    env = {**os.environ, "INVOICER_DATABASE_URL": f"{PG_SERVER}/{db_name}", "INVOICER_BROKER_URL": redis_url,
           "INVOICER_CONFIG": str(folder / "tenants.yaml"), "INVOICER_VAR_DIR": str(folder / "var"),
           "INVOICER_SECRET_KEY": "peer-link-key", "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("INVOICER_")})
    return env


def fresh(db_name: str, redis_url: str) -> None:
    from invoicer import config

    flush_redis(redis_url)
    reset_database(db_name)
    config.reset()


def start_ingress(procs: Procs, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env["INVOICER_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    ingress = procs.start("ingress", [PY, "-m", "invoicer.cli", "serve", "--port", str(port),
                                      "--log-level", "warning"], env)
    wait_http(f"http://127.0.0.1:{port}/readyz", ingress, 60)
    return ingress, f"http://127.0.0.1:{port}"


def start_workers(procs: Procs, env: dict, redis_url: str, count: int, concurrency: int, pool: str,
                  name: str = "peer") -> list[subprocess.Popen]:
    names = [f"{name}{i}" for i in range(count)]
    workers = [procs.start(n, [PY, "-m", "invoicer.cli", "worker", "--pool", pool, "--concurrency",
                               str(concurrency), "--hostname", f"{n}@%h", "--log-level", "warning"], env)
               for n in names]
    wait_workers(redis_url, names, workers, 90)
    return workers


def run_peer(timeout: float) -> dict:
    """run.sh in its own session (killed with its children at the end): wrk's figures."""
    proc = subprocess.Popen(["bash", str(PEER)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out = b""
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(10)
    text = out.decode(errors="replace")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if not rps:
        raise RuntimeError(f"the peer did not report (run.sh exit {proc.returncode}):\n{text[-2000:]}")
    return {"rps": float(rps.group(1)), "latency_avg": lat.group(1) if lat else None,
            "latency_max": lat.group(3) if lat else None}


def settled(db) -> tuple[int, int, int]:
    """(steps still open, customer emails done, invoices on the ledger)."""
    from sqlalchemy import func, select

    from invoicer.demo import busy

    d = db.deliveries.c
    with db.engine().connect() as conn:
        emails = conn.execute(select(func.count()).select_from(db.deliveries)
                              .where(d.kind == "email", d.status == "done")).scalar_one()
        ledger = conn.execute(select(func.count()).select_from(db.deliveries)
                              .where(d.kind == "invoice", d.status == "done")).scalar_one()
    return busy(db), emails, ledger


def last_effect(db, kind: str) -> float | None:
    """Wall-clock time of the last settled delivery of `kind` (its row's updated_at)."""
    from sqlalchemy import func, select

    d = db.deliveries.c
    with db.engine().connect() as conn:
        ts = conn.execute(select(func.max(d.updated_at)).where(d.kind == kind, d.status == "done")).scalar_one()
    return ts.replace(tzinfo=ts.tzinfo or timezone.utc).timestamp() if ts else None


def phase_door(args, procs: Procs, env: dict, bodies: Path, n: int) -> dict:
    fresh(DB_NAME, args.redis)
    _, base = start_ingress(procs, env)
    r = post_load(procs, f"{base}/v1/events", bodies, n, args.connections, timeout=120 + n / 20)
    procs.stop_all()
    r["loadavg"] = loadavg()
    return r


def phase_e2e(args, procs: Procs, env: dict, bodies: Path, n: int) -> dict:
    from invoicer import db

    fresh(DB_NAME, args.redis)
    _, base = start_ingress(procs, env)
    workers = start_workers(procs, env, args.redis, args.workers, args.concurrency, args.pool)
    note(f"ingress and {args.workers} workers x {args.concurrency} ({args.pool}) are up; posting {n} events")
    door: dict = {}
    started_wall, started = time.time(), time.monotonic()
    poster = threading.Thread(daemon=True, target=lambda: door.update(
        post_load(procs, f"{base}/v1/events", bodies, n, args.connections, timeout=args.timeout)))
    poster.start()
    deadline = started + args.timeout
    left, emails, ledger = settled(db)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker exited during the run")
        left, emails, ledger = settled(db)
        if not poster.is_alive() and left == 0 and emails >= n:
            break
    poster.join(5)
    end = last_effect(db, "email") or time.time()
    procs.stop_all()
    return {"door": door, "finished": left == 0 and emails >= n, "left_open": left, "emails": emails,
            "invoices": ledger, "elapsed_s": round(end - started_wall, 2),
            "events_per_s": round(emails / (end - started_wall), 1) if end > started_wall else None,
            "loadavg": loadavg()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=3000, help="events posted to invoicer (3000)")
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections (16, as the peer's wrk)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=2, help="pool processes (or threads) per worker (2)")
    p.add_argument("--pool", choices=["prefork", "threads"], default="prefork")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/7", help="broker (flushed): redis://127.0.0.1:6379/7")
    p.add_argument("--timeout", type=float, default=900, help="end-to-end time limit in s (900)")
    p.add_argument("--skip-peer", action="store_true", help="do not run the Node-RED peer")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, outbox)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    procs = Procs(TMP, {})
    out: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                 "events": args.events}
    say(f"invoicer vs the Node-RED peer, {out['date']}: {os.cpu_count()} CPUs, load average {loadavg()}")
    code = 0
    try:
        env = bench_env(DB_NAME, args.redis, TMP)
        procs.env = env
        bodies = write_bodies(TMP / "events.jsonl", one_invoice_events(args.events, TENANT))
        if not args.skip_peer:
            out["peer"] = peer = run_peer(timeout=300)
            say(f"  peer: Node-RED, map + POST invoice + POST email, answer 202 (nothing persisted, no PDF, "
                f"no retries; wrk -c16 10 s)   {peer['rps']:>7.0f} ev/s   latency avg {peer['latency_avg']}, "
                f"max {peer['latency_max']}   (load average {loadavg()})")
        out["door"] = door = phase_door(args, procs, env, bodies, args.events)
        say(f"  invoicer at the door: 202 after the event is committed and its task published, no workers "
            f"({args.connections} conns)   {door['rps']:>7.0f} ev/s   p50 {door['p50_ms']} ms, p99 {door['p99_ms']} ms "
            f"({door['ok']} of {door['requests']} accepted; load average {door['loadavg']})")
        out["e2e"] = e2e = phase_e2e(args, procs, env, bodies, args.events)
        d = e2e["door"]
        unfinished = "" if e2e["finished"] else f"; NOT finished in {args.timeout:.0f} s, {e2e['left_open']} steps open"
        say(f"  invoicer end to end: posted -> ledger invoice + PDF rendered + customer email written, "
            f"durable ({args.workers} workers x {args.concurrency} {args.pool})   {e2e['events_per_s'] or 0:>7.1f} ev/s   "
            f"({e2e['emails']} emails, {e2e['invoices']} invoices in {e2e['elapsed_s']} s{unfinished}; "
            f"load average {e2e['loadavg']})")
        say(f"    the door during that run: {d.get('rps', 0):.0f} ev/s, p50 {d.get('p50_ms')} ms, p99 {d.get('p99_ms')} ms "
            f"({d.get('ok')} of {d.get('requests')} accepted)")
        if "peer" in out:
            say(f"  => invoicer end to end is {e2e['events_per_s'] / out['peer']['rps']:.1%} of the peer's rate, "
                f"at the door {door['rps'] / out['peer']['rps']:.0%} (target: match it end to end)")
    except KeyboardInterrupt:
        say("\ninterrupted: stopping every process started here")
        code = 130
    except RuntimeError as exc:
        say(f"\npeer benchmark failed: {exc}\n(logs in {TMP})")
        args.keep, code = True, 1
    finally:
        finish(procs, args.redis, TMP, args.keep, args.json, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
