"""Prometheus metrics from the ingress and the workers (prometheus-client).

Counters and histograms are kept where the work happens. A worker started with `--metrics-port`
runs in prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set before this module is
first imported), so its pool processes' figures add up on the one port. Gauges that describe the
system rather than one process (queue depth, deliveries by state) are read at scrape time from
Redis and PostgreSQL by the ingress. Every /metrics endpoint needs `Authorization: Bearer
$INVOICER_METRICS_TOKEN`.
"""
from __future__ import annotations

import hmac
import os
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from socketserver import ThreadingMixIn

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)

EVENTS = Counter("invoicer_events", "Job events at the ingress, by outcome (accepted, duplicate, rejected) "
                 "and the reason for a rejection", ["outcome", "reason"])
INGRESS_BATCH = Histogram("invoicer_ingress_batch_size", "Events stored by one group commit of the ingress",
                          buckets=(1, 2, 5, 10, 20, 50, 100, 200))
INVOICES = Counter("invoicer_invoices_created", "Invoices created on a platform", ["platform"])
PROVIDER_ERRORS = Counter("invoicer_provider_errors", "Errors from platforms and channels, by typed error",
                          ["platform", "error"])
RETRIES = Counter("invoicer_retries", "Deliveries scheduled for another attempt", ["kind", "platform"])
DEAD = Counter("invoicer_dead_letters", "Deliveries dead-lettered", ["kind", "platform"])
RATE_WAITS = Counter("invoicer_ratelimit_waits", "Calls that waited for our rate limiter", ["platform"])
RATE_WAIT_SECONDS = Counter("invoicer_ratelimit_wait_seconds", "Time spent waiting for our rate limiter",
                            ["platform"])
TO_INVOICE = Histogram("invoicer_event_to_invoice_seconds", "From the event's arrival to its invoice on a platform",
                       ["platform"], buckets=LATENCY)
TO_NOTIFIED = Histogram("invoicer_event_to_notified_seconds",
                        "From the event's arrival to the job done (invoiced, rendered, notified)", buckets=LATENCY)
REMINDERS = Counter("invoicer_reminders_sent", "Payment reminders sent, by cadence step", ["step"])


def authorized(header: str | None) -> bool:
    token = os.environ.get("INVOICER_METRICS_TOKEN")
    return bool(token) and hmac.compare_digest(header or "", f"Bearer {token}")


class SystemCollector:
    """Queue depth (Redis) and open deliveries by kind and state (PostgreSQL), read at scrape time."""

    def __init__(self, queues: tuple[str, ...]):
        self.queues = queues

    def collect(self):
        from sqlalchemy import func, select

        from . import db
        from .config import settings

        depth = GaugeMetricFamily("invoicer_queue_depth", "Messages waiting in each broker queue", labels=["queue"])
        url = settings().broker_url
        if url.startswith("redis"):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            try:
                with client.pipeline(transaction=False) as pipe:
                    for q in self.queues:
                        pipe.llen(q)
                    for q, n in zip(self.queues, pipe.execute()):
                        depth.add_metric([q], n)
            except redis.RedisError:
                pass  # the broker being down shows as missing figures (and in /readyz)
            finally:
                client.close()
        yield depth
        open_ = GaugeMetricFamily("invoicer_deliveries", "Deliveries not finished (or waiting for a person: dead, review), by kind and state",
                                  labels=["kind", "status"])
        d = db.deliveries.c
        try:
            with db.engine().connect() as conn:
                waiting = d.status.in_(("pending", "running", "retry", "dead", "review"))
                rows = conn.execute(select(d.kind, d.status, func.count()).where(waiting)
                                    .group_by(d.kind, d.status)).all()
        except Exception:
            rows = []
        for kind, status, n in rows:
            open_.add_metric([kind, status], n)
        yield open_


def registry_for_process() -> CollectorRegistry:
    """This process's metrics, or every pool process's when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return reg
    from prometheus_client import REGISTRY

    return REGISTRY


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(port: int, host: str = "0.0.0.0") -> WSGIServer:
    """A worker's /metrics on its own port (a daemon thread), bearer token required."""
    registry = registry_for_process()

    def app(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not authorized(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"a bearer token (INVOICER_METRICS_TOKEN) is required\n"]
        body, ctype = exposition(registry)
        start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server(host, port, app, server_class=_Threading, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
