"""What a worker sizes to its pool: a threads-pool worker runs `concurrency` tasks at once in one
process, so the pooled HTTP session and the database engine keep one connection per thread.

Prefork needs nothing here: each child runs one task at a time with its own session and engine
(re-made after the fork, see invoicer/tasks/__init__.py). Connected to Celery's `celeryd_init`, so it
holds for `invoicer worker` and `celery -A worker worker` alike, before any task runs.
"""
from __future__ import annotations

from celery.signals import celeryd_init

THREADED = ("threads", "gevent", "eventlet")


def pool_name(pool) -> str:
    """Celery passes the pool as a name or as its class (celery.concurrency.thread.TaskPool)."""
    if isinstance(pool, str):
        return pool
    module = getattr(pool, "__module__", "") or ""
    return {"celery.concurrency.thread": "threads", "celery.concurrency.gevent": "gevent",
            "celery.concurrency.eventlet": "eventlet"}.get(module, "prefork")


def size_for(pool, concurrency: int | None) -> None:
    if pool_name(pool) not in THREADED or not concurrency:
        return
    from . import db
    from .providers import http

    http.size_pool(concurrency)
    db.size_pool(concurrency)


@celeryd_init.connect
def _size(options=None, **_) -> None:
    options = options or {}
    size_for(options.get("pool_cls") or options.get("pool"), options.get("concurrency"))
