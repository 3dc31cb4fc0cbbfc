"""The beat sweep: the database is the record, so whatever the broker lost is found here and re-driven."""
from __future__ import annotations

from .. import logs, pipeline
from . import redrive, task
from .hooks import redrive_stalled

log = logs.get("invoicer.sweeper")


@task("invoicer.beat.sweep", "beat")
def sweep(self) -> dict:
    found = redrive(*pipeline.stalled())
    found["hooks"] = redrive_stalled()
    if any(found.values()):
        log.warning("sweep.redrove", **found)
    return found
