"""`invoicer invoices pay|pause|resume|void`, `invoicer customers opt-out|opt-in` and
`invoicer reminders preview|run`: the reminder commands, registered on the main parser by cli.py."""
from __future__ import annotations

import json
import sys


def _invoices(args) -> int:
    from . import reminders

    invoice_id = reminders.find_invoice(args.invoice, args.tenant)
    if invoice_id is None:
        print(f"invoicer: no invoice {args.invoice!r}" + (f" in {args.tenant}" if args.tenant else
              " (give an id, or a number with --tenant)"), file=sys.stderr)
        return 1
    try:
        result = reminders.act(invoice_id, args.action, by="cli", reason=args.reason)
    except reminders.Conflict as exc:
        print(f"invoicer: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def _customers(args) -> int:
    from . import reminders
    from .config import tenants

    if args.tenant not in tenants():
        print(f"invoicer: no tenant {args.tenant!r} in the tenants file", file=sys.stderr)
        return 2
    changed = reminders.opt_out(args.tenant, args.customer, by="cli", back_in=args.action == "opt-in")
    print(json.dumps({"tenant": args.tenant, "customer": args.customer, "action": args.action, "changed": changed}))
    return 0


def _preview(args) -> int:
    from . import reminders
    from .config import tenants

    if args.tenant not in tenants():
        print(f"invoicer: no tenant {args.tenant!r} in the tenants file", file=sys.stderr)
        return 2
    plan = reminders.preview(args.tenant, args.days)
    if args.json:
        print(json.dumps(plan, indent=2, ensure_ascii=False))
        return 0
    if tenants()[args.tenant].reminders is None:
        print(f"{args.tenant} has no reminder cadence (reminders: in the tenants file)")
        return 0
    for p in plan:
        head = f"{p['due_at'][:16]}Z  {p['invoice']:<14} {p['step']:<12} {p['customer']}"
        if "skipped" in p:
            print(f"{head}  skipped: {p['skipped']}")
            continue
        print(head)
        for c in p["channels"]:
            extra = f"  skipped: {c['skipped']}" if "skipped" in c else f"  at {c['local'][:16]} ({p['zone']})"
            print(f"    {c['channel']:<6} {c['to'] or '-'}{extra}")
    print(f"{len(plan)} reminder step(s) over the next {args.days} day(s)")
    return 0


def _run(args) -> int:
    """What beat does every INVOICER_REMINDER_INTERVAL: fan out what is due now, enqueue it."""
    from . import reminders
    from .tasks import enqueue

    follow = reminders.fan_out()
    enqueue(follow)
    print(json.dumps({"deliveries": len(follow)}))
    return 0


def register(sub) -> None:
    inv = sub.add_parser("invoices", help="mark an invoice paid, pause or resume its reminders, void it (audited)")
    inv.add_argument("action", choices=["pay", "pause", "resume", "void"])
    inv.add_argument("invoice", help="the invoice id, or its number with --tenant")
    inv.add_argument("--tenant")
    inv.add_argument("--reason", help="recorded in the audit trail")
    inv.set_defaults(func=_invoices)

    cu = sub.add_parser("customers", help="a customer's reminders: opt-out or opt-in (audited)")
    cu.add_argument("action", choices=["opt-out", "opt-in"])
    cu.add_argument("customer", help="the customer id the dispatch system sends")
    cu.add_argument("--tenant", required=True)
    cu.set_defaults(func=_customers)

    rm = sub.add_parser("reminders", help="payment reminders: preview what would be sent, or fan out now")
    rm_sub = rm.add_subparsers(dest="action", required=True)
    pv = rm_sub.add_parser("preview", help="the reminders the next days would send, and to whom")
    pv.add_argument("--tenant", required=True)
    pv.add_argument("--days", type=int, default=30)
    pv.add_argument("--json", action="store_true")
    pv.set_defaults(func=_preview)
    rn = rm_sub.add_parser("run", help="fan out the reminders due now, as beat does (enqueues them)")
    rn.set_defaults(func=_run)
