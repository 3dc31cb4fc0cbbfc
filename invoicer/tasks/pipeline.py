"""Thin tasks: take an id, call the domain code, publish what comes next."""
from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from .. import pipeline
from . import enqueue, task


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


def _run(delivery_id: int) -> None:
    outcome = pipeline.run_delivery(delivery_id)
    if outcome.retry_in is not None:
        kind = pipeline.delivery_kind(delivery_id)
        enqueue([(kind, delivery_id)], countdown=outcome.retry_in)
    for kind, other, seconds in outcome.later:
        enqueue([(kind, other)], countdown=seconds)
    enqueue(outcome.enqueue)


@task("invoicer.invoices.create", "invoices")
def create_invoice(self, delivery_id: int) -> None:
    """create-invoice on one platform, under the delivery's idempotency key."""
    _run(delivery_id)


@task("invoicer.render.pdf", "render")
def render_pdf(self, delivery_id: int) -> None:
    _run(delivery_id)


@task("invoicer.notify.send", "notify")
def send_message(self, delivery_id: int) -> None:
    _run(delivery_id)


BY_KIND = {"invoice": create_invoice, "pdf": render_pdf, "email": send_message, "sms": send_message,
           "slack": send_message}
