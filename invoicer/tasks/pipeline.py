"""Thin tasks: take ids, call the domain code, publish what comes next."""
from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from .. import pipeline
from . import enqueue, enqueue_later, task


@task("invoicer.ingest.process", "ingest")
def process_event(self, event_pk: int) -> None:
    """map-job: apply the event to its job; when it triggers invoicing, start one task per platform."""
    try:
        follow = pipeline.process_event(event_pk)
    except DBAPIError:
        raise  # the database is down: retried by the house decorator
    except SoftTimeLimitExceeded as exc:
        # only too slow this time (a cold worker, a busy machine): the event is not at fault and is still
        # accepted (the transaction rolled back); try again, or the sweep will
        raise self.retry(exc=exc, countdown=1)
    except Exception as exc:
        pipeline.fail_event(event_pk, exc)
        return
    enqueue(follow)


@task("invoicer.ingest.process_many", "ingest")
def process_many(self, event_pks: list[int]) -> None:
    """map-job for a batch the ingress stored in one commit: one transaction, the deliveries of the whole
    batch enqueued at once; an event that cannot be applied is marked failed alone."""
    try:
        follow = pipeline.process_events(event_pks, reraise=(SoftTimeLimitExceeded,))
    except SoftTimeLimitExceeded as exc:  # as process_event: the batch rolled back and is still accepted
        raise self.retry(exc=exc, countdown=1)
    enqueue(follow)


def _run(delivery_ids: list[int] | int) -> None:
    """Run a batch of deliveries (a bare id: a message queued before batches)."""
    outcome = pipeline.run_deliveries([delivery_ids] if isinstance(delivery_ids, int) else delivery_ids)
    enqueue_later(outcome.later)
    enqueue(outcome.enqueue)


@task("invoicer.invoices.create", "invoices")
def create_invoice(self, delivery_ids: list[int] | int) -> None:
    """create-invoice on platforms, each under its delivery's idempotency key."""
    _run(delivery_ids)


@task("invoicer.render.pdf", "render")
def render_pdf(self, delivery_ids: list[int] | int) -> None:
    _run(delivery_ids)


@task("invoicer.notify.send", "notify")
def send_message(self, delivery_ids: list[int] | int) -> None:
    _run(delivery_ids)


BY_KIND = {"invoice": create_invoice, "pdf": render_pdf, "email": send_message, "sms": send_message,
           "slack": send_message}
