"""Benchmark: durable ingress, end-to-end pipeline, raw Celery; prints figures (no assertions).

    .venv/bin/python bench/run.py [--events N] [--concurrency C] [--rate R] [--profile] [--json FILE]

Uses its own PostgreSQL database `invoicer_bench` (dropped and recreated at start, left for
inspection at the end) and Redis database 5 (flushed at start and at the end), so it never touches
what the test suite uses. Every process it starts runs in its own session and is stopped on exit,
Ctrl-C included. Each phase has a time limit; a whole run takes about 3 minutes on 2 cores.
docs/benchmarks.md explains every figure and records measured numbers.

1. Durable ingress: `invoicer serve` with no workers; N generated events posted by a separate
   load-generator process (bench/load.py) over C keep-alive connections -> accepted events/s,
   p50/p99; then an open-loop run at a fixed offered rate (1000/s by default) -> p99 (and, when
   that rate is out of reach, a second one at ~80% of the measured maximum). Reference:
   bench/refapp.py, the same FastAPI/uvicorn stack answering a trivial POST (and a route that only
   validates the event), measured the same way and cross-checked with wrk when it is installed.
   What-if: the same ingress app under 2 uvicorn processes (`invoicer serve` runs one).
2. End to end: exactly the N events of step 1 stored and queued, then 2 worker processes
   (`invoicer worker --concurrency 2`, no beat) are started and the script polls like
   invoicer.demo.busy until nothing is left -> events/s through the whole pipeline. When nothing is
   queued and nothing has moved for --stall seconds, what is left is stuck: the phase stops, says
   so, and rates are taken up to the last progress.
3. Raw Celery: N chains of four no-op tasks (bench/noop_celery.py, invoicer's settings) on 2 worker
   processes x 2 pool processes -> chains/s and tasks/s; again with task events off.
4. One line naming the bottleneck, judged from the numbers.

CPU use of the machine and of each process group is measured during each measured window.
--profile adds py-spy summaries of the ingress (GIL samples) and of one worker's pool processes.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (BENCH, PG_SERVER, PY, ROOT, Procs, flush_redis as _flush, free_port, log_tail,  # noqa: E402
                    note, reset_database as _reset, say, wait_http)

DB_NAME = os.environ.get("BENCH_DB_NAME", "invoicer_bench")  # bench/e2e.py runs on its own
DB_URL = f"{PG_SERVER}/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")

TMP = Path(tempfile.mkdtemp(prefix="invoicer-bench-"))
ENV = {
    **os.environ,
    "INVOICER_DATABASE_URL": DB_URL,
    "INVOICER_BROKER_URL": REDIS_URL,
    "INVOICER_CONFIG": str(BENCH / "tenants.yaml"),
    "INVOICER_VAR_DIR": str(TMP / "var"),
    "INVOICER_SECRET_KEY": "bench-link-key",
    "INVOICER_PUBLIC_URL": "http://127.0.0.1:8000",
    "INVOICER_METRICS_TOKEN": "bench-metrics-token",
    "BENCH_BROKER_URL": REDIS_URL,
    "PYTHONUNBUFFERED": "1",
}
os.environ.update({k: v for k, v in ENV.items() if k.startswith(("INVOICER_", "BENCH_"))})
PROCS = Procs(TMP, ENV)


class CpuMeter:
    """CPU time used between start() and stop(): the machine (/proc/stat) and, per process group, the
    processes this script started (each runs in its own session), PostgreSQL and Redis."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, groups: dict[int, str]):
        self.groups = groups  # process-group id -> label

    def _snap(self):
        with open("/proc/stat") as fh:
            f = list(map(int, fh.readline().split()[1:]))
        machine = (sum(f[:8]), f[3] + f[4])
        used = collections.Counter()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    raw = fh.read()
            except OSError:
                continue
            comm = raw[raw.index("(") + 1:raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2:].split()
            cpu = (int(rest[11]) + int(rest[12])) / self.TICK
            label = (self.groups.get(int(rest[2])) or ("bench script" if int(pid) == os.getpid() else None)
                     or {"postgres": "postgres", "redis-server": "redis"}.get(comm))
            if label:
                used[label] += cpu
        return time.monotonic(), machine, used

    def start(self) -> "CpuMeter":
        self.a = self.mark = self._snap()
        return self

    def note(self) -> None:
        """Remember now: stop(at_note=True) reports up to this moment (e.g. the last progress seen)."""
        self.mark = self._snap()

    def stop(self, at_note: bool = False) -> dict:
        b = self.mark if at_note else self._snap()
        wall = b[0] - self.a[0]
        total, idle = b[1][0] - self.a[1][0], b[1][1] - self.a[1][1]
        out = {"machine_busy": round((total - idle) / total, 2) if total else None, "wall_s": round(wall, 2)}
        labelled = 0.0
        for label in sorted(set(b[2]) | set(self.a[2])):
            # max(0): a process that exits during the window (a PostgreSQL backend) takes its time with it
            out[label] = round(max(0.0, b[2][label] - self.a[2].get(label, 0)) / wall, 2) if wall else None
            labelled += out[label] or 0
        if out["machine_busy"] is not None:  # processes that exited meanwhile (the load generator), others
            out["everything else"] = round(max(0.0, out["machine_busy"] * (os.cpu_count() or 1) - labelled), 2)
        return out


def cpu_line(c: dict) -> str:
    parts = [f"{k} {v:.0%}" for k, v in c.items() if k not in ("machine_busy", "wall_s") and v]
    if c["machine_busy"] is None:
        return "CPU: (no measurement)"
    return (f"CPU: machine {c['machine_busy']:.0%} busy (of {os.cpu_count()} cores); "
            f"per process, share of one core: {', '.join(parts)}")


# ---------------------------------------------------------------- state: database and Redis

def empty_tables() -> None:
    import sqlalchemy as sa

    from invoicer import db

    with db.engine().begin() as conn:
        conn.execute(sa.text("TRUNCATE " + ", ".join(t.name for t in db.metadata.sorted_tables) + " CASCADE"))


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def reset_database() -> None:
    _reset(DB_NAME)


def flush_redis() -> None:
    _flush(REDIS_URL)


# ---------------------------------------------------------------- load

def write_bodies(name: str, events: list[dict]) -> Path:
    path = TMP / f"{name}.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def load(url: str, bodies: Path, *, count: int | None = None, concurrency: int = 32, rate: float | None = None,
         duration: float = 5.0, timeout: float = 120, meter: dict | None = None) -> dict:
    """Run bench/load.py to completion; with `meter` ({pgid: label}) also measure CPU use during it."""
    argv = [PY, str(BENCH / "load.py"), "--url", url, "--bodies", str(bodies), "--concurrency", str(concurrency)]
    if count:
        argv += ["--count", str(count)]
    if rate:
        argv += ["--rate", str(rate), "--duration", str(duration)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    PROCS.running.append(proc)
    proc.bench_name = "load"  # type: ignore[attr-defined]
    cpu = CpuMeter({**(meter or {}), proc.pid: "load generator"}).start() if meter is not None else None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the load generator did not finish within {timeout:.0f} s") from None
    finally:
        PROCS.stop(proc, grace=2)  # no-op when it has exited; stops it on a timeout or Ctrl-C
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-2000:]}")
    result = json.loads(out)
    if cpu:
        result["cpu"] = cpu.stop()
        result["cpu"].pop("load generator", None)  # gone before the second look; it reports its own
    return result


def wrk_check(url: str, body: str, seconds: int = 5, connections: int = 32) -> dict | None:
    """The trivial route measured by wrk (C, one thread), to show the Python generator is not the limit."""
    if not shutil.which("wrk"):
        return None
    script = TMP / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["content-type"] = "application/json"\n'
                      f"wrk.body = {json.dumps(body)}\n", encoding="utf-8")
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                             capture_output=True, text=True, timeout=seconds + 30).stdout
    except subprocess.TimeoutExpired:
        return None
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            result[f"p{parts[0][:-1]}"] = parts[1]
    return result or None


def fmt_ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def line_closed(label: str, r: dict, unit: str = "req/s") -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    say(f"  {label:<34} {r['rps']:>8.0f} {unit}   p50 {fmt_ms(r['p50_ms']):>9}   p99 {fmt_ms(r['p99_ms']):>9}"
        f"   ({r['requests']} requests, {statuses}{', errors: %d' % r['errors'] if r['errors'] else ''};"
        f" generator CPU {r['generator_cpu_share']:.0%})")


def cpu_per_request(r: dict, label: str) -> str:
    """CPU of one process group per request, in µs: steadier than req/s on a machine others share."""
    share = (r.get("cpu") or {}).get(label)
    return f"{label} CPU per request {share / r['rps'] * 1e6:.0f} µs" if share and r["rps"] else f"{label} CPU: -"


def line_open(label: str, r: dict) -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    say(f"  {label:<34} offered {r['offered_rps']:.0f}/s, achieved {r['achieved_rps']:.0f}/s   "
        f"p50 {fmt_ms(r['p50_ms'])}   p99 {fmt_ms(r['p99_ms'])}   max {fmt_ms(r['max_ms'])}   "
        f"({r['requests']} requests, {statuses}, {r['connections_used']} connections"
        f"{', unfinished: %d' % r['unfinished'] if r['unfinished'] else ''}; generator CPU {r['generator_cpu_share']:.0%})")


def sustained(r: dict) -> bool:
    """An open-loop run kept up: (almost) every request answered 2xx and the tail did not run away."""
    return (r["ok"] >= 0.99 * r["offered_rps"] * r["duration_s"] and not r["unfinished"]
            and r["p99_ms"] is not None and r["p99_ms"] < 1000)


def batches(base: str) -> dict:
    """The ingress's group commits so far (its invoicer_ingress_batch_size histogram): count, events, buckets."""
    import requests

    text = requests.get(f"{base}/metrics", headers={"Authorization": "Bearer bench-metrics-token"}, timeout=10).text
    out = {"count": 0.0, "sum": 0.0, "le": {}}
    for line in text.splitlines():
        if line.startswith("invoicer_ingress_batch_size_"):
            name, value = line.rsplit(" ", 1)
            if name.endswith("_count"):
                out["count"] = float(value)
            elif name.endswith("_sum"):
                out["sum"] = float(value)
            elif 'le="' in name:
                out["le"][name.split('le="')[1].split('"')[0]] = float(value)
    return out


def batch_line(before: dict, after: dict) -> str:
    n, events = after["count"] - before["count"], after["sum"] - before["sum"]
    if not n:
        return "group commits: none seen"
    edges = [k for k in after["le"] if k != "+Inf"]
    shares, below = [], 0.0
    for k in edges:
        upto = after["le"][k] - before["le"].get(k, 0)
        if upto - below:
            shares.append(f"<={float(k):g}: {(upto - below) / n:.0%}")
        below = upto
    return f"group commits: {n:.0f} for {events:.0f} events, mean {events / n:.1f} a batch ({', '.join(shares)})"


# ---------------------------------------------------------------- profiling (--profile)

INGRESS_BUCKETS = [  # first match, scanning the buckets in this order, wins
    ("publish: one Celery message per batch -> Redis", ("_publish (invoicer/ingress.py",)),
    ("persist: one SQLAlchemy + psycopg transaction per batch", ("persist_many (invoicer/ingress.py",)),
    ("validate: pydantic Event.model_validate", ("model_validate",)),
    ("JSON decode", ("json/decoder.py",)),
    ("thread hand-off (anyio run_in_threadpool)", ("anyio/",)),
    ("HTTP + ASGI (uvicorn, starlette, fastapi)", ("uvicorn/", "starlette/", "fastapi/")),
    ("event loop (uvloop, native)", ("asyncio/runners.py",)),
]
def _advance_lock_frame() -> str:
    """py-spy's name for the frame of advance()'s SELECT ... FOR UPDATE on the invoice row."""
    import inspect

    from invoicer import pipeline

    lines, start = inspect.getsourcelines(pipeline.advance)
    at = next((start + i for i, line in enumerate(lines) if "with_for_update" in line), None)
    return f"advance (invoicer/pipeline.py:{at})" if at else "advance (invoicer/pipeline.py:?)"


WORKER_BUCKETS = [
    ("waiting for the next task (pool process idle)", None),  # stacks without celery/app/trace.py
    ("PostgreSQL: lock wait on the invoice row (advance: SELECT ... FOR UPDATE)", (_advance_lock_frame(),)),
    ("PostgreSQL: other statements and commits (waiting in psycopg)", ("psycopg/",)),
    ("PDF render (reportlab)", ("invoicer/pdf.py",)),
    ("file writes incl. fsync (PDF, .eml, sms.jsonl)", ("write_atomic", "Local.send_sms")),
    ("publish next tasks (Celery apply_async -> Redis)", ("apply_async",)),
    ("pydantic (re-parsing the stored event)", ("model_validate",)),
    ("babel formatting", ("babel/",)),
    ("email message build (stdlib email)", ("email/",)),
    ("SQLAlchemy (statement compile, pool, rows)", ("sqlalchemy/",)),
    ("Celery task bookkeeping", ("celery/", "kombu/", "billiard/")),
]


def start_profile(pid: int, seconds: float, name: str, gil: bool = False, idle: bool = False):
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not Path(spy).exists():
        note("py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return None
    out = TMP / f"profile-{name}.txt"
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)), "--rate", "199",
            "--format", "raw", "--output", str(out), "--nonblocking"]
    argv += ["--gil"] if gil else []
    argv += ["--idle"] if idle else []
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(TMP / f"py-spy-{name}.log", "ab"),
                            start_new_session=True)
    proc.bench_name = f"py-spy-{name}"  # type: ignore[attr-defined]
    PROCS.running.append(proc)
    proc.out = out  # type: ignore[attr-defined]
    time.sleep(0.5)  # attach before the load starts
    return proc


def finish_profile(spy, title: str, buckets, top: int = 10, pool_only: bool = False) -> dict | None:
    """Summarize py-spy's collapsed stacks into buckets. With pool_only, only the pool processes count
    (their stacks start with two "process" frames); the worker's parent is summarized on one line."""
    if spy is None:
        return None
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        PROCS.stop(spy)
    if spy in PROCS.running:
        PROCS.running.remove(spy)
    path = spy.out
    if not path.exists():
        say(f"  (no profile written; see {TMP}/py-spy-*.log)")
        return None
    counts, selfs, total = collections.Counter(), collections.Counter(), 0
    parent = parent_idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        n, frames = int(n), stack.split(";")
        if pool_only and not (len(frames) > 1 and frames[1].startswith("process ")):
            parent += n
            parent_idle += n if "poll" in frames[-1] else 0
            continue
        total += n
        for name, needles in buckets:
            if needles is None:
                if not any("celery/app/trace.py" in f for f in frames):
                    counts[name] += n
                    break
            elif any(needle in f for f in frames for needle in needles):
                counts[name] += n
                break
        else:
            counts["other"] += n
        selfs[frames[-1]] += n
    if not total:
        return None
    say(f"  {title} ({total} samples):")
    for name, n in counts.most_common():
        say(f"    {n / total:6.1%}  {name}")
    say("    top frames by own samples:")
    for frame, n in selfs.most_common(top):
        say(f"    {n / total:6.1%}    {frame[:140]}")
    out = {"samples": total, "buckets": {k: round(v / total, 3) for k, v in counts.most_common()}}
    if pool_only and parent:
        out["parent_busy"] = round(1 - parent_idle / parent, 3)
        say(f"    (the worker's parent process, which fetches, acks and dispatches, was busy {out['parent_busy']:.0%}"
            f" of its samples)")
    return out


# ---------------------------------------------------------------- phase 1

def phase_ingress(args, results: dict) -> None:
    from invoicer.sample import generate

    say("\n1. Durable ingress (no workers running)")
    main_bodies = write_bodies("events-main", generate(args.events, seed=7))
    warm_bodies = write_bodies("events-warm", generate(300, seed=9))
    open_bodies = write_bodies("events-open", generate(int(args.rate * args.open_seconds), seed=8))

    # reference first: the same stack, nothing persisted
    port = free_port()
    ref = PROCS.start("refapp", [PY, str(BENCH / "refapp.py"), "--port", str(port)], cwd=BENCH,
                      env={**ENV, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", ref)
    meter = {ref.pid: "reference app"}
    load(f"{base}/trivial", warm_bodies, concurrency=args.concurrency)
    r_triv = load(f"{base}/trivial", main_bodies, concurrency=args.concurrency, meter=meter)
    r_val = load(f"{base}/validate", main_bodies, concurrency=args.concurrency, meter=meter)
    r_triv_open = load(f"{base}/trivial", open_bodies, rate=args.rate, duration=args.open_seconds, meter=meter)
    r_wrk = wrk_check(f"{base}/trivial", main_bodies.read_text(encoding="utf-8").splitlines()[0],
                      connections=args.concurrency)
    PROCS.stop(ref)

    port = free_port()
    ing = PROCS.start("ingress", [PY, "-m", "invoicer.cli", "serve", "--port", str(port), "--log-level", "warning"])
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/readyz", ing)
    url = f"{base}/v1/events"
    meter = {ing.pid: "ingress"}
    load(url, warm_bodies, concurrency=args.concurrency)  # warm-up: connections, pools, code paths
    seen = batches(base)
    r_ing = load(url, main_bodies, concurrency=args.concurrency, meter=meter)
    r_ing["batches"] = batch_line(seen, seen := batches(base))
    r_wide = load(url, write_bodies("events-wide", generate(args.events, seed=14)), concurrency=args.wide,
                  meter=meter)
    r_wide["batches"] = batch_line(seen, seen := batches(base))
    r_open = load(url, open_bodies, rate=args.rate, duration=args.open_seconds, meter=meter)
    r_open["batches"] = batch_line(seen, seen := batches(base))
    r_open_low = None
    if not sustained(r_open):
        low = max(50, int(r_ing["rps"] * 0.8 / 50) * 50)
        low_bodies = write_bodies("events-open-low", generate(int(low * args.open_seconds), seed=10))
        r_open_low = load(url, low_bodies, rate=low, duration=args.open_seconds, meter=meter)
    prof = None
    if args.profile:
        spy = start_profile(ing.pid, 5, "ingress", gil=True)
        load(url, write_bodies("events-profile", generate(max(args.events, 3000), seed=11)),
             concurrency=args.concurrency)
        if spy is not None:
            try:
                spy.wait(30)  # let py-spy finish writing before this server is stopped
            except subprocess.TimeoutExpired:
                pass
        prof_args = (spy, "py-spy --gil of the ingress under the closed-loop load (samples where a thread "
                          "holds the GIL, i.e. Python CPU)", INGRESS_BUCKETS)

    r_two = r_two_wide = r_two_open = None
    if not args.skip_what_if:  # the same app in two processes, each with its own group commit
        PROCS.stop(ing)
        port = free_port()
        ing = PROCS.start("ingress-2proc", [PY, "-m", "invoicer.cli", "serve", "--workers", "2", "--port", str(port),
                                            "--log-level", "warning"])
        url = f"http://127.0.0.1:{port}/v1/events"
        wait_http(f"http://127.0.0.1:{port}/readyz", ing)
        meter = {ing.pid: "ingress x2"}
        load(url, write_bodies("events-warm2", generate(300, seed=13)), concurrency=args.concurrency)
        r_two = load(url, write_bodies("events-what-if", generate(args.events, seed=12)),
                     concurrency=args.concurrency, meter=meter)
        r_two_wide = load(url, write_bodies("events-what-if-wide", generate(args.events, seed=15)),
                          concurrency=args.wide, meter=meter)
        r_two_open = load(url, write_bodies("events-what-if-open", generate(int(args.rate * args.open_seconds),
                                                                            seed=16)),
                          rate=args.rate, duration=args.open_seconds, meter=meter)

    # the end-to-end phase starts from exactly the N main events: empty the store and the queues, post again
    empty_tables()
    flush_redis()
    r_repost = load(url, main_bodies, concurrency=args.concurrency)
    PROCS.stop(ing)

    say(f"  reference: bench/refapp.py on the same FastAPI/uvicorn stack, {args.concurrency} connections")
    line_closed("trivial POST (closed loop)", r_triv)
    line_closed("validate-only POST (closed loop)", r_val)
    line_open("trivial POST (open loop)", r_triv_open)
    if r_wrk:
        say(f"  {'trivial POST measured by wrk':<34} {r_wrk['rps']:>8.0f} req/s   p50 {r_wrk.get('p50', '-'):>9}"
            f"   p99 {r_wrk.get('p99', '-'):>9}   (C load generator: bench/load.py's own ceiling is above)")
    say(f"    {cpu_line(r_triv['cpu'])}   [trivial, closed loop]")
    say(f"    {cpu_per_request(r_triv, 'reference app')} [trivial]; {cpu_per_request(r_val, 'reference app')}"
        f" [validate-only]")
    say(f"  ingress: invoicer serve, POST /v1/events = validate, then a group commit (one INSERT+COMMIT to "
        f"PostgreSQL and one published message to Redis per batch); accepted = committed")
    line_closed(f"accepted events ({args.concurrency} conns)", r_ing, "ev/s")
    say(f"    {r_ing['batches']}")
    say(f"    {cpu_line(r_ing['cpu'])}; {cpu_per_request(r_ing, 'ingress')}")
    line_closed(f"accepted events ({args.wide} conns)", r_wide, "ev/s")
    say(f"    {r_wide['batches']}")
    say(f"    {cpu_line(r_wide['cpu'])}; {cpu_per_request(r_wide, 'ingress')}")
    line_open("fixed offered rate (open loop)", r_open)
    say(f"    {r_open['batches']}")
    if sustained(r_open):
        say(f"  => at {args.rate:.0f} events/s offered the ingress keeps up: p99 {fmt_ms(r_open['p99_ms'])}")
    else:
        why = (f"its closed-loop maximum is {r_ing['rps']:.0f} ev/s" if r_ing["rps"] < args.rate * 1.05
               else "its tail latency ran away at that rate")
        say(f"  => {args.rate:.0f} events/s is NOT reachable on this machine ({why}); "
            f"the p99 above is that of a growing queue")
        if r_open_low:
            line_open("fixed offered rate, ~80% of max", r_open_low)
    if r_two:
        say("  invoicer serve --workers 2 (two uvicorn processes on one port, a group commit each)")
        line_closed(f"accepted events ({args.concurrency} conns)", r_two, "ev/s")
        say(f"    {cpu_line(r_two['cpu'])}")
        line_closed(f"accepted events ({args.wide} conns)", r_two_wide, "ev/s")
        say(f"    {cpu_line(r_two_wide['cpu'])}; {cpu_per_request(r_two_wide, 'ingress x2')}")
        line_open("fixed offered rate (open loop)", r_two_open)
    best = max(r["rps"] for r in (r_ing, r_wide, r_two, r_two_wide) if r)
    met = "met" if best >= 3000 else "NOT met"
    kept = [r["p99_ms"] for r in (r_open, r_two_open) if r and sustained(r)]
    p99 = min(kept) if kept else None
    say(f"  => target (issue 9): 3000 accepted ev/s closed loop: {met} (best {best:.0f}); p99 under 20 ms at "
        f"{args.rate:.0f}/s offered: {'met' if p99 is not None and p99 < 20 else 'NOT met'} "
        f"(best sustained p99 {fmt_ms(p99)})")
    line_closed("phase 2 input, posted again" + (" (x2)" if r_two else ""), r_repost, "ev/s")
    if args.profile and prof_args[0] is not None:
        prof = finish_profile(*prof_args)
    results["ingress"] = {"reference_trivial": r_triv, "reference_validate": r_val,
                          "reference_trivial_open": r_triv_open, "reference_wrk": r_wrk, "closed": r_ing,
                          "closed_wide": r_wide, "closed_repeat": r_repost, "two_processes": r_two,
                          "two_processes_wide": r_two_wide, "two_processes_open": r_two_open, "open": r_open,
                          "open_80pct": r_open_low,
                          "rate_reachable": sustained(r_open), "profile": prof}


# ---------------------------------------------------------------- phase 2

def deadlocks() -> int:
    import sqlalchemy as sa

    from invoicer import db

    with db.engine().connect() as conn:
        return conn.execute(sa.text("SELECT deadlocks FROM pg_stat_database WHERE datname = :d"),
                            {"d": DB_NAME}).scalar_one()


def queue_lengths() -> dict:
    from invoicer.tasks import QUEUES

    rc = redis_client()
    return {q: rc.llen(q) for q in QUEUES if rc.llen(q)}


def phase_pipeline(args, results: dict) -> None:
    from sqlalchemy import func, select

    from invoicer import db
    from invoicer.config import settings
    from invoicer.demo import busy

    say("\n2. End to end (2 worker processes x --concurrency 2, no beat)")
    with db.engine().connect() as conn:
        stored = conn.execute(select(func.count()).select_from(db.events)).scalar_one()
    queued = sum(queue_lengths().values())
    deadlocks_before = deadlocks()
    workers = [PROCS.start(f"worker{i}", [PY, "-m", "invoicer.cli", "worker", "--concurrency", "2",
                                          "--hostname", f"bench{i}@%h", "--log-level", "warning"])
               for i in range(2)]
    meter = CpuMeter({w.pid: "workers" for w in workers})
    started = time.monotonic()
    first = spy = None
    initial = left = busy(db)
    last_change, last_value = started, left
    stalled = False
    deadline = started + args.e2e_timeout
    while time.monotonic() < deadline:
        left = busy(db)
        now = time.monotonic()
        if left != last_value:
            last_change, last_value = now, left
            if first is not None:
                meter.note()
        if first is None and left != initial:
            first = now
            meter.start()
            if args.profile:
                spy = start_profile(workers[0].pid, args.profile_seconds, "worker", idle=True)
        if left == 0:
            break
        if first and now - last_change > args.stall and not queue_lengths():
            stalled = True  # nothing queued, nothing moving: what is left is stuck
            break
        if any(w.poll() is not None for w in workers):
            raise RuntimeError(f"a worker exited:\n{log_tail(workers[0])}\n{log_tail(workers[1])}")
        time.sleep(0.2)
    ended = last_change if stalled else time.monotonic()
    cpu = meter.stop(at_note=stalled) if first else None  # a stall's idle tail is left out
    prof = finish_profile(spy, "py-spy --idle of worker bench0's 2 pool processes (wall time: where a pool "
                               "process spends its time)", WORKER_BUCKETS, pool_only=True) if spy else None
    PROCS.stop(*workers)
    deadlocked = deadlocks() - deadlocks_before
    with db.engine().connect() as conn:
        import sqlalchemy as sa

        deadlock_timeout = conn.execute(sa.text("SHOW deadlock_timeout")).scalar_one()

    with db.engine().connect() as conn:
        events = dict(conn.execute(select(db.events.c.status, func.count()).group_by(db.events.c.status)).all())
        jobs = dict(conn.execute(select(db.jobs.c.state, func.count()).group_by(db.jobs.c.state)).all())
        deliv = conn.execute(select(db.deliveries.c.kind, db.deliveries.c.status, func.count())
                             .group_by(db.deliveries.c.kind, db.deliveries.c.status)).all()
        attempts = conn.execute(select(func.count()).select_from(db.attempts)).scalar_one()
        invoices = conn.execute(select(func.count()).select_from(db.invoices)).scalar_one()
        invoices_done = conn.execute(select(func.count()).select_from(db.invoices)
                                     .where(db.invoices.c.stage == "done")).scalar_one()
        per_kind = conn.execute(select(db.deliveries.c.kind, func.avg(db.attempts.c.duration_ms))
                                .join(db.deliveries, db.deliveries.c.id == db.attempts.c.delivery_id)
                                .group_by(db.deliveries.c.kind)).all()
    by = collections.Counter({(k, s): n for k, s, n in deliv})
    processed = events.get("processed", 0) + events.get("failed", 0)
    stuck = sum(n for (k, s), n in by.items() if s in ("running", "pending", "retry"))
    steady = (ended - first) if first else None
    tasks = queued + attempts  # one map-job task per queued message (a batch of events), one per delivery attempt
    r = {"events_stored": stored, "queued_messages": queued, "finished": left == 0, "stalled": stalled,
         "left_open": left, "stuck_deliveries": stuck, "deadlocks": deadlocked,
         "deadlock_timeout": deadlock_timeout, "lease_s": settings().task_time_limit + 5,
         "wall_s": round(ended - started, 2), "steady_s": round(steady, 2) if steady else None,
         "startup_s": round(first - started, 2) if first else None,
         "events_processed": processed, "jobs": jobs, "invoices": invoices, "invoices_done": invoices_done,
         "attempts": attempts, "deliveries": {f"{k}.{s}": n for (k, s), n in sorted(by.items())},
         "avg_attempt_ms": {k: round(float(v), 1) for k, v in per_kind},
         "events_per_s": round(processed / steady, 1) if steady else None,
         "events_per_s_incl_startup": round(processed / (ended - started), 1),
         "invoices_per_s": round(invoices_done / steady, 1) if steady else None,
         "tasks": tasks, "tasks_per_s": round(tasks / steady, 1) if steady else None, "cpu": cpu, "profile": prof}
    results["pipeline"] = r
    say(f"  {stored} events stored by phase 1 ({queued} task messages queued), then 2 workers started")
    if stalled:
        say(f"  STALLED: no progress for {args.stall:.0f} s with nothing queued; {stuck} deliveries stuck in "
            f"'running' ({deadlocked} PostgreSQL deadlocks during the run: a delivery whose final transaction "
            f"was the deadlock victim keeps its lease, claimed_until = task_time_limit + 5 s, so its retry "
            f"is put off until the lease ends). Rates below stop at the last progress.")
    elif left:
        say(f"  NOT finished within {args.e2e_timeout:.0f} s: {left} steps still open; rates below are partial")
    say(f"  {'events through the pipeline':<34} {r['events_per_s'] or 0:>8.1f} ev/s   "
        f"({processed} events in {r['steady_s']} s from the first processed event to the last progress; "
        f"{r['events_per_s_incl_startup']} ev/s counting the {r['startup_s']} s worker start-up)")
    say(f"  {'invoices completed (stage done)':<34} {r['invoices_per_s'] or 0:>8.1f} inv/s  "
        f"({invoices_done} of {invoices} invoices; jobs {', '.join(f'{k} {v}' for k, v in sorted(jobs.items()))})")
    say(f"  {'map-job steps + delivery attempts':<34} {r['tasks_per_s'] or 0:>8.1f} /s     ({queued} map-job messages for "
        f"{processed} events + {attempts} delivery attempts; a delivery task carries up to 50 attempts)")
    kinds = ", ".join(f"{k} {by[(k, 'done')]}" for k in ("invoice", "pdf", "email", "sms"))
    say(f"  deliveries done: {kinds}; skipped {sum(n for (k, s), n in by.items() if s == 'skipped')}, "
        f"stuck {stuck}, dead {sum(n for (k, s), n in by.items() if s == 'dead')}; "
        f"PostgreSQL deadlocks {deadlocked}")
    say("  mean time inside the side effect per attempt (attempts.duration_ms): "
        + ", ".join(f"{k} {v} ms" for k, v in sorted(r["avg_attempt_ms"].items())))
    if cpu:
        say(f"    {cpu_line(cpu)}")


# ---------------------------------------------------------------- phase 3

def run_chains(count: int, timeout: float, events: bool) -> dict:
    """Publish `count` no-op chains, start 2 workers, time them until every chain has finished."""
    import noop_celery

    flush_redis()
    noop_celery.app.conf.task_send_sent_event = events
    t = time.monotonic()
    noop_celery.publish(count)
    publish_s = time.monotonic() - t
    rc = redis_client()
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)]), "BENCH_TASK_EVENTS": "1" if events else "0"}
    workers = [PROCS.start(f"noop{i}", [PY, "-m", "celery", "-A", "noop_celery", "worker", "-Q",
                                        ",".join(noop_celery.QUEUES), "-c", "2", "-P", "prefork", "-l", "warning",
                                        "--without-gossip", "--without-mingle", "-n", f"benchnoop{i}@%h"],
                           cwd=BENCH, env=env) for i in range(2)]
    meter = CpuMeter({w.pid: "workers" for w in workers})
    started = time.monotonic()
    first = None
    done = first_done = 0
    deadline = started + timeout
    while time.monotonic() < deadline:
        done = int(rc.get(noop_celery.COUNTER) or 0)
        if first is None and done:
            first = time.monotonic()
            first_done = done
            meter.start()
        if done >= count:
            break
        if any(w.poll() is not None for w in workers):
            raise RuntimeError(f"a no-op worker exited:\n{log_tail(workers[0])}")
        time.sleep(0.05)
    ended = time.monotonic()
    cpu = meter.stop() if first else None
    PROCS.stop(*workers)
    steady = ended - first if first else None
    cps = (done - first_done) / steady if steady else None
    return {"chains": count, "done": done, "finished": done >= count, "task_events": events,
            "publish_s": round(publish_s, 2), "wall_s": round(ended - started, 2),
            "steady_s": round(steady, 2) if steady else None,
            "chains_per_s": round(cps, 1) if cps else None, "tasks_per_s": round(cps * 4, 1) if cps else None,
            "cpu": cpu}


def phase_celery(args, results: dict) -> None:
    say("\n3. Raw Celery: chains of four no-op tasks on four queues (2 worker processes x -c 2, invoicer's settings)")
    sys.path.insert(0, str(BENCH))
    count = args.chains or args.events
    r = run_chains(count, args.celery_timeout, events=True)
    off = run_chains(count, args.celery_timeout, events=False) if not args.skip_events_off else None
    results["celery"] = {**r, "task_events_off": off}
    for label, x in (("chains (4 tasks each)", r), ("same, task events off", off)):
        if x is None:
            continue
        if not x["finished"]:
            say(f"  NOT finished within {args.celery_timeout:.0f} s: {x['done']}/{x['chains']} chains; rate is partial")
        say(f"  {label:<34} {x['chains_per_s'] or 0:>8.1f} chains/s = {x['tasks_per_s'] or 0:.0f} tasks/s   "
            f"({x['done']} chains, {x['steady_s']} s from the first finished chain; publishing them took "
            f"{x['publish_s']:.1f} s from one process)")
        if x["cpu"]:
            say(f"    {cpu_line(x['cpu'])}")


# ---------------------------------------------------------------- phase 4

def verdict(results: dict) -> str:
    ing = results["ingress"]["closed"]["rps"]
    ref = results["ingress"]["reference_trivial"]["rps"]
    pipe = results["pipeline"]
    ev, tasks = pipe["events_per_s"] or 0, pipe["tasks_per_s"] or 0
    raw = results["celery"]["tasks_per_s"] or 0
    chains = (results["celery"].get("task_events_off") or results["celery"])["chains_per_s"] or 0
    share = tasks / raw if raw else 0
    if ev < ing:
        where = ("inside the task bodies, not in Celery/Redis dispatch" if share < 0.5
                 else "largely Celery/Redis dispatch itself (the pipeline runs near the raw Celery task rate)")
        extra = ""
        if pipe.get("deadlocks"):
            extra = (f"; {pipe['deadlocks']} PostgreSQL deadlocks on the invoice row in advance() "
                     f"(each holds two pool processes for deadlock_timeout = {pipe.get('deadlock_timeout')} and "
                     f"leaves a delivery waiting out its {pipe.get('lease_s', 125)} s lease)")
        prof = (pipe.get("profile") or {}).get("buckets")
        if prof:
            top = [f"{k} {v:.0%}" for k, v in list(prof.items())[:3]]
            extra += "; pool time: " + ", ".join(top)
        return (f"BOTTLENECK: the workers. The pipeline completes {ev:.0f} events/s while the ingress accepts "
                f"{ing:.0f}/s ({ing / max(ev, 0.1):.0f}x more) and raw Celery runs {chains:.0f} chains of four "
                f"no-op tasks a second ({ev / chains if chains else 0:.0%}); it makes {tasks:.0f} event steps and "
                f"delivery attempts a second where the same Celery setup runs {raw:.0f} no-op tasks/s "
                f"({share:.0%}), so the time is {where}{extra}.")
    return (f"BOTTLENECK: the ingress. It accepts {ing:.0f} events/s (the bare framework answers {ref:.0f} req/s) "
            f"while the workers complete {ev:.0f} events/s.")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=3000, help="events to post and process (default 3000)")
    p.add_argument("--concurrency", type=int, default=32, help="load-generator connections, closed loop (32)")
    p.add_argument("--wide", type=int, default=128, help="connections of the second closed-loop run (128)")
    p.add_argument("--rate", type=float, default=1000, help="offered rate of the open-loop run, per s (1000)")
    p.add_argument("--open-seconds", type=float, default=5, help="length of the open-loop run (5 s)")
    p.add_argument("--chains", type=int, help="no-op chains for phase 3 (default: --events)")
    p.add_argument("--e2e-timeout", type=float, default=150, help="time limit of phase 2 (150 s)")
    p.add_argument("--celery-timeout", type=float, default=60, help="time limit of phase 3 (60 s)")
    p.add_argument("--skip-events-off", action="store_true",
                   help="phase 3: skip the second run with Celery task events switched off")
    p.add_argument("--skip-what-if", action="store_true",
                   help="phase 1: skip the ingress run under 2 uvicorn processes")
    p.add_argument("--stall", type=float, default=8,
                   help="phase 2 stops when nothing is queued and nothing moved for this long (8 s)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the ingress (extra closed-loop pass) and one worker (phase 2); summarize")
    p.add_argument("--profile-seconds", type=int, default=10)
    p.add_argument("--ingress-only", action="store_true", help="phase 1 only")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--keep", action="store_true", help=f"keep the scratch folder (logs, PDFs) under {tempfile.gettempdir()}")
    try:
        args = p.parse_args()
    except SystemExit:
        shutil.rmtree(TMP, ignore_errors=True)
        raise

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()}, "events": args.events}
    say(f"invoicer bench {results['date']}: {args.events} events, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; PostgreSQL {DB_NAME}, Redis {REDIS_URL}; scratch {TMP}")
    t0 = time.monotonic()
    try:
        flush_redis()
        reset_database()
        phase_ingress(args, results)
        if not args.ingress_only:
            phase_pipeline(args, results)
            phase_celery(args, results)
            say("\n4. " + verdict(results))
        say(f"\n(total {time.monotonic() - t0:.0f} s)")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        return 0
    except KeyboardInterrupt:
        say("\ninterrupted: stopping every process started here")
        return 130
    except RuntimeError as exc:
        say(f"\nbench failed: {exc}\n(logs in {TMP})")
        args.keep = True
        return 1
    finally:
        PROCS.stop_all()
        try:
            flush_redis()
        except Exception:
            pass
        if not args.keep:
            shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
