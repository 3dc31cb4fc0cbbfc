"""The beat sweep's selection (pipeline.stalled) on a clock the test sets: a stalled event is re-driven
a grace period after it stalled, then after doubling waits (capped), not once more every period."""
from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import update

from invoicer import db, pipeline
from invoicer.config import settings
from invoicer.ingress import persist
from invoicer.models import Event

from .conftest import make_event


def test_a_stalled_event_is_redriven_after_grace_then_after_doubling_waits(clean):
    grace = settings().sweep_grace  # 5 s in the tests
    event = make_event()
    pk, _ = persist("acme-hvac", "mobile-app", Event.model_validate(event), json.dumps(event))
    born = db.utcnow() - timedelta(hours=1)  # the clock below starts from here
    with db.engine().begin() as conn:
        conn.execute(update(db.events).where(db.events.c.id == pk).values(received_at=born))

    def swept(after: float) -> bool:
        events, _, _ = pipeline.stalled(now=born + timedelta(seconds=after))
        return events == [pk]

    assert not swept(grace - 1)  # still within its grace period: maybe just queued
    assert swept(grace + 1)  # 6 s: the first re-drive; it had waited 6 s, so the next is 6 s on
    assert not swept(grace + 6)
    assert swept(13)  # 7 s after: due; it had waited 13 s
    assert not swept(25)
    assert swept(26)  # 13 s after: due; it had waited 26 s
    assert not swept(51) and swept(52)  # it had waited 52 s, but no wait is over 10 grace periods (50 s)
    assert not swept(101) and swept(102)
    assert not swept(151) and swept(152)  # the cap holds from now on


def test_a_backlog_is_redriven_never_swept_rows_first(clean):
    """Rows never swept come before rows waiting out their back-off, whatever their ids."""
    grace = settings().sweep_grace
    pks = []
    for n in range(3):
        event = make_event(event_id=f"evt-{n}", job_id=f"J-{n}")
        pks.append(persist("acme-hvac", "mobile-app", Event.model_validate(event), json.dumps(event))[0])
    born = db.utcnow() - timedelta(hours=1)
    with db.engine().begin() as conn:
        conn.execute(update(db.events).where(db.events.c.id.in_(pks[:2])).values(received_at=born))
    at = born + timedelta(seconds=grace + 1)
    assert pipeline.stalled(now=at)[0] == pks[:2]
    with db.engine().begin() as conn:  # the third arrives later, and stalls too
        conn.execute(update(db.events).where(db.events.c.id == pks[2]).values(received_at=at))
    assert pipeline.stalled(limit=1, now=at + timedelta(seconds=grace + 1))[0] == [pks[2]]
