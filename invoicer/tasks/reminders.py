"""Beat's reminder and payment-status jobs: they select what is due and fan it out; the work is elsewhere."""
from __future__ import annotations

from .. import payments, reminders
from . import enqueue, task


@task("invoicer.beat.reminders", "beat")
def fan_out(self) -> int:
    follow = reminders.fan_out()
    enqueue(follow)  # after fan_out's transactions committed; a lost message is re-driven by the sweep
    return len(follow)


@task("invoicer.beat.payments", "beat")
def select_polls(self) -> int:
    """Open invoices on platforms without payment webhooks, claimed for one status request each."""
    due = payments.due()
    for delivery_id in due:
        poll_payment.apply_async((delivery_id,))
    return len(due)


@task("invoicer.invoices.poll_payment", "invoices")
def poll_payment(self, delivery_id: int) -> str:
    return payments.poll(delivery_id)
