"""Benchmark: one company's burst of jobs against one vendor's rate limits (the sandbox simulators).

    .venv/bin/python bench/burst.py [--jobs N] [--platform quickbooks|xero|stripe|all] [--customers 50]
                                    [--timeout S] [--no-beat] [--json FILE] [--keep]

For each platform: a tenants file with one tenant, `burst-co`, on just that platform
(`sandbox.tenant("burst-co", slug)`, the vendor simulator running as threads in this process), the
ingress, 2 worker processes (`invoicer worker --concurrency 4`) and beat; then a burst of N jobs for
that tenant posted through the ingress (events from `invoicer.sample.generate`, every event's tenant
set to burst-co, each job's customer drawn from a pool of --customers repeat customers). Measured:
invoices created on the platform per minute (sampled from the simulator's own store), the time to
drain (nothing left for the pipeline to do), every vendor call the simulator received by kind, the
429 answers it sent (the target is 0), and the least time the vendor's limits allow for the calls
that were made (plus the least time invoicer's own limiter allows for them).

N defaults to 1000 for QuickBooks and Stripe, 200 for Xero (Xero allows 60 calls a minute and 5,000 a
day per organisation and invoicer's limiter holds it to 50 a minute and, once 200 calls are spent,
4,800 a day = one call per 18 s; 1000 jobs would take hours, so the full figure is estimated from the
measured run).

Uses its own PostgreSQL database `invoicer_burst` (dropped and recreated before each platform, left
for inspection at the end) and Redis database 6 (flushed before each platform and at the end: the
broker and the shared rate limiter's buckets), never what bench/run.py (invoicer_bench, Redis 5) or
the tests use. Every process it starts runs in its own session and is stopped on exit, Ctrl-C
included. Every phase has a time limit. docs/benchmarks.md ("Vendor bursts") records the figures.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import os
import platform as platform_mod
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (PG_SERVER, PY, Procs, finish, flush_redis as _flush, free_port, log_tail, note,  # noqa: E402
                    loadavg, reset_database as _reset, say, wait_http,
                    wait_workers as _wait_workers)

DB_NAME = "invoicer_burst"
DB_URL = f"{PG_SERVER}/{DB_NAME}"
REDIS_URL = "redis://127.0.0.1:6379/6"
TENANT = "burst-co"
PLATFORMS = ("quickbooks", "xero", "stripe")
DEFAULT_JOBS = {"quickbooks": 1000, "stripe": 1000, "xero": 200}
DEFAULT_TIMEOUT = {"quickbooks": 900, "stripe": 1500, "xero": 3600}  # drain limit, seconds
FULL_BURST = 1000

TMP = Path(tempfile.mkdtemp(prefix="invoicer-burst-"))
ENV = {
    **os.environ,
    "INVOICER_DATABASE_URL": DB_URL,
    "INVOICER_BROKER_URL": REDIS_URL,
    "INVOICER_SECRET_KEY": "burst-link-key",
    "PYTHONUNBUFFERED": "1",
}
os.environ.update({k: v for k, v in ENV.items() if k.startswith("INVOICER_")})
PROCS = Procs(TMP, ENV)

# The vendors' own limits (what the simulators enforce): (bucket, calls, window s). Stripe's search
# endpoints count against both the key's limit and their own.
VENDOR_LIMITS = {
    "quickbooks": {"realm": [(10, 1.0), (500, 60.0)]},
    "xero": {"org": [(60, 60.0), (5000, 86400.0)]},
    "stripe": {"key": [(25, 1.0)], "search": [(20, 1.0)]},
}
VENDOR_TEXT = {
    "quickbooks": "10/s and 500/min per realm, 10 concurrent",
    "xero": "60/min and 5000/day per organisation, 5 concurrent",
    "stripe": "25/s per test key, search 20/s",
}
# The workers: "flat" is 2 x prefork --concurrency 4 on every queue; "split" is docker-compose.yml's
# deployment, a prefork worker for the CPU-bound queues and a threads worker for the platform calls and
# messages, so a pool process waiting for the vendor's limiter never holds up the mapping of jobs.
TOPOLOGY = {
    "flat": [["--concurrency", "4"], ["--concurrency", "4"]],
    "split": [["--pool", "prefork", "--concurrency", "2", "--queues", "ingest,render,beat"],
              ["--pool", "threads", "--concurrency", "8", "--queues", "invoices,notify"]],
}
TOPOLOGY_TEXT = {"flat": "2 workers x prefork --concurrency 4, every queue",
                 "split": "prefork -c 2 on ingest,render,beat + threads -c 8 on invoices,notify"}


def xero_floor(invoices: int, customers: int, latency_s: float | None) -> list[str]:
    """The least Xero's published limits allow for `invoices` new invoices over `customers` new
    contacts, and how it is derived; then what invoicer's own limiter allows for the same calls."""
    import math

    from invoicer.providers.xero import adapter

    puts = math.ceil(invoices / adapter.BATCH)
    lookups = math.ceil(customers / adapter.LOOKUP)
    creates = math.ceil(customers / adapter.BATCH)
    calls = puts + lookups + creates
    rounds = 1 + 1 + math.ceil(puts / adapter.CONCURRENCY)  # lookups in parallel, then creates, then the PUTs
    minute, day = VENDOR_LIMITS["xero"]["org"]
    waits = max(0, math.ceil(calls / minute[0]) - 1) * minute[1]
    (m_count, m_per, m_burst), _ = our_limits("xero")["org"]
    ours = max(0.0, (calls - m_burst) * m_per / m_count)
    lat = f" x {latency_s:.2f} s (this run's mean call) = {rounds * latency_s:.1f} s" if latency_s else ""
    return [
        f"{invoices} invoices over {customers} new contacts need at least {calls} calls: {puts} PUT /Invoices "
        f"({adapter.BATCH} each, summarizeErrors=false), {lookups} GET /Contacts (where= for {adapter.LOOKUP} each) "
        f"and {creates} PUT /Contacts ({adapter.BATCH} each)",
        f"{calls} calls against {minute[0]} a minute: the minute limit makes them wait {waits:.0f} s; {calls} of "
        f"{day[0]} a day; {adapter.CONCURRENCY} at once: {rounds} round trips one after another{lat}",
        f"=> the floor at Xero's limits is those {rounds} round trips, not a minute; invoicer's limiter "
        f"({m_count}/{m_per:g} s after a burst of {m_burst}) lets {calls} calls through in {ours:.1f} s",
    ]


def our_limits(slug: str) -> dict[str, list[tuple[int, float, int]]]:
    """invoicer's own limiter for a platform, read from the adapter: bucket -> [(count, per s, burst)]."""
    if slug in ("quickbooks", "xero"):
        from importlib import import_module

        rates = import_module(f"invoicer.providers.{slug}.adapter").RATES
        return {"realm" if slug == "quickbooks" else "org": [(r.count, r.per, r.burst or r.count) for r in rates]}
    from invoicer.providers.stripe.adapter import SEARCH_RATES, Stripe

    return {b: [(r.count, r.per, r.burst or r.count) for r in rates]
            for b, rates in (("key", Stripe.rates("sk_test_burst")), ("search", SEARCH_RATES))}


def limits_text(limits: dict) -> str:
    return " + ".join(f"{b} {c}/{p:g} s burst {u}" for b, rates in limits.items() for c, p, u in rates)


# ---------------------------------------------------------------- state: database and Redis

def reset_database() -> None:
    _reset(DB_NAME)


def flush_redis() -> None:
    _flush(REDIS_URL)


# ---------------------------------------------------------------- the burst

def make_events(jobs: int, customers: int, seed: int = 7) -> tuple[list[dict], int]:
    """Events for exactly `jobs` jobs of tenant burst-co (updates and signatures of those jobs
    included), each job's customer drawn from a pool of `customers` distinct repeat customers."""
    from invoicer.sample import generate

    count = jobs + jobs // 2 + 50
    while True:
        events = generate(count, seed=seed)
        order = list(dict.fromkeys(e["job"]["id"] for e in events))
        if len(order) >= jobs:
            break
        count *= 2
    pool, ids, names = [], set(), set()
    for e in events:  # distinct ids and names: one company's customers
        c = e["customer"]
        if c["id"] not in ids and c["name"].casefold() not in names:
            ids.add(c["id"])
            names.add(c["name"].casefold())
            pool.append(c)
        if len(pool) == customers:
            break
    rng = random.Random(seed)
    chosen = {job: pool[rng.randrange(len(pool))] for job in order[:jobs]}
    out = []
    for e in events:
        if e["job"]["id"] in chosen:
            e = copy.deepcopy(e)
            e["tenant"] = TENANT
            e["customer"] = copy.deepcopy(chosen[e["job"]["id"]])
            out.append(e)
    return out, len({c["id"] for c in chosen.values()})


class CallLog:
    """Every request the simulator answers: (arrival, method, path, query, status, limit named).
    Wraps the simulator instance's `handle` (all vendor limits answer 429 from inside it)."""

    def __init__(self, sim):
        self.calls: list[tuple] = []
        self.batches: list[int] = []
        self.durations: list[float] = []  # seconds the simulator took to answer each PUT /Invoices
        orig = sim.handle

        def handle(request):
            t = time.monotonic()
            reply = orig(request)
            if request.method == "PUT" and request.path.endswith("/Invoices"):
                self.durations.append(time.monotonic() - t)
            self.calls.append((t, request.method, request.path, request.query, reply.status,
                               (reply.headers or {}).get("X-Rate-Limit-Problem")))
            if request.method == "PUT" and request.path.endswith("/Invoices") and reply.status == 200:
                try:  # invoices per Xero request (the pipeline batches pending siblings)
                    self.batches.append(len(json.loads(request.body).get("Invoices") or [None]))
                except (ValueError, AttributeError):
                    pass
            return reply

        sim.handle = handle


class Sampler(threading.Thread):
    """(monotonic time, invoices stored by the simulator) every `interval` s."""

    def __init__(self, count, interval: float = 0.5):
        super().__init__(daemon=True)
        self.count, self.interval = count, interval
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.samples.append((time.monotonic(), self.count()))
            except RuntimeError:  # a dict resized under us: take the next sample
                pass
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        self.samples.append((time.monotonic(), self.count()))


def invoice_counter(slug: str, sim):
    if slug == "quickbooks":
        return lambda: len(sim.invoices)
    if slug == "xero":
        return lambda: len(sim.org().invoices)

    def stripe_count() -> int:  # finalised invoices (a draft is not an invoice yet)
        with sim._state:
            return sum(1 for i in sim.invoices.values() if i["status"] != "draft")
    return stripe_count


def category(slug: str, method: str, path: str, query: dict) -> str:
    """What a vendor call was for."""
    if slug == "quickbooks":
        if not path.startswith("/v3/"):
            return "token"
        if path.endswith("/query"):
            q = (query.get("query") or [""])[0].lower()
            return "customer lookup" if " from customer" in q else "invoice lookup" if " from invoice" in q else "query"
        if method == "POST" and path.endswith("/customer"):
            return "customer create"
        if method == "POST" and path.endswith("/invoice"):
            return "invoice create"
        return f"{method} {path.split('/', 4)[-1]}"
    if slug == "xero":
        if path == "/connect/token":
            return "token"
        if path.endswith("/Contacts"):
            return "customer lookup" if method == "GET" else "customer create"
        if path.endswith("/Invoices"):
            return "invoice create" if method == "PUT" else "invoice lookup"
        return f"{method} {path.rsplit('/', 1)[-1]}"
    if path == "/v1/customers/search" or (method == "GET" and path == "/v1/customers"):
        return "customer lookup"
    if method == "POST" and path == "/v1/customers":
        return "customer create"
    if path in ("/v1/invoices/search",) or (method == "GET" and path == "/v1/invoices"):
        return "invoice lookup"
    if method == "POST" and path == "/v1/invoices":
        return "invoice create (draft)"
    if method == "GET" and re.fullmatch(r"/v1/invoices/[^/]+", path):
        return "invoice read"
    if path == "/v1/invoiceitems":
        return "item create" if method == "POST" else "item list"
    if path.endswith("/finalize"):
        return "invoice finalize"
    return f"{method} {path}"


def limited_call(slug: str, path: str) -> bool:
    """Does this call count against the vendor's limits? (the token endpoints do not)"""
    return path.startswith({"quickbooks": "/v3/", "xero": "/api.xro/", "stripe": "/v1/"}[slug])


def buckets(slug: str, path: str) -> list[str]:
    if slug == "stripe":
        return ["key", "search"] if path.endswith("/search") else ["key"]
    return ["realm"] if slug == "quickbooks" else ["org"]


def vendor_min_seconds(slug: str, paths: list[str]) -> float:
    """Least time from the first call to the last one under the vendor's sliding-window limits, the
    calls made in that order as early as the limits allow (request latency left out)."""
    hist: dict[tuple, list[float]] = collections.defaultdict(list)
    t = 0.0
    for path in paths:
        for b in buckets(slug, path):
            for count, window in VENDOR_LIMITS[slug][b]:
                h = hist[(b, count, window)]
                if len(h) >= count:
                    t = max(t, h[-count] + window)
        for b in buckets(slug, path):
            for count, window in VENDOR_LIMITS[slug][b]:
                hist[(b, count, window)].append(t)
    return t


def our_min_seconds(slug: str, paths: list[str]) -> float:
    """Least time invoicer's own GCRA limiter needs for the same calls: the k-th call of a bucket
    (0-based) may go at (k + 1 - burst) x interval, never earlier."""
    n = collections.Counter(b for p in paths for b in buckets(slug, p))
    worst = 0.0
    for b, rates in our_limits(slug).items():
        for count, per, burst in rates:
            if n[b] > burst:
                worst = max(worst, (n[b] - burst) * per / count)
    return worst


def classify_429(slug: str, calls: list[tuple]) -> collections.Counter:
    """Which limit each 429 hit: Xero says so; for the others, from the accepted calls before it."""
    out: collections.Counter = collections.Counter()
    ok = [c[0] for c in calls if c[4] != 429 and limited_call(slug, c[2])]
    import bisect

    for t, _, path, _, status, problem in calls:
        if status != 429:
            continue
        if problem:
            out[problem] += 1
            continue
        i = bisect.bisect_left(ok, t)
        last_s = i - bisect.bisect_right(ok, t - 1.0)
        if slug == "quickbooks":
            last_m = i - bisect.bisect_right(ok, t - 60.0)
            out["minute" if last_m >= 500 else "second" if last_s >= 10 else "concurrent"] += 1
        else:
            out["second" if last_s >= 25 else "search"] += 1
    return out


def per_minute(samples: list[tuple[float, int]], t0: float) -> list[int]:
    """Invoices the simulator stored in each whole minute after t0 (the last minute may be partial)."""
    if not samples:
        return []
    end = samples[-1][0]
    out, k, prev = [], 1, 0
    j = 0
    while t0 + (k - 1) * 60 < end:
        mark = t0 + k * 60
        while j + 1 < len(samples) and samples[j + 1][0] <= mark:
            j += 1
        value = samples[j][1]
        out.append(value - prev)
        prev = value
        k += 1
    return out


def best_window(samples: list[tuple[float, int]], width: float = 60.0) -> int:
    best, j = 0, 0
    for i, (t, n) in enumerate(samples):
        while samples[j][0] < t - width:
            j += 1
        best = max(best, n - samples[j][1])
    return best


def run_platform(slug: str, jobs: int, args) -> dict:
    import requests  # noqa: F401  (fail early when the venv is not the one)
    import yaml
    from sqlalchemy import func, select

    from invoicer import config, db, sandbox
    from invoicer.demo import busy
    from invoicer.sender import post_all

    folder = TMP / slug
    folder.mkdir(parents=True, exist_ok=True)
    say(f"\n== {slug}: a burst of {jobs} jobs for one tenant on {slug} only "
        f"(vendor limits: {VENDOR_TEXT[slug]}; invoicer's limiter, GCRA: {limits_text(our_limits(slug))})")
    if slug == "xero" and jobs < FULL_BURST:
        (m_count, m_per, m_burst), (d_count, d_per, d_burst) = our_limits("xero")["org"]
        say(f"  {jobs} jobs by default, not {FULL_BURST}: Xero allows 60 calls a minute and 5,000 a day per organisation; "
            f"invoicer's limiter lets {m_count} a minute through in bursts of {m_burst}, and {d_count} a day in bursts "
            f"of {d_burst}, i.e. one call per {d_per / d_count:g} s once {d_burst} calls are spent; every new customer "
            f"costs contact calls (a lookup, then a create) before its first invoice. The {FULL_BURST}-job time is "
            f"estimated below from this run; --jobs {FULL_BURST} measures it.")
    flush_redis()
    reset_database()

    events, customers = make_events(jobs, args.customers, seed=args.seed)
    kinds = collections.Counter(e["type"] for e in events)
    say(f"  {len(events)} events for {jobs} jobs ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
        f"{customers} distinct customers (a pool of {args.customers} repeat customers)")

    box = sandbox.start()
    sim = getattr(box, slug).sim
    calls = CallLog(sim)
    sampler = None
    try:
        tenants = {TENANT: box.tenant(TENANT, slug)}
        (folder / "var").mkdir(exist_ok=True)
        tenants_file = folder / "tenants.yaml"
        tenants_file.write_text(box.tenants_yaml(tenants), encoding="utf-8")
        env = {**ENV, **box.env, "INVOICER_CONFIG": str(tenants_file), "INVOICER_VAR_DIR": str(folder / "var")}
        os.environ.update({k: v for k, v in env.items() if k.startswith("INVOICER_")})
        config.reset()
        config.tenants()
        box.seed(db.engine(), yaml.safe_load(tenants_file.read_text())["tenants"])

        port = free_port()
        me = [PY, "-m", "invoicer.cli"]
        env["INVOICER_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        ingress = PROCS.start("ingress", me + ["serve", "--port", str(port), "--log-level", "warning"], env, folder)
        names = [f"burst{i}" for i in range(len(TOPOLOGY[args.topology]))]
        workers = [PROCS.start(f"worker{i}", me + ["worker", *opts, "--hostname", f"{n}@%h", "--log-level", "warning"],
                               env, folder)
                   for i, (n, opts) in enumerate(zip(names, TOPOLOGY[args.topology]))]
        beat = None if args.no_beat else PROCS.start("beat", me + ["beat", "--log-level", "warning"], env, folder)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/readyz", ingress, 60)
        _wait_workers(REDIS_URL, names, workers, 60)
        note(f"ingress, workers ({args.topology}: {TOPOLOGY_TEXT[args.topology]})" + ("" if beat is None else " and beat")
             + " are up")

        sampler = Sampler(invoice_counter(slug, sim))
        sampler.start()
        started = time.monotonic()
        sent: dict = {}
        poster = threading.Thread(target=lambda: sent.update(post_all(events, base, concurrency=16)), daemon=True)
        poster.start()
        poster.join(120 + len(events) / 20)
        if poster.is_alive():
            raise RuntimeError("posting the burst through the ingress did not finish in time")
        posted_s = time.monotonic() - started
        say(f"  posted through the ingress in {posted_s:.1f} s: accepted {sent.get('accepted')}, duplicates "
            f"{sent.get('duplicate')}, rejected {sent.get('rejected')}")
        for err in sent.get("errors", [])[:5]:
            say(f"    rejected: {err}")

        timeout = args.timeout or DEFAULT_TIMEOUT[slug]
        deadline = started + timeout
        next_note = started + 30
        left = busy(db)
        while left and time.monotonic() < deadline:
            for p in [ingress, *workers] + ([beat] if beat else []):
                if p.poll() is not None:
                    raise RuntimeError(f"{p.bench_name} exited:\n{log_tail(p)}")
            time.sleep(1.0)
            left = busy(db)
            now = time.monotonic()
            if now >= next_note:
                next_note = now + 30
                n = sampler.samples[-1][1] if sampler.samples else 0
                recent = [s for s in sampler.samples if s[0] >= now - 60]
                rate = (recent[-1][1] - recent[0][1]) * 60 / max(1.0, recent[-1][0] - recent[0][0]) if recent else 0
                api = sum(1 for c in calls.calls if limited_call(slug, c[2]))
                limited = sum(1 for c in calls.calls if c[4] == 429)
                note(f"{now - started:5.0f} s: {n}/{jobs} invoices on {slug} ({rate:.0f}/min over the last minute), "
                     f"{api} vendor calls, {limited} answered 429, {left} steps open")
        drained = left == 0
        elapsed = time.monotonic() - started
        sampler.stop()
        PROCS.stop(*([beat] if beat else []), *workers, ingress)

        # ---------------------------------------------------------------- figures
        d = db.deliveries.c
        with db.engine().connect() as conn:
            jobs_by = dict(conn.execute(select(db.jobs.c.state, func.count()).group_by(db.jobs.c.state)).all())
            deliv = conn.execute(select(d.kind, d.status, func.count()).group_by(d.kind, d.status)).all()
            inv_attempts = conn.execute(
                select(db.attempts.c.outcome, db.attempts.c.error_type, func.count())
                .join(db.deliveries, d.id == db.attempts.c.delivery_id).where(d.kind == "invoice")
                .group_by(db.attempts.c.outcome, db.attempts.c.error_type)).all()
            durations = [r[0] for r in conn.execute(
                select(db.attempts.c.duration_ms).join(db.deliveries, d.id == db.attempts.c.delivery_id)
                .where(d.kind == "invoice", db.attempts.c.outcome == "ok")).all()]
            dead = conn.execute(select(d.last_error, func.count()).where(d.status == "dead")
                                .group_by(d.last_error)).all()
            found_existing = conn.execute(select(func.count()).select_from(db.deliveries).where(
                d.kind == "invoice", d.status == "done", d.detail["found_existing"].as_boolean())).scalar_one()
        by = collections.Counter({(k, s): n for k, s, n in deliv})

        samples = sampler.samples
        created = samples[-1][1] if samples else 0
        first_inv = next((t for t, n in samples if n > 0), None)
        last_inv = next((t for t, n in samples if n == created), None) if created else None
        api = [c for c in calls.calls if limited_call(slug, c[2])]
        ok_paths = [c[2] for c in api if c[4] != 429]
        n429 = sum(1 for c in api if c[4] == 429)
        cats = collections.Counter(category(slug, c[1], c[2], c[3]) for c in api if c[4] != 429)
        cats429 = collections.Counter(category(slug, c[1], c[2], c[3]) for c in api if c[4] == 429)
        tokens = sum(1 for c in calls.calls if category(slug, c[1], c[2], c[3]) == "token")
        other_status = collections.Counter(c[4] for c in api if c[4] >= 400 and c[4] != 429)
        first_call = api[0][0] if api else started
        last_call = api[-1][0] if api else started
        vmin = vendor_min_seconds(slug, ok_paths)
        omin = our_min_seconds(slug, ok_paths)
        customer_calls = sum(n for k, n in cats.items() if k.startswith("customer"))
        sweeps = 0
        for w in workers:
            for m in re.finditer(r"sweep re-drove \{'events': (\d+), 'deliveries': (\d+), 'invoices': (\d+)\}",
                                 Path(w.bench_log).read_text(errors="replace")):
                sweeps += int(m.group(2))
        r = {
            "platform": slug, "jobs": jobs, "events": len(events), "customers": customers,
            "sent": {k: v for k, v in sent.items() if k != "errors"}, "posted_s": round(posted_s, 1),
            "drained": drained, "timeout_s": timeout, "elapsed_s": round(elapsed, 1),
            "invoices_on_platform": created,
            "first_invoice_s": round(first_inv - started, 1) if first_inv else None,
            "last_invoice_s": round(last_inv - started, 1) if last_inv else None,
            "per_minute": per_minute(samples, started), "best_60s": best_window(samples),
            "invoices_per_min": round(created * 60 / (last_inv - started), 1) if last_inv and last_inv > started else None,
            "vendor_calls": len(api), "vendor_calls_ok": len(ok_paths), "token_calls": tokens,
            "calls_by_kind": dict(cats.most_common()), "answered_429": n429,
            "429_by_limit": dict(classify_429(slug, calls.calls)), "429_by_kind": dict(cats429),
            "other_errors": {str(k): v for k, v in other_status.items()},
            "calls_window_s": round(last_call - first_call, 1),
            "vendor_min_s": round(vmin, 1), "limiter_min_s": round(omin, 1),
            "calls_per_invoice": round(len(ok_paths) / created, 2) if created else None,
            "customer_calls": customer_calls, "xero_batches": calls.batches,
            "mean_call_s": round(statistics.mean(calls.durations), 3) if calls.durations else None,
            "day_burst_spent_s": day_burst_spent(slug, api, started),
            "customer_calls_per_customer": round(customer_calls / customers, 2) if customers else None,
            "jobs_by_state": jobs_by, "deliveries": {f"{k}.{s}": n for (k, s), n in sorted(by.items())},
            "invoice_attempts": {f"{o}{'/' + e if e else ''}": n for o, e, n in inv_attempts},
            "found_existing": found_existing, "sweep_redriven": sweeps,
            "dead_letters": collections.Counter({(e or "")[:160]: n for e, n in dead}),
            "invoice_step_ms": {"mean": round(statistics.mean(durations)), "p50": round(statistics.median(durations)),
                                "max": max(durations)} if durations else None,
        }
        if slug == "xero" and jobs < FULL_BURST and created:
            r["estimate_1000"] = estimate_full(slug, r, ok_paths)
        report(r)
        return r
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.halt.set()
        PROCS.stop_all()
        box.stop()


def day_burst_spent(slug: str, api: list[tuple], started: float) -> float | None:
    """When invoicer's daily bucket ran out of burst (after which Xero calls go one per 18 s)."""
    if slug != "xero":
        return None
    _, (_, _, burst) = our_limits("xero")["org"]
    ok = [c[0] for c in api if c[4] != 429]
    return round(ok[burst - 1] - started, 1) if len(ok) >= burst else None


def estimate_full(slug: str, r: dict, ok_paths: list[str]) -> dict:
    """The full burst from this run: the customer calls stay (same customer pool), every other
    call scales with the jobs; then the least times the limits allow, and the measured pace."""
    per_job = (r["vendor_calls_ok"] - r["customer_calls"]) / r["invoices_on_platform"]
    calls = round(r["customer_calls"] + per_job * FULL_BURST)
    paths = [p for p in ok_paths if "Contacts" in p] + ["/api.xro/2.0/Invoices"] * (calls - r["customer_calls"])
    span = (r["last_invoice_s"] or r["elapsed_s"])
    measured = FULL_BURST * span / r["invoices_on_platform"]
    return {"calls": calls, "vendor_min_s": round(vendor_min_seconds(slug, paths)),
            "limiter_min_s": round(our_min_seconds(slug, paths)), "at_measured_pace_s": round(measured)}


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f} s" if s < 120 else f"{s:.0f} s ({s / 60:.1f} min)" if s < 7200 else f"{s / 3600:.1f} h"


def report(r: dict) -> None:
    slug = r["platform"]
    if not r["drained"]:
        say(f"  NOT drained within the {r['timeout_s']} s limit: figures below are partial")
    say(f"  invoices created on {slug:<11} {r['invoices_on_platform']} of {r['jobs']} jobs; first after "
        f"{r['first_invoice_s']} s, last after {r['last_invoice_s']} s (from the first event posted)")
    say(f"  invoices per minute          {r['invoices_per_min']} on average; per minute: "
        f"{', '.join(map(str, r['per_minute']))}; best 60 s: {r['best_60s']}")
    say(f"  drained (nothing left open)  {fmt_s(r['elapsed_s'])}")
    kinds = ", ".join(f"{k} {n}" for k, n in r["calls_by_kind"].items())
    say(f"  vendor API calls             {r['vendor_calls']} ({r['vendor_calls_ok']} answered, {r['answered_429']} "
        f"answered 429) = {r['calls_per_invoice']} per invoice; {kinds}; plus {r['token_calls']} token calls")
    if r.get("xero_batches"):
        b = r["xero_batches"]
        say(f"  invoices per PUT /Invoices   {len(b)} requests carried {sum(b)} invoices: mean {sum(b) / len(b):.1f}, "
            f"max {max(b)} (sizes {', '.join(map(str, b[:40]))}{' ...' if len(b) > 40 else ''})")
    say(f"  customer calls               {r['customer_calls']} for {r['customers']} customers = "
        f"{r['customer_calls_per_customer']} per customer = "
        f"{r['customer_calls'] / max(1, r['invoices_on_platform']):.2f} per invoice")
    lim = ", ".join(f"{k} {n}" for k, n in r["429_by_limit"].items())
    say(f"  429 answers sent (target 0)  {r['answered_429']}" + (f" ({lim}; on: "
        + ", ".join(f"{k} {n}" for k, n in r["429_by_kind"].items()) + ")" if r["answered_429"] else ""))
    if r["other_errors"]:
        say(f"  other vendor errors          {r['other_errors']}")
    say(f"  least time for these calls   vendor limits {fmt_s(r['vendor_min_s'])}; invoicer's limiter "
        f"{fmt_s(r['limiter_min_s'])}; the calls took {fmt_s(r['calls_window_s'])} (first to last)")
    if r.get("day_burst_spent_s") is not None:
        (_, _, _), (d_count, d_per, d_burst) = our_limits("xero")["org"]
        say(f"  daily budget                 the limiter's daily burst of {d_burst} calls was spent after "
            f"{r['day_burst_spent_s']} s; from then on one call per {d_per / d_count:.0f} s")
    if slug == "xero":
        for line in xero_floor(r["invoices_on_platform"], r["customers"], r.get("mean_call_s")):
            say(f"  floor                        {line}")
    say(f"  pipeline                     jobs {r['jobs_by_state']}; invoice attempts {r['invoice_attempts']}; "
        f"invoice step (ok attempts, incl. limiter waits) mean {(r['invoice_step_ms'] or {}).get('mean')} ms, "
        f"p50 {(r['invoice_step_ms'] or {}).get('p50')} ms, max {(r['invoice_step_ms'] or {}).get('max')} ms; "
        f"found existing on retry {r['found_existing']}; deliveries re-driven by the sweep {r['sweep_redriven']}")
    for reason, n in r["dead_letters"].items():
        say(f"    dead-lettered x{n}: {reason}")
    est = r.get("estimate_1000")
    if est:
        say(f"  {FULL_BURST} jobs (estimate)            ~{est['calls']} calls: vendor limits {fmt_s(est['vendor_min_s'])}, "
            f"invoicer's limiter {fmt_s(est['limiter_min_s'])}, at this run's pace {fmt_s(est['at_measured_pace_s'])}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, help="jobs in the burst (default 1000; 200 for xero)")
    p.add_argument("--platform", choices=[*PLATFORMS, "all"], default="all")
    p.add_argument("--customers", type=int, default=50, help="repeat customers the jobs are drawn from (50)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--timeout", type=float, help="drain limit per platform in s (default: quickbooks 900, "
                                                 "stripe 1500, xero 3600)")
    p.add_argument("--no-beat", action="store_true", help="run no beat (no sweep)")
    p.add_argument("--topology", choices=sorted(TOPOLOGY), default="flat",
                   help="flat: 2 x prefork -c 4 on every queue (default); split: docker-compose's worker-cpu + worker-io")
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--keep", action="store_true", help=f"keep the scratch folder (logs) under {tempfile.gettempdir()}")
    try:
        args = p.parse_args()
    except SystemExit:
        shutil.rmtree(TMP, ignore_errors=True)
        raise

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results: dict = {"date": date, "machine": {"cpus": os.cpu_count(), "python": platform_mod.python_version(),
                                               "platform": platform_mod.platform()}, "runs": []}
    say(f"invoicer burst {date}: {os.cpu_count()} CPUs, Python {platform_mod.python_version()}; PostgreSQL "
        f"{DB_NAME}, Redis db 6; {TOPOLOGY_TEXT[args.topology]}{'' if args.no_beat else ' + beat'}; load average "
        f"{loadavg()}; scratch {TMP}")
    t0 = time.monotonic()
    code = 0
    try:
        for slug in (PLATFORMS if args.platform == "all" else (args.platform,)):
            results["runs"].append(run_platform(slug, args.jobs or DEFAULT_JOBS[slug], args))
        say(f"\n(total {time.monotonic() - t0:.0f} s)")
    except KeyboardInterrupt:
        say("\ninterrupted: stopping every process started here")
        code = 130
    except RuntimeError as exc:
        say(f"\nburst failed: {exc}\n(logs in {TMP})")
        args.keep = True
        code = 1
    finally:
        finish(PROCS, REDIS_URL, TMP, args.keep, args.json, results if results["runs"] else None)
    return code


if __name__ == "__main__":
    sys.exit(main())
