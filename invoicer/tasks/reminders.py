"""Beat's reminder and payment-status jobs: they select what is due and fan it out; the work is elsewhere.
Also the payment notices of platforms whose webhooks carry ids only (QuickBooks), turned into the same polls."""
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


@task("invoicer.invoices.follow_payment", "invoices")
def follow_payment(self, delivery_id: int, payment_id: int) -> list[str]:
    """A payment notice (QuickBooks webhook) on the platform entry of our invoice `delivery_id`: the invoices
    the payment is applied to, each asked about now."""
    return payments.follow(delivery_id, str(payment_id))


def payment_notice(tenant: str, provider: str, event) -> str:
    """A verified notice that an invoice or a payment changed, ids only: the platform is asked off the request
    (the vendor wants its answer within seconds): `polling` (our open invoice's poll task is enqueued),
    `following` (the payment is fetched by a task), `not_open` (nothing of ours open there to settle)."""
    if event.type == "invoice.changed":
        ids = payments.open_deliveries(tenant, provider, [event.external_id])
        for delivery_id in ids:
            poll_payment.apply_async((delivery_id,))
        return "polling" if ids else "not_open"
    if not event.external_id.isdigit():  # QuickBooks' ids are numbers; task messages carry integers only
        return "ignored"
    anchors = payments.anchors(tenant, provider, event.raw.get("account"))
    for delivery_id in anchors:
        follow_payment.apply_async((delivery_id, int(event.external_id)))
    return "following" if anchors else "not_open"
