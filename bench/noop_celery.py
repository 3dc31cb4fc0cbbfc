"""Raw Celery for bench/run.py: four no-op tasks on four queues, chained, with invoicer's settings.

The settings are copied from invoicer/tasks/__init__.py (late acks, reject on worker lost,
prefetch 1, results ignored, task events on, the same Redis transport options), so the only
difference from the product is that the task bodies do nothing. The last task of a chain
increments a Redis counter, which is how bench/run.py sees chains finish.

Worker: `python -m celery -A noop_celery worker -Q bq1,bq2,bq3,bq4 -c 2` with bench/ on sys.path.
The broker comes from BENCH_BROKER_URL (bench/run.py sets redis://127.0.0.1:6379/5).
"""
from __future__ import annotations

import os

import redis
from celery import Celery, chain

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/5")
COUNTER = "bench:chains_done"
QUEUES = ("bq1", "bq2", "bq3", "bq4")

app = Celery("bench_noop", broker=BROKER)
app.conf.update(
    broker_transport_options={"visibility_timeout": 600, "socket_connect_timeout": 3, "socket_timeout": 10,
                              "health_check_interval": 10},
    broker_connection_retry_on_startup=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_store_errors_even_if_ignored=False,
    task_time_limit=120,
    task_soft_time_limit=96,
    task_default_queue="bq1",
    worker_send_task_events=os.environ.get("BENCH_TASK_EVENTS", "1") == "1",
    task_send_sent_event=os.environ.get("BENCH_TASK_EVENTS", "1") == "1",
    worker_hijack_root_logger=False,
    timezone="UTC",
)

_redis = None


def _counter():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(BROKER)
    return _redis


def _task(name, queue):
    return app.task(name=name, queue=queue, bind=True, acks_late=True, reject_on_worker_lost=True,
                    ignore_result=True)


@_task("bench.step1", "bq1")
def step1(self, n):
    return None


@_task("bench.step2", "bq2")
def step2(self, n):
    return None


@_task("bench.step3", "bq3")
def step3(self, n):
    return None


@_task("bench.step4", "bq4")
def step4(self, n):
    _counter().incr(COUNTER)


def publish(count: int) -> None:
    """Publish `count` chains step1 -> step2 -> step3 -> step4 (immutable signatures, no results)."""
    with app.producer_or_acquire() as producer:
        for n in range(count):
            chain(step1.si(n), step2.si(n), step3.si(n), step4.si(n)).apply_async(producer=producer)
