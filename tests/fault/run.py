"""The full crash-and-outage run (not collected by pytest): `python -m tests.fault.run --events 2000`.

Starts a private Redis and PostgreSQL, the ingress, three workers, beat and the QuickBooks, Stripe,
SendGrid and Twilio simulators; posts the events concurrently (20% duplicates, 5% out-of-order
pairs); kills workers with SIGKILL, restarts Redis and PostgreSQL and makes the vendors fail at
seeded moments; then prints the verdict read from the vendors' records. Exit status 1 when anything
was lost, doubled or mispriced.
"""
from __future__ import annotations

import argparse
import sys

from .scenario import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=2000, help="events posted, duplicates included")
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--kills", type=int, default=8, help="workers SIGKILLed")
    p.add_argument("--redis-restarts", type=int, default=2)
    p.add_argument("--pg-restarts", type=int, default=2)
    p.add_argument("--sim-rounds", type=int, default=2, help="times each vendor fault is injected")
    p.add_argument("--concurrency", type=int, default=8, help="events posted at once")
    p.add_argument("--pace", type=float, default=0.1, help="seconds each sender waits between its events")
    p.add_argument("--sweep-grace", type=float, default=30,
                   help="INVOICER_SWEEP_GRACE: seconds before the sweep re-drives an idle event (the CI test's 5 "
                        "re-enqueues a backlog of thousands every 5 s)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for every job to settle")
    p.add_argument("--folder", help="where the servers' data and the processes' logs go (default: a temp folder)")
    args = p.parse_args(argv)

    def say(msg):
        print(msg, file=sys.stderr, flush=True)

    result = run(args.events, args.seed, args.kills, args.redis_restarts, args.pg_restarts, args.sim_rounds,
                 args.concurrency, args.pace, args.timeout, args.folder,
                 {"INVOICER_SWEEP_GRACE": str(args.sweep_grace)}, say)
    print(result.text())
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
