"""The beat sweep: the database is the record, so whatever the broker lost is found here and re-driven."""
from __future__ import annotations

import logging

from .. import pipeline
from . import enqueue, task

log = logging.getLogger("invoicer.sweeper")


@task("invoicer.beat.sweep", "beat")
def sweep(self) -> dict:
    events, deliveries, invoices = pipeline.stalled()
    from .pipeline import process_event

    for event_pk in events:
        process_event.apply_async((event_pk,))
    enqueue(deliveries)
    for invoice_id in invoices:
        enqueue(pipeline.advance_invoice(invoice_id))
    found = {"events": len(events), "deliveries": len(deliveries), "invoices": len(invoices)}
    if any(found.values()):
        log.warning("sweep re-drove %s", found)
    return found
