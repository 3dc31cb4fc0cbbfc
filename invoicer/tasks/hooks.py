"""Thin task: map one stored dispatch-system webhook (invoicer.hooks) to a v1 event, then publish it."""
from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from .. import hooks, pipeline
from ..config import settings
from . import task


@task("invoicer.ingest.hook", "ingest")
def process_hook(self, hook_pk: int) -> None:
    """fetch-job: the job, lines and customer through the vendor's API -> a v1 event -> the pipeline."""
    from ..ingress import publish

    attempt = self.request.retries + 1
    try:
        event_pk = hooks.process(hook_pk, attempt)
    except DBAPIError:
        raise  # the database is down: retried by the house decorator
    except Exception as exc:
        if hooks.retryable(exc) and attempt < settings().max_attempts:
            raise self.retry(countdown=pipeline.backoff(attempt, getattr(exc, "retry_after", None)),
                             max_retries=settings().max_attempts) from None
        hooks.fail(hook_pk, exc)
        return
    if event_pk is not None:
        publish(event_pk)


def redrive_stalled() -> int:
    """Hooks whose task the broker lost (received, never mapped): enqueued again (the beat sweep)."""
    cfg = settings()
    found = hooks.stalled(cfg.sweep_grace + cfg.retry_cap)
    for hook_pk in found:
        hooks.enqueue(hook_pk)
    return len(found)
