"""The crash suite, CI-sized: the full run (tests/fault/run.py) at a size the normal suite can afford.

80 events (16 of them duplicates, out-of-order pairs among the rest), two workers SIGKILLed, Redis
and PostgreSQL each restarted while events arrive, and every vendor fault once: QuickBooks dropping
the connection after taking a create and answering 5xx, Stripe answering 429 and 5xx, dropping a
create and stalling one past the task's time limit, Twilio dropping a send, SendGrid answering 429
and 5xx. The verdict is read from the simulators' own records.
"""
from __future__ import annotations

import pytest

from .scenario import EVENTS, run


@pytest.mark.slow
def test_nothing_lost_nothing_doubled_through_kills_restarts_and_vendor_faults(tmp_path):
    if not EVENTS.exists():
        pytest.skip(f"{EVENTS} is not here (the shared data folder sits beside the repository)")
    result = run(events=80, seed=8, kills=2, redis_restarts=1, pg_restarts=1, sim_rounds=1, concurrency=4,
                 pace=0.3, timeout=240, folder=tmp_path / "run", say=print)
    print(result.text())
    f = result.figures
    assert not result.problems, result.text()
    assert f["accepted"] == f["distinct events"] and f["duplicates absorbed"] >= 16
    assert f["platform invoices held"] == f["platform invoices expected"]
    assert (f["invoices lost"], f["invoices doubled"], f["messages lost"], f["messages doubled"],
            f["wrong totals"]) == (0, 0, 0, 0, 0)
    assert f["kills survived"] == 2 and f["restarts survived"].startswith("2 ")
    assert f["vendor faults injected"] == 9
