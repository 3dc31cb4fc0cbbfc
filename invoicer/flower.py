"""`invoicer flower`: Flower on invoicer's Celery app, locked by default, its history kept on disk.

- Authentication: HTTP basic auth from INVOICER_FLOWER_BASIC_AUTH (`user:password`, several
  comma-separated). It is handed to Flower through its own environment variable, never on the
  command line (where `ps` would show it). OAuth is Flower's own (`FLOWER_AUTH`,
  `FLOWER_AUTH_PROVIDER`, `FLOWER_OAUTH2_*`; docs/operations.md). With neither, Flower is refused
  unless `--no-auth` says this is a local, private run.
- Flower serves `/metrics` to anyone (it chose to, so Prometheus needs no credentials); here it
  asks for the same credentials as the pages. `/healthcheck` stays open for probes.
- Persistent: the task history is saved to `<var dir>/flower.db` every minute and on shutdown,
  and read back at start.
- Task events: workers send none unless INVOICER_TASK_EVENTS=true. Flower tells every worker to
  start sending them (a broadcast every 5 s, so workers started later are enrolled too); when it
  stops, this command tells them to stop again, unless INVOICER_TASK_EVENTS=true. Another Flower
  still running re-enables them within 5 s.
- Queue lengths: with a Redis broker Flower reads them from Redis itself (its broker page and
  /api/queues/length); `--broker-api` is only for RabbitMQ's management API. Flower asks the workers
  which queues they consume, and falls back to the app's declared queues: all of invoicer's are
  declared here, so every queue shows even while no worker has answered.
"""
from __future__ import annotations

import atexit
import os
import sys

AUTH_ENV = "INVOICER_FLOWER_BASIC_AUTH"
OAUTH_ENV = "FLOWER_AUTH"  # Flower's own: a regular expression of the e-mail addresses let in


class Refused(Exception):
    """Flower would start without authentication, or with credentials it cannot use."""


def basic_auth(environ) -> str | None:
    """The basic-auth pairs from the environment, checked; None when unset."""
    value = (environ.get(AUTH_ENV) or "").strip()
    if not value:
        return None
    for pair in value.split(","):
        user, sep, password = pair.partition(":")
        if not sep or not user.strip() or not password:
            raise Refused(f"{AUTH_ENV} must be user:password (several separated by commas); "
                          f"one entry has no user or no password")
    return value


def flower_argv(args, var_dir, environ) -> list[str]:
    """The arguments for Flower (no secrets in them), after checking authentication is configured."""
    auth = basic_auth(environ)
    if auth is None and not environ.get(OAUTH_ENV) and not args.no_auth:
        raise Refused(f"Flower shows every task and can stop workers: set {AUTH_ENV}=user:password "
                      f"(or Flower's OAuth, {OAUTH_ENV} and FLOWER_OAUTH2_*), or pass --no-auth for a "
                      f"private local run")
    db = args.db or str(var_dir / "flower.db")
    return ["flower", f"--port={args.port}", f"--address={args.address}", "--persistent=True", f"--db={db}",
            "--state_save_interval=60000", f"--max_tasks={args.max_tasks}",
            "--inspect_timeout=3000"]  # a busy worker may take more than Flower's 1 s to answer


def _lock_metrics() -> None:
    """Flower's /metrics asks for the same credentials as its pages (it serves them to anyone)."""
    from flower import urls
    from flower.views.monitor import Metrics
    from tornado import web

    class AuthenticatedMetrics(Metrics):
        @web.authenticated
        async def get(self):
            await super().get()

    for i, handler in enumerate(urls.handlers):
        if isinstance(handler, tuple) and handler[0] == r"/metrics":
            urls.handlers[i] = (handler[0], AuthenticatedMetrics)


def _events_off(app) -> None:
    try:
        app.control.disable_events()
    except Exception:  # the broker is gone: nothing to tell
        pass


def run(args) -> int:
    from kombu import Queue

    from .config import settings
    from .tasks import QUEUES, app

    cfg = settings()
    try:
        argv = flower_argv(args, cfg.var_dir, os.environ)
    except Refused as exc:
        print(f"invoicer flower: {exc}", file=sys.stderr)
        return 2
    auth = basic_auth(os.environ)
    if auth:
        os.environ["FLOWER_BASIC_AUTH"] = auth  # Flower reads its options from FLOWER_* too
    _lock_metrics()
    app.conf.task_queues = [Queue(name) for name in QUEUES]  # this process only: what Flower lists
    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.task_events:
        atexit.register(_events_off, app)  # runs after Flower's own exit handler (saving its state)
    app.start(argv)
    return 0
