"""Beat's reminder job: select the steps due now and fan them out as deliveries; nothing is sent here."""
from __future__ import annotations

from .. import reminders
from . import enqueue, task


@task("invoicer.beat.reminders", "beat")
def fan_out(self) -> int:
    follow = reminders.fan_out()
    enqueue(follow)  # after fan_out's transactions committed; a lost message is re-driven by the sweep
    return len(follow)
