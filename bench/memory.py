"""Benchmark: worker memory over a long run (issue 9, target 7: each worker process under 150 MB RSS
after 10,000 events, with no growth over the run).

    .venv/bin/python bench/memory.py [--events N] [--every K] [--pools prefork,threads] [--concurrency C]
                                     [--redis URL] [--json FILE] [--keep]

For each pool: an empty database, the ingress and one `invoicer worker --pool P --concurrency C` on
every queue (no beat). N generated events (`invoicer.sample.generate`: the demo's three tenants on the
local ledger, customer email and SMS, finance copies, updates and signatures) are posted through the
ingress K at a time (1,000 by default); after each K the script waits until the pipeline has nothing
left to do, then reads VmRSS from /proc for the worker's parent and every pool process (and the
ingress, for comparison). Printed per process: RSS at start and after every K events, the maximum,
and the growth per 1,000 events after the warm-up (the least-squares slope over the samples from
the second one on; the first K events load modules, fonts and caches once). A pool process that is
replaced (a new pid) is reported as such: its growth then says nothing.

Uses PostgreSQL `invoicer_memory` (dropped and recreated per pool, left for inspection) and Redis
database 8 on 127.0.0.1:6379 by default (flushed per pool and at the end). Everything started here is
stopped at the end, Ctrl-C included; each batch has a time limit (--batch-timeout).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, PG_SERVER, Procs, finish, loadavg, note, post_load, say  # noqa: E402
from peer import fresh, start_ingress, start_workers, write_bodies  # noqa: E402

DB_NAME = "invoicer_memory"
TMP = Path(tempfile.mkdtemp(prefix="invoicer-memory-"))
LIMIT_MB = 150


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def private_mb(pid: int) -> float | None:
    """Pages this process alone holds (Private_Clean + Private_Dirty): RSS less what it shares with
    its parent or its siblings (a forked pool process shares the parent's imported modules)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Private_")) / 1024


def children(pid: int) -> list[int]:
    """The pool processes of a worker: its direct children (every thread's list, as /proc keeps it)."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text if int(c) not in out)
    except FileNotFoundError:
        pass
    return sorted(out)


def snapshot(worker_pid: int, ingress_pid: int) -> dict[str, tuple[int, float | None]]:
    """role -> (pid, RSS MB): the worker's parent, its pool processes in pid order, the ingress."""
    snap = {"worker parent": (worker_pid, rss_mb(worker_pid))}
    for i, pid in enumerate(children(worker_pid)):
        snap[f"pool process {i + 1}"] = (pid, rss_mb(pid))
    snap["ingress (for comparison)"] = (ingress_pid, rss_mb(ingress_pid))
    return snap


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (events, MB), in MB per 1,000 events."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den * 1000 if den else None


def wait_idle(db, timeout: float) -> bool:
    from invoicer.demo import busy

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if busy(db) == 0:
            return True
        time.sleep(0.5)
    return False


def run_pool(pool: str, args, procs: Procs, env: dict, events: list[dict]) -> dict:
    from invoicer import db

    fresh(DB_NAME, args.redis)
    ingress, base = start_ingress(procs, env)
    [worker] = start_workers(procs, env, args.redis, 1, args.concurrency, pool, name=f"mem-{pool}")
    samples = [(0, snapshot(worker.pid, ingress.pid))]
    started = time.monotonic()
    for start in range(0, len(events), args.every):
        chunk = events[start:start + args.every]
        bodies = write_bodies(TMP / f"{pool}-{start}.jsonl", chunk)
        r = post_load(procs, f"{base}/v1/events", bodies, len(chunk), 16, timeout=120 + len(chunk) / 10)
        if r["ok"] != len(chunk):
            raise RuntimeError(f"the ingress accepted {r['ok']} of {len(chunk)} events: {r['statuses']}")
        if not wait_idle(db, args.batch_timeout):
            raise RuntimeError(f"events {start}-{start + len(chunk)} not through the pipeline in "
                               f"{args.batch_timeout:.0f} s")
        if worker.poll() is not None:
            raise RuntimeError("the worker exited")
        done = start + len(chunk)
        samples.append((done, snapshot(worker.pid, ingress.pid)))
        note(f"{pool}: {done}/{len(events)} events after {time.monotonic() - started:.0f} s; "
             + ", ".join(f"{k.split(' (')[0]} {v[1]:.0f}" for k, v in samples[-1][1].items() if v[1]) + " MB")
    elapsed = time.monotonic() - started
    private = {role: private_mb(pid) for role, (pid, _) in samples[-1][1].items()}
    procs.stop_all()
    return report(pool, args, samples, elapsed, private)


def report(pool: str, args, samples: list, elapsed: float, private: dict) -> dict:
    roles = list(dict.fromkeys(role for _, snap in samples for role in snap))
    say(f"\n{pool} pool: 1 worker x --concurrency {args.concurrency}; {samples[-1][0]} events in {elapsed:.0f} s "
        f"({samples[-1][0] / elapsed:.1f} ev/s); load average {loadavg()}")
    say(f"  {'RSS MB after N events':<26}" + "".join(f"{n:>7}" for n, _ in samples) + "      max  growth/1k after warm-up")
    out = {}
    for role in roles:
        row = [snap.get(role, (None, None)) for _, snap in samples]
        pids = {pid for pid, mb in row if pid}
        values = [mb for _, mb in row if mb is not None]
        warm = [(n, snap[role][1]) for n, snap in samples[2:] if role in snap and snap[role][1] is not None]
        growth = slope(warm) if len(pids) == 1 else None
        peak = max(values) if values else None
        replaced = "" if len(pids) <= 1 else f"  (replaced: {len(pids)} pids)"
        over = "" if peak is None or peak < LIMIT_MB or role.startswith("ingress") else f"  OVER {LIMIT_MB} MB"
        say(f"  {role:<26}" + "".join(f"{mb:>7.1f}" if mb is not None else f"{'-':>7}" for _, mb in row)
            + f"  {peak or 0:>7.1f}  " + (f"{growth:+.2f} MB" if growth is not None else "-") + replaced + over)
        out[role] = {"pids": sorted(pids), "rss_mb": [round(mb, 1) if mb else None for _, mb in row],
                     "private_mb_at_end": round(private[role], 1) if private.get(role) else None,
                     "max_mb": round(peak, 1) if peak else None,
                     "growth_mb_per_1k": round(growth, 3) if growth is not None else None}
    workers = [v for k, v in out.items() if not k.startswith("ingress") and v["max_mb"]]
    worst = max(v["max_mb"] for v in workers) if workers else None
    grows = [v["growth_mb_per_1k"] for v in workers if v["growth_mb_per_1k"] is not None]
    say("  private memory at the end (RSS less shared pages): " + ", ".join(
        f"{k.split(' (')[0]} {v['private_mb_at_end']}" for k, v in out.items() if v["private_mb_at_end"]) + " MB")
    say(f"  => largest worker process {worst} MB (limit {LIMIT_MB}); growth per 1,000 events after warm-up "
        f"{min(grows):+.2f} to {max(grows):+.2f} MB" if grows else f"  => largest worker process {worst} MB")
    return {"pool": pool, "concurrency": args.concurrency, "events": [n for n, _ in samples],
            "elapsed_s": round(elapsed, 1), "processes": out, "loadavg": loadavg()}


def main() -> int:
    from invoicer.sample import generate

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--every", type=int, default=1000, help="events between samples (1000)")
    p.add_argument("--pools", default="prefork,threads")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/8", help="broker (flushed): redis://127.0.0.1:6379/8")
    p.add_argument("--batch-timeout", type=float, default=600, help="s for one batch to go through (600)")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, outbox)")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    procs = Procs(TMP, {})
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": []}
    say(f"invoicer worker memory, {results['date']}: {os.cpu_count()} CPUs, {args.events} events per pool, "
        f"sampled every {args.every}; load average {loadavg()}")
    (TMP / "var").mkdir()
    env = {**os.environ, "INVOICER_DATABASE_URL": f"{PG_SERVER}/{DB_NAME}", "INVOICER_BROKER_URL": args.redis,
           "INVOICER_CONFIG": str(BENCH / "tenants.yaml"), "INVOICER_VAR_DIR": str(TMP / "var"),
           "INVOICER_SECRET_KEY": "memory-link-key", "PYTHONUNBUFFERED": "1"}
    os.environ.update({k: v for k, v in env.items() if k.startswith("INVOICER_")})
    code = 0
    try:
        events = generate(args.events, seed=13)
        for pool in args.pools.split(","):
            results["runs"].append(run_pool(pool.strip(), args, procs, env, events))
    except KeyboardInterrupt:
        say("\ninterrupted: stopping every process started here")
        code = 130
    except RuntimeError as exc:
        say(f"\nmemory benchmark failed: {exc}\n(logs in {TMP})")
        args.keep, code = True, 1
    finally:
        finish(procs, args.redis, TMP, args.keep, args.json, results)
    return code


if __name__ == "__main__":
    sys.exit(main())
