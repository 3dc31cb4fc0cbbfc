"""Benchmark: database round trips per event, counted in one process without Celery (prints figures).

    .venv/bin/python bench/statements.py [--events 300] [--batch 50] [--json FILE]

N generated events (bench/tenants.yaml: local ledger, PDF, email, SMS) are stored, then run through
the pipeline's domain code the way the workers would: every event mapped, then the deliveries each stage
makes, stage by stage, handed to the pipeline the way `invoicer.tasks.enqueue` groups them into messages
(up to --batch ids a message; code without `run_deliveries` runs them one by one, as its tasks did).
A SQLAlchemy listener counts statements sent (an executemany counts once: psycopg pipelines it),
transactions and pool check-outs (each check-out is one more `SELECT 1` with `pool_pre_ping`).

Runs on any checkout of the product: `PYTHONPATH=/path/to/other/checkout .venv/bin/python
bench/statements.py` counts that code (how the "before" figures in docs/benchmarks.md were taken).
Uses its own PostgreSQL database `invoicer_statements`, dropped and recreated at start.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
DB_NAME = "invoicer_statements"
TMP = Path(tempfile.mkdtemp(prefix="invoicer-statements-"))
os.environ.update({
    "INVOICER_DATABASE_URL": f"{PG}/{DB_NAME}",
    "INVOICER_CONFIG": str(BENCH / "tenants.yaml"),
    "INVOICER_VAR_DIR": str(TMP / "var"),
    "INVOICER_SECRET_KEY": "bench-link-key",
    "INVOICER_LOG_FORMAT": "console",
})


class Counter:
    """Statements, transactions and check-outs seen by one engine."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.n = collections.Counter()
        event.listen(engine, "before_cursor_execute", self._stmt)
        event.listen(engine, "begin", lambda conn: self.n.update(["transactions"]))
        event.listen(engine.pool, "checkout", lambda *a: self.n.update(["checkouts"]))

    def _stmt(self, conn, cursor, statement, parameters, context, executemany):
        self.n["statements"] += 1
        self.n[statement.split(None, 1)[0].upper()] += 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=300)
    p.add_argument("--batch", type=int, default=50, help="delivery ids per message (invoicer.tasks.PER_MESSAGE)")
    p.add_argument("--json")
    args = p.parse_args()


    import sqlalchemy as sa

    from invoicer import db, logs, pipeline
    from invoicer.ingress import persist
    from invoicer.models import Event
    from invoicer.sample import generate

    logs.configure("WARNING")
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {DB_NAME}"))
    admin.dispose()
    db.metadata.create_all(db.engine())
    events = generate(args.events, seed=7)
    pks = []
    for e in events:
        pk, _ = persist(e["tenant"], e.get("source", "bench"), Event.model_validate(e), json.dumps(e))
        pks.append(pk)

    batched = hasattr(pipeline, "run_deliveries")
    counter = Counter(db.engine())
    started, cpu = time.monotonic(), time.process_time()
    queue: list[tuple[str, int]] = []
    for pk in pks:
        queue += pipeline.process_event(pk)
    messages = 0
    while queue:
        by_kind = collections.defaultdict(list)
        for kind, i in queue:
            by_kind["notify" if kind in ("email", "sms", "slack") else kind].append(i)
        queue = []
        for ids in by_kind.values():
            chunks = [ids[at:at + args.batch] for at in range(0, len(ids), args.batch)] if batched else \
                [[i] for i in ids]
            for chunk in chunks:
                messages += 1
                out = pipeline.run_deliveries(chunk) if batched else pipeline.run_delivery(chunk[0])
                queue += out.enqueue
                if out.later or out.retry_in is not None:
                    raise RuntimeError(f"unexpected retries: {out}")
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    with db.engine().connect() as conn:
        done = conn.execute(sa.select(sa.func.count()).select_from(db.jobs).where(db.jobs.c.state == "done")).scalar()
        attempts = conn.execute(sa.select(sa.func.count()).select_from(db.attempts)).scalar()
    n = counter.n
    per = {k: round(v / args.events, 2) for k, v in sorted(n.items())}
    mode = f"batched, up to {args.batch} ids a message" if batched else "one delivery per message"
    print(f"{args.events} events ({done} jobs done, {attempts} delivery attempts, {messages} delivery messages; "
          f"{mode}) in {seconds:.1f} s, one process")
    print(f"  per event: {per['statements']} statements, {per.get('transactions', 0)} transactions, "
          f"{per.get('checkouts', 0)} pool check-outs (+1 SELECT 1 each with pool_pre_ping="
          f"{db.engine().pool._pre_ping})")
    print("  by verb: " + ", ".join(f"{k} {v}" for k, v in per.items()
                                    if k not in ("statements", "transactions", "checkouts")))
    print(f"  {cpu / args.events * 1000:.1f} ms of this process's CPU per event, mapping included "
          f"({seconds / args.events * 1000:.1f} ms wall; PostgreSQL's own CPU not counted)")
    if args.json:
        Path(args.json).write_text(json.dumps({"events": args.events, "batched": batched, "per_event": per,
                                               "seconds": seconds, "cpu_s": cpu}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
