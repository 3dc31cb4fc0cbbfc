"""What the hostile-input tests share: the footprint an answer may not leave (rows stored, messages queued)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from invoicer import db
from invoicer.tasks import QUEUES


def footprint(redis_client) -> dict:
    """Rows in events and jobs, and messages waiting or in flight on every queue."""
    with db.engine().connect() as conn:
        rows = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (db.events, db.jobs)}
    return {**rows, **{q: redis_client.llen(q) for q in QUEUES}, "unacked": redis_client.zcard("unacked_index")}


@pytest.fixture
def untouched(client, redis_client, published):
    """Asserts, when called, that nothing was stored, queued or published since the test began."""
    before = footprint(redis_client)
    assert before["events"] == 0

    def check():
        assert footprint(redis_client) == before
        assert published == []

    return check
