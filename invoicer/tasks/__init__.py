"""The Celery app and the one house decorator every task uses.

At-least-once settings: late acks, tasks given back when a worker dies, prefetch 1, a visibility
timeout longer than any task's hard limit, results ignored (the database is the record).
"""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging, worker_process_init
from sqlalchemy.exc import DBAPIError

from ..config import settings

QUEUES = ("ingest", "invoices", "render", "notify", "beat")


def make_app() -> Celery:
    cfg = settings()
    app = Celery("invoicer", broker=cfg.broker_url, include=["invoicer.tasks.pipeline", "invoicer.tasks.sweeper",
                                                             "invoicer.tasks.hooks", "invoicer.tasks.reminders"])
    options = {"visibility_timeout": cfg.visibility_timeout}
    if cfg.broker_url.startswith("filesystem"):  # the embedded broker: folders under var/
        from ..embedded import register

        register()
        folder = str(cfg.var_dir / "broker")
        os.makedirs(folder, exist_ok=True)
        options.update(data_folder_in=folder, data_folder_out=folder, polling_interval=0.05,
                       processed_folder=str(cfg.var_dir / "broker-processed"), store_processed=False,
                       control_folder=str(cfg.var_dir / "broker-control"))  # kombu's default: ./control
    elif cfg.broker_url.startswith("redis"):
        # kombu scans for abandoned (unacked, older than the visibility timeout) messages only every
        # interval x throttle seconds, 100 s by default: scan every quarter of the timeout instead
        options.update(socket_connect_timeout=3, socket_timeout=10, health_check_interval=10,
                       unacked_restore_interval=max(1, min(60, cfg.visibility_timeout // 4)),
                       unacked_restore_throttle=1)
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_store_errors_even_if_ignored=False,
        task_time_limit=cfg.task_time_limit,
        task_soft_time_limit=max(1, int(cfg.task_time_limit * 0.8)),
        task_default_queue="ingest",
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                   "interval_max": 1},
        # task events cost a Redis write per task state; Flower switches them on while it watches
        # (INVOICER_TASK_EVENTS=true sends them always, with the publisher's "sent" event too)
        worker_send_task_events=cfg.task_events,
        task_send_sent_event=cfg.task_events,
        worker_hijack_root_logger=False,
        timezone="UTC",
    )
    from beat_schedule import schedule

    app.conf.beat_schedule = schedule(cfg)
    return app


app = make_app()


@worker_process_init.connect
def _fresh_child(**_) -> None:
    """A forked pool process must not share the parent's database connections; it also loads the
    heavy modules (reportlab, fonts, locale data) now rather than inside its first task's time limit."""
    from babel import Locale

    from .. import db, pdf

    db.engine().dispose(close=False)
    pdf.register_fonts()
    Locale.parse("en_US").currency_formats  # noqa: B018  (loads the CLDR data once)


def task(name: str, queue: str, **options):
    """invoicer.<area>.<verb>, on its own queue; the database being down is retried with backoff."""
    return app.task(name=name, queue=queue, bind=True, acks_late=True, reject_on_worker_lost=True,
                    ignore_result=True, autoretry_for=(DBAPIError,), retry_backoff=2, retry_backoff_max=60,
                    retry_jitter=True, max_retries=30, **options)


PER_MESSAGE = 50  # delivery ids per task message


def enqueue(follow: list[tuple[str, int]], countdown: float | None = None) -> None:
    """Publish delivery tasks, the ids grouped by task into messages of up to PER_MESSAGE, all on one
    producer connection; called only after the transaction that made them has committed."""
    from .pipeline import BY_KIND

    by_task: dict = {}
    for kind, delivery_id in follow:
        by_task.setdefault(BY_KIND[kind], []).append(delivery_id)
    if not by_task:
        return
    with app.producer_or_acquire() as producer:
        for task, ids in by_task.items():
            for at in range(0, len(ids), PER_MESSAGE):
                task.apply_async((ids[at:at + PER_MESSAGE],), countdown=countdown, producer=producer)


def enqueue_later(later: list[tuple[str, int, float]]) -> None:
    """Publish retries, (kind, id, seconds): those due at about the same time share messages."""
    by_when: dict[float, list] = {}
    for kind, delivery_id, seconds in later:
        by_when.setdefault(round(seconds, 1), []).append((kind, delivery_id))
    for seconds, follow in by_when.items():
        enqueue(follow, countdown=seconds)


def redrive(events: list[int], deliveries: list[tuple[str, int]], invoices: list[int]) -> dict:
    """Enqueue again what the sweep or an operator's replay found: events to apply, deliveries to run,
    invoices to move on. Harmless when any of it is already in flight: every task claims first."""
    from .. import pipeline
    from .pipeline import process_event

    for event_pk in events:
        process_event.apply_async((event_pk,))
    enqueue(deliveries)
    for invoice_id in invoices:
        enqueue(pipeline.advance_invoice(invoice_id))
    return {"events": len(events), "deliveries": len(deliveries), "invoices": len(invoices)}


@setup_logging.connect
def _logging(loglevel=None, **_) -> None:
    """Celery leaves logging to us: JSON lines, masked (invoicer.logs)."""
    from .. import logs

    logs.configure(loglevel or "INFO")
