"""`invoicer`: demo, serve, worker, beat, flower, send, status, dlq, replay, db, pdf, providers, templates,
invoices, customers, reminders."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .config import ConfigError


def _serve(args) -> int:
    import uvicorn

    os.environ["INVOICER_SERVE_LOG_LEVEL"] = args.log_level  # for each process's serve_app()
    app = serve_app() if args.workers == 1 else "invoicer.cli:serve_app"
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, workers=args.workers,
                factory=args.workers > 1, access_log=False, log_config=None)
    return 0


def serve_app():
    """The ingress of one `invoicer serve` process, its logging configured (each of --workers N
    processes builds its own app, with its own group commit and database pool)."""
    from . import logs
    from .ingress import create_app

    logs.configure(os.environ.get("INVOICER_SERVE_LOG_LEVEL", "info"))
    return create_app()


def _metrics_dir(hostname: str | None) -> None:
    """prometheus-client's multiprocess mode: a fresh folder for this worker's pool processes, set
    before the client library is first imported."""
    import re
    import shutil
    import socket

    from .config import settings

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", (hostname or "worker@%h").replace("%h", socket.gethostname()))
    folder = settings().var_dir / "metrics" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _worker(args) -> int:
    from . import logs

    logs.configure(args.log_level)
    if args.metrics_port:
        _metrics_dir(args.hostname)
        from . import metrics

        metrics.serve(args.metrics_port)
    from . import workers  # noqa: F401  (sizes the HTTP and database pools of a threads pool)
    from .config import tenants
    from .tasks import QUEUES, app

    tenants()  # a bad tenants file fails here, and forked pool processes inherit it loaded, not in a first task

    argv = ["worker", "-Q", args.queues or ",".join(q for q in QUEUES), "-c", str(args.concurrency),
            "-P", args.pool, "-l", args.log_level, "--without-gossip", "--without-mingle"]
    if args.hostname:
        argv += ["-n", args.hostname]
    app.start(_quiet() + argv)
    return 0


def _quiet() -> list[str]:
    """No start-up banner where every line must be JSON (the default log format)."""
    return [] if os.environ.get("INVOICER_LOG_FORMAT", "json").lower() == "console" else ["--quiet"]


def _beat(args) -> int:
    from . import logs
    from .config import settings

    logs.configure(args.log_level)
    from .tasks import app

    settings().var_dir.mkdir(parents=True, exist_ok=True)
    app.start(_quiet() + ["beat", "-l", args.log_level, "-s", str(settings().var_dir / "celerybeat-schedule")])
    return 0


def _flower(args) -> int:
    from .flower import run

    return run(args)


def _send(args) -> int:
    from .sender import send_file

    return send_file(args.file, args.url, secret=os.environ.get(args.secret_env) if args.secret_env else None,
                     concurrency=args.concurrency)


def _status(args) -> int:
    from .status import job_status

    status = job_status(args.tenant, args.job_id)
    if status is None:
        print(f"no job {args.job_id!r} for tenant {args.tenant!r}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2, default=str, ensure_ascii=False))
    return 0


def _dlq(args) -> int:
    from . import dlq

    if args.action in ("list", "review"):
        rows = dlq.dead_letters(args.tenant, status="dead" if args.action == "list" else "review")
        if not rows:
            print("no dead letters" if args.action == "list" else "no messages waiting for review")
        for r in rows:
            print(f"{r['id']:>8}  {r['tenant']:<20} job {r['job_id']:<14} {r['number']:<14} {r['kind']:<8} "
                  f"{r['target']:<12} attempts {r['attempts']}  {r['last_error']}")
        return 0
    from .tasks import enqueue

    status = 0
    for delivery_id in args.ids:
        if args.action == "show":
            row = dlq.show(delivery_id)
            if row is None:
                print(f"{delivery_id}: no such delivery", file=sys.stderr)
                status = 1
            else:
                print(json.dumps(row, indent=2, default=str, ensure_ascii=False))
            continue
        if args.action == "retry":
            kind = dlq.retry(delivery_id)
            follow = [(kind, delivery_id)] if kind else None
        elif args.action == "settle":
            follow = dlq.settle(delivery_id, sent=args.outcome == "sent")
        else:
            follow = dlq.discard(delivery_id, args.reason)
        if follow is None:
            what = "in review (already settled?)" if args.action == "settle" else \
                "a dead letter (already retried, done or discarded)"
            print(f"{delivery_id}: not {what}; nothing changed", file=sys.stderr)
            status = 1
            continue
        enqueue(follow)
        done = {"retry": "re-enqueued", "discard": "discarded", "settle": f"settled: {args.outcome}"}
        print(f"{delivery_id}: {done[args.action]}")
    return status


def _replay(args) -> int:
    from . import dlq
    from .ingress import parse_time
    from .tasks import redrive

    try:
        since, until = parse_time(getattr(args, "from")), parse_time(args.to)
    except ValueError as exc:
        print(f"invoicer replay: {exc}", file=sys.stderr)
        return 2
    if since >= until:
        print("invoicer replay: --to must be after --from", file=sys.stderr)
        return 2
    found = redrive(*dlq.replay(since, until, args.tenant))
    print(f"re-driven: {found['events']} events, {found['deliveries']} deliveries, {found['invoices']} invoices")
    return 0


def _db(args) -> int:
    from .config import settings
    from .migrate import upgrade

    upgrade(settings().database_url)
    print("database is at the latest schema")
    return 0


def _credentials(args) -> int:
    """Store a tenant's credentials for one platform, from a JSON object on standard input."""
    from . import db
    from .config import tenants
    from .credentials import Credentials

    tenant = tenants().get(args.tenant)
    if tenant is None or args.platform not in tenant.platforms:
        print(f"invoicer: tenant {args.tenant!r} has no platform named {args.platform!r}", file=sys.stderr)
        return 2
    try:
        value = json.loads(sys.stdin.read())
        if not isinstance(value, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        print(f"invoicer: credentials must be a JSON object on standard input ({exc})", file=sys.stderr)
        return 2
    Credentials(db.engine(), args.tenant, args.platform).put(value)
    print(f"stored credentials for {args.tenant} on {args.platform} (encrypted; keys: {', '.join(sorted(value))})")
    return 0


def _sandbox(args) -> int:
    """Serve the vendor simulators until interrupted; print a tenants file and environment for them."""
    import time

    from . import sandbox as sb

    box = sb.start(args.platforms or None)
    print("# vendor simulators (not for production); export these, then point INVOICER_CONFIG at the file below")
    for k, v in box.env.items():
        print(f"export {k}={v}")
    print("# then store each OAuth tenant's tokens: `invoicer demo --sandbox` does all of this by itself")
    print(box.tenants_yaml())
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        box.stop()
    return 0


def _pdf_preview(args) -> int:
    """Render one event's invoice as the tenant would send it, without a database or a broker."""
    from pathlib import Path

    from pydantic import ValidationError

    from .config import tenants
    from .models import Event
    from .pdf import render
    from .pipeline import document

    tenant = tenants().get(args.tenant)
    if tenant is None:
        print(f"invoicer: no tenant {args.tenant!r} in the tenants file", file=sys.stderr)
        return 2
    try:
        text = Path(args.event_file).read_text(encoding="utf-8").strip()
        try:
            raws = [json.loads(text)]  # one event
        except ValueError:
            raws = [json.loads(line) for line in text.splitlines() if line.strip()]  # JSONL
        raw = next((r for r in raws if args.event in (None, r.get("id"))), None)
        if raw is None:
            raise ValueError(f"no event with id {args.event!r}")
        event = Event.model_validate({**raw, "tenant": args.tenant})
    except (OSError, ValueError, ValidationError) as exc:
        print(f"invoicer: cannot use {args.event_file}: {exc}", file=sys.stderr)
        return 2
    n = tenant.numbering
    number = args.number or f"{n.prefix}{n.start:0{n.width}d}"
    doc = document(event, args.tenant, tenant, number, event.job.completed_at, event.job.payment_terms_days)
    doc["pay_url"] = args.pay_url
    data = render(doc)
    Path(args.output).write_bytes(data)
    print(f"{args.output}: invoice {number} for {args.tenant}, {len(data)} bytes")
    return 0


def _providers(args) -> int:
    from .providers import registry

    for slug, cls in registry.all_providers().items():
        print(f"{slug:<16} {', '.join(sorted(cls.capabilities))}")
    return 0


def _templates(args) -> int:
    from . import notify
    from .config import tenants

    tenant = tenants().get(args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r} in the tenants file", file=sys.stderr)
        return 1
    out = notify.preview(args.tenant, tenant, args.kind)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    seg = out.pop("sms_segments")
    for field, text in out.items():
        print(f"--- {field}\n{text.rstrip()}")
    print(f"--- sms segments: {seg['segments']} ({seg['encoding']}, {seg['units']} units)")
    return 0


def _demo(args) -> int:
    from .demo import run

    return run(count=args.count, events_file=args.events, workers=args.workers, port=args.port,
               timeout=args.timeout, sandbox=args.sandbox, log_level=args.log_level)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="invoicer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run ingress, workers and beat, push sample jobs through, print a summary")
    d.add_argument("--count", type=int, default=300, help="sample events to generate (default 300)")
    d.add_argument("--events", help="a JSONL file of events to send instead of generated ones")
    d.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    d.add_argument("--port", type=int, default=0, help="ingress port (default: a free one)")
    d.add_argument("--timeout", type=float, default=600, help="seconds to wait for every job")
    d.add_argument("--sandbox", action="store_true",
                   help="run against the QuickBooks, Xero and Stripe simulators instead of the local platform")
    d.add_argument("--log-level", default="warning", help="of the processes it starts; their JSON lines go to "
                   "var/demo.log (default warning)")
    d.set_defaults(func=_demo)

    s = sub.add_parser("serve", help="run the HTTP ingress")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--log-level", default="info")
    s.add_argument("--workers", type=int, default=1, help="uvicorn processes on one port (default 1)")
    s.set_defaults(func=_serve)

    w = sub.add_parser("worker", help="run a Celery worker")
    w.add_argument("--queues", help="comma-separated queues (default: all)")
    w.add_argument("--concurrency", type=int, default=4)
    w.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"],
                   help="prefork for CPU-bound queues (ingest, render), threads for I/O-bound ones "
                        "(invoices, notify: many calls in flight); see docs/operations.md")
    w.add_argument("--hostname")
    w.add_argument("--log-level", default="info")
    w.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port (bearer "
                   "INVOICER_METRICS_TOKEN)")
    w.set_defaults(func=_worker)

    b = sub.add_parser("beat", help="run Celery beat (the sweep)")
    b.add_argument("--log-level", default="info")
    b.set_defaults(func=_beat)

    fl = sub.add_parser("flower", help="run Flower, the task dashboard (basic auth from INVOICER_FLOWER_BASIC_AUTH)")
    fl.add_argument("--port", type=int, default=5555)
    fl.add_argument("--address", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    fl.add_argument("--db", help="where Flower keeps its task history (default: <var dir>/flower.db)")
    fl.add_argument("--max-tasks", type=int, default=20000, help="tasks kept in memory and on disk")
    fl.add_argument("--no-auth", action="store_true", help="no authentication: only for a private local run")
    fl.set_defaults(func=_flower)

    se = sub.add_parser("send", help="post the events of a JSONL file to an ingress, signed")
    se.add_argument("file")
    se.add_argument("--url", default="http://127.0.0.1:8000")
    se.add_argument("--secret-env", help="environment variable holding the whsec_ signing secret")
    se.add_argument("--concurrency", type=int, default=8)
    se.set_defaults(func=_send)

    st = sub.add_parser("status", help="print a job's state")
    st.add_argument("tenant")
    st.add_argument("job_id")
    st.set_defaults(func=_status)

    q = sub.add_parser("dlq", help="dead letters: list, show, retry, discard; messages in review: review, settle")
    q.add_argument("action", choices=["list", "show", "retry", "discard", "review", "settle"])
    q.add_argument("ids", nargs="*", type=int, help="delivery ids (show, retry, discard, settle)")
    q.add_argument("--tenant", help="list, review: only this tenant's")
    q.add_argument("--reason", help="discard: why (recorded in the audit trail)")
    q.add_argument("--outcome", choices=["sent", "resend"],
                   help="settle: the recipient has it (sent), or it did not go and is sent once more (resend)")
    q.set_defaults(func=_dlq)

    rp = sub.add_parser("replay", help="re-drive events accepted in a time window that never finished")
    rp.add_argument("--from", required=True, metavar="TIME", help="ISO 8601, e.g. 2026-11-25T08:00:00Z")
    rp.add_argument("--to", required=True, metavar="TIME")
    rp.add_argument("--tenant")
    rp.set_defaults(func=_replay)

    m = sub.add_parser("db", help="database schema")
    m.add_argument("action", choices=["upgrade"])
    m.set_defaults(func=_db)

    cr = sub.add_parser("credentials", help="store a platform's credentials (JSON on stdin), encrypted")
    cr.add_argument("action", choices=["set"])
    cr.add_argument("tenant")
    cr.add_argument("platform", help="the platform's name in the tenant's configuration")
    cr.set_defaults(func=_credentials)

    sb = sub.add_parser("sandbox", help="serve the vendor simulators on local ports (all, or the platforms named)")
    sb.add_argument("platforms", nargs="*", metavar="PLATFORM", help="provider slugs (default: every simulator)")
    sb.set_defaults(func=_sandbox)

    tp = sub.add_parser("templates", help="render a tenant's message templates with a sample job")
    tp.add_argument("action", choices=["preview"])
    tp.add_argument("tenant")
    tp.add_argument("kind", nargs="?", default="invoice", choices=["invoice", "reminder", "finance", "escalation"])
    tp.add_argument("--json", action="store_true", help="print every field and the SMS segments as JSON")
    tp.set_defaults(func=_templates)

    pdf = sub.add_parser("pdf", help="invoice PDFs: preview one from an event file")
    pdf_sub = pdf.add_subparsers(dest="action", required=True)
    pv = pdf_sub.add_parser("preview", help="render an event's invoice with a tenant's branding to a file")
    pv.add_argument("event_file", help="a JSON event, or a JSONL file (the first event, or --event ID)")
    pv.add_argument("--tenant", required=True, help="the tenant whose branding and numbering to use")
    pv.add_argument("-o", "--output", required=True, help="where to write the PDF")
    pv.add_argument("--event", help="the id of the event to take from a JSONL file")
    pv.add_argument("--number", help="the invoice number to print (default: the tenant's first number)")
    pv.add_argument("--pay-url", help="show this payment link and its QR code")
    pv.set_defaults(func=_pdf_preview)

    pr = sub.add_parser("providers", help="list registered platforms and channels with their capabilities")
    pr.set_defaults(func=_providers)

    from .cli_reminders import register

    register(sub)  # invoices, customers, reminders
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "dlq" and args.action not in ("list", "review") and not args.ids:
        parser().error(f"dlq {args.action} needs one or more delivery ids")
    if args.command == "dlq" and args.action == "discard" and not (args.reason or "").strip():
        parser().error("dlq discard needs --reason (it is recorded in the audit trail)")
    if args.command == "dlq" and args.action == "settle" and not args.outcome:
        parser().error("dlq settle needs --outcome sent or --outcome resend")
    try:
        return args.func(args) or 0
    except ConfigError as exc:
        print(f"invoicer: configuration error:\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
