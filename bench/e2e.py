"""Benchmark: the issue's end-to-end workload against our own HTTP simulators; prints figures (no assertions).

    .venv/bin/python bench/e2e.py [--events 2000] [--vendor-latency 250] [--json FILE]

One tenant on two invoice platforms (QuickBooks Online and Xero), a branded PDF, email by SendGrid
and SMS by Twilio, every vendor served by its simulator (invoicer/providers/*/simulator.py) in a process
of its own, so its CPU is reported on a line of its own. The same N events are run three times, each on
a fresh database with 2 worker processes x --concurrency 2 (as bench/run.py phase 2), no beat:

  a. zero latency, the events queued one `invoicer.ingest.process` message each (as the ingress
     publishes them on this branch; `process_many` batches of 50 when the code has it);
  b. zero latency, the events mapped to their jobs beforehand (outside the measured window) and their
     invoice deliveries queued in batches, as `enqueue(follow)` gets them from a batched ingress: the
     delivery stages alone;
  c. as (a), every simulator answering --vendor-latency ms late (default 250).

Vendor rate limits are switched OFF for these runs, in the simulators and in invoicer's own limiter
(QuickBooks: 500 calls a minute and 10 a second per realm; Xero: 60 a minute and 5 at once per
organisation, which alone would cap one tenant at ~1 Xero request a second): the issue asks what the
pipeline itself can carry, and one tenant at a vendor's limits measures the vendor (bench/burst.py does
that). Reference in the same run: raw Celery chains of four no-op tasks (bench/run.py phase 3). Last,
bench/statements.py's round trips per event. Uses PostgreSQL `invoicer_e2e` and Redis database 7
(--redis), so it never touches bench/run.py's or the tests'.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, PY, log_tail, say  # noqa: E402

if "--worker" not in sys.argv and "--serve-simulators" not in sys.argv:  # the children keep the env they are given
    os.environ.setdefault("BENCH_DB_NAME", "invoicer_e2e")
    if "--redis" in sys.argv:
        os.environ["BENCH_REDIS_URL"] = sys.argv[sys.argv.index("--redis") + 1]
    os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    import run as base  # noqa: E402  (its environment: the database and Redis named above)

TENANT = "e2e-co"
LIMITS_OFF = 10 ** 9


# ---------------------------------------------------------------- the simulators' own process

def serve_simulators(out: Path, latency_ms: int) -> int:
    """Run QuickBooks, Xero, SendGrid and Twilio with their limits off; write what the tenant needs."""
    from invoicer.providers.quickbooks.simulator import QuickBooksSimulator
    from invoicer.providers.sendgrid.simulator import SendGridSimulator as SendGrid
    from invoicer.providers.simulate import Running
    from invoicer.providers.twilio.simulator import TwilioSimulator as Twilio
    from invoicer.providers.xero.simulator import Limits, XeroSimulator

    qb = QuickBooksSimulator(per_minute=LIMITS_OFF, per_second=LIMITS_OFF, concurrency=LIMITS_OFF)
    xero = XeroSimulator()
    xero.limits = Limits(minute=LIMITS_OFF, day=LIMITS_OFF, concurrent=LIMITS_OFF)
    sims = {"quickbooks": qb, "xero": xero, "sendgrid": SendGrid(), "twilio": Twilio()}
    running = {slug: Running(sim) for slug, sim in sims.items()}
    for sim in sims.values():
        sim.latency_ms = latency_ms
    env = {}
    for sim in sims.values():
        env.update(sim.env())
    setup = {"platforms": {"books": qb.platform(running["quickbooks"].url), "xero": xero.platform(running["xero"].url)},
             "email": sims["sendgrid"].channel(running["sendgrid"].url),
             "sms": sims["twilio"].channel(running["twilio"].url),
             "env": env, "tokens": {"books": qb.tokens(), "xero": xero.tokens()}}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(setup), encoding="utf-8")
    tmp.rename(out)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    return 0


# ---------------------------------------------------------------- a worker with invoicer's limiter off

def worker(argv: list[str]) -> int:
    from invoicer import cli
    from invoicer.providers.quickbooks import adapter as quickbooks
    from invoicer.providers.xero import adapter as xero

    for module in (quickbooks, xero):  # the bench's explicit "limits off" (see the docstring)
        module.RATES, module.CONCURRENCY = [], None
    return cli.main(["worker", *argv])


# ---------------------------------------------------------------- one run

def tenants_yaml(setup: dict) -> str:
    import yaml

    tenant = {"name": "End to End Heating & Cooling", "address": ["1 Bench Way", "Orlando, FL 32801"],
              "platforms": setup["platforms"], "sources": {"*": {"unsigned": True}},
              "channels": {"customer": ["email", "sms"], "email": setup["email"], "sms": setup["sms"]}}
    return yaml.safe_dump({"tenants": {TENANT: tenant}}, sort_keys=False)


def one_run(label: str, events: list[dict], latency_ms: int, premapped: bool, args) -> dict:
    import sqlalchemy as sa
    from cryptography.fernet import Fernet

    from invoicer import config, db, pipeline
    from invoicer.credentials import Credentials
    from invoicer.demo import busy
    from invoicer.ingress import persist
    from invoicer.models import Event
    from invoicer.tasks import enqueue
    from invoicer.tasks import pipeline as tasks

    folder = base.TMP / label.split()[0].strip(".")
    (folder / "var").mkdir(parents=True, exist_ok=True)
    base.flush_redis()
    base.reset_database()
    setup_file = folder / "simulators.json"
    sims = base.PROCS.start(f"simulators-{folder.name}", [PY, str(Path(__file__)), "--serve-simulators",
                                                          str(setup_file), "--vendor-latency", str(latency_ms)])
    deadline = time.monotonic() + 60
    while not setup_file.exists():
        if sims.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the simulators did not start:\n{log_tail(sims)}")
        time.sleep(0.1)
    setup = json.loads(setup_file.read_text())
    (folder / "tenants.yaml").write_text(tenants_yaml(setup), encoding="utf-8")
    env = {**base.ENV, **setup["env"], "INVOICER_CONFIG": str(folder / "tenants.yaml"),
           "INVOICER_VAR_DIR": str(folder / "var"), "INVOICER_CREDENTIALS_KEY": Fernet.generate_key().decode()}
    os.environ.update({k: v for k, v in env.items() if k.startswith("INVOICER_")})
    config.reset()
    for platform, tokens in setup["tokens"].items():
        Credentials(db.engine(), TENANT, platform).put(tokens)

    pks = [persist(TENANT, e["source"], Event.model_validate(e), json.dumps(e))[0] for e in events]
    if premapped:  # the delivery stages alone: mapping done here, before the clock starts
        follow = [f for pk in pks for f in pipeline.process_event(pk)]
        enqueue(follow)
    elif hasattr(tasks, "process_many"):
        for at in range(0, len(pks), 50):
            tasks.process_many.apply_async((pks[at:at + 50],))
    else:
        for pk in pks:
            tasks.process_event.apply_async((pk,))

    workers = [base.PROCS.start(f"worker{i}-{folder.name}", [PY, str(Path(__file__)), "--worker", "--pool", args.pool,
                                                             "--concurrency", str(args.concurrency),
                                                             "--hostname", f"e2e{i}@%h", "--log-level", "warning"],
                                env=env) for i in range(2)]
    meter = base.CpuMeter({**{w.pid: "workers" for w in workers}, sims.pid: "simulators"})
    started = time.monotonic()
    initial = left = busy(db)
    first = None
    last_change, last_value = started, left
    deadline = started + args.timeout
    while time.monotonic() < deadline and left:
        time.sleep(0.2)
        left = busy(db)
        now = time.monotonic()
        if left != last_value:
            last_change, last_value = now, left
        if first is None and left != initial:
            first = now
            meter.start()
        if any(w.poll() is not None for w in workers) or sims.poll() is not None:
            raise RuntimeError(f"a worker or the simulators exited:\n{log_tail(workers[0])}\n{log_tail(sims)}")
        if first and now - last_change > args.stall and not base.queue_lengths():
            break
    ended = time.monotonic()
    cpu = meter.stop() if first else None
    base.PROCS.stop(*workers, sims)
    with db.engine().connect() as conn:
        jobs = dict(conn.execute(sa.select(db.jobs.c.state, sa.func.count()).group_by(db.jobs.c.state)).all())
        by = conn.execute(sa.select(db.deliveries.c.kind, db.deliveries.c.status, sa.func.count())
                          .group_by(db.deliveries.c.kind, db.deliveries.c.status)).all()
        attempts = conn.execute(sa.select(sa.func.count()).select_from(db.attempts)).scalar_one()
        per_kind = conn.execute(sa.select(db.deliveries.c.kind, sa.func.avg(db.attempts.c.duration_ms))
                                .join(db.deliveries, db.deliveries.c.id == db.attempts.c.delivery_id)
                                .group_by(db.deliveries.c.kind)).all()
        processed = conn.execute(sa.select(sa.func.count()).select_from(db.events)
                                 .where(db.events.c.status != "accepted")).scalar_one()
    steady = (ended - first) if first else None
    deliveries = {f"{k}.{s}": n for k, s, n in sorted(by)}
    done = sum(n for k, s, n in by if s == "done")
    r = {"label": label, "latency_ms": latency_ms, "premapped": premapped, "events": len(events),
         "processed": processed, "finished": left == 0, "left_open": left, "steady_s": round(steady, 2) if steady else None,
         "events_per_s": round(len(events) / steady, 1) if steady and left == 0 else None,
         "deliveries_per_s": round(done / steady, 1) if steady else None, "jobs": jobs, "attempts": attempts,
         "deliveries": deliveries, "avg_attempt_ms": {k: round(float(v), 1) for k, v in per_kind}, "cpu": cpu}
    rate = r["events_per_s"]
    say(f"  {label:<44} {rate or 0:>7.1f} ev/s   ({len(events)} events in {r['steady_s']} s from the first "
        f"progress; {done} deliveries done = {r['deliveries_per_s']}/s, {attempts} attempts; jobs "
        f"{', '.join(f'{k} {v}' for k, v in sorted(jobs.items()))})" + ("" if left == 0 else f"  NOT FINISHED: {left} open"))
    not_done = {k: v for k, v in deliveries.items() if not k.endswith((".done", ".skipped"))}
    if not_done:
        say(f"    not done: {not_done}")
    say("    mean time inside the side effect per attempt: "
        + ", ".join(f"{k} {v} ms" for k, v in sorted(r["avg_attempt_ms"].items())))
    if cpu:
        say(f"    {base.cpu_line(cpu)}")
    return r


def main() -> int:
    if "--serve-simulators" in sys.argv:
        p = argparse.ArgumentParser()
        p.add_argument("--serve-simulators", type=Path)
        p.add_argument("--vendor-latency", type=int, default=0)
        a = p.parse_args()
        return serve_simulators(a.serve_simulators, a.vendor_latency)
    if "--worker" in sys.argv:
        return worker(sys.argv[sys.argv.index("--worker") + 1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--vendor-latency", type=int, default=250, help="ms, run (c) (default 250)")
    p.add_argument("--timeout", type=float, default=300, help="time limit of each run (300 s)")
    p.add_argument("--stall", type=float, default=10, help="a run stops after this long without progress")
    p.add_argument("--redis", help="broker URL (default redis://127.0.0.1:6379/7)")
    p.add_argument("--skip", default="", help="runs to leave out, e.g. 'b' or 'bc'")
    p.add_argument("--pool", default="prefork", help="the workers' pool (prefork, as bench/run.py; or threads)")
    p.add_argument("--concurrency", type=int, default=2, help="per worker (2, as bench/run.py)")
    p.add_argument("--json")
    args = p.parse_args()

    from invoicer.sample import generate

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    load = os.getloadavg()
    say(f"invoicer e2e bench: {args.events} events, tenant {TENANT} on QuickBooks + Xero, PDF, SendGrid email, "
        f"Twilio SMS; vendor limits off (simulators and our limiter); 2 workers x {args.pool} -c {args.concurrency}; PostgreSQL "
        f"{base.DB_NAME}, {base.REDIS_URL}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    events = generate(args.events, seed=7)
    for e in events:
        e["tenant"] = TENANT
    results: dict = {"events": args.events, "load_before": load, "runs": []}
    try:
        say("\n  end to end, events through the whole pipeline (rate from the first progress to the end):")
        for key, label, latency, premapped in (("a", "a. zero latency, end to end", 0, False),
                                               ("b", "b. zero latency, delivery stages alone", 0, True),
                                               ("c", f"c. {args.vendor_latency} ms vendor latency, end to end",
                                                args.vendor_latency, False)):
            if key not in args.skip:
                results["runs"].append(one_run(label, events, latency, premapped, args))
        say("\n  reference, same machine, same run: raw Celery chains of four no-op tasks (bench/run.py phase 3)")
        for events_on in (False, True):
            x = base.run_chains(args.events, 60, events=events_on)
            results[f"chains_task_events_{'on' if events_on else 'off'}"] = x
            say(f"  {'chains, task events ' + ('on' if events_on else 'off (invoicer default)'):<44} "
                f"{x['chains_per_s'] or 0:>7.1f} chains/s = {x['tasks_per_s'] or 0:.0f} tasks/s")
            if x["cpu"]:
                say(f"    {base.cpu_line(x['cpu'])}")
        say("\n  round trips per event (bench/statements.py, 300 events in one process, local platforms):")
        out = subprocess.run([PY, str(BENCH / "statements.py"), "--events", "300"], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if not k.startswith("INVOICER_")})
        say("\n".join("  " + line for line in out.stdout.splitlines()))
        load = os.getloadavg()
        say(f"\n  load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
        results["load_after"] = load
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        return 0
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    except RuntimeError as exc:
        say(f"\nbench failed: {exc}\n(logs in {base.TMP})")
        return 1
    finally:
        base.PROCS.stop_all()


if __name__ == "__main__":
    sys.exit(main())
