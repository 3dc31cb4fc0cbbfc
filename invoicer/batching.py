"""Group commit: callers hand one item each to a batcher and await their own result; the batcher
stores whatever is waiting as one batch, in one worker thread, with no timer (items gather while the
previous batch commits)."""
from __future__ import annotations

import asyncio
from typing import Callable

from starlette.concurrency import run_in_threadpool


class GroupCommit:
    """`store(items) -> results` (one result per item, in order) runs for at most `limit` items at a
    time, one batch after another; each caller gets its own result, or the batch's exception."""

    def __init__(self, store: Callable[[list], list], limit: int = 200):
        self.store, self.limit = store, limit
        self.waiting: list[tuple[object, asyncio.Future]] = []
        self.draining: asyncio.Task | None = None

    async def submit(self, item):
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self.waiting.append((item, done))
        if self.draining is None:
            self.draining = loop.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:self.limit], self.waiting[self.limit:]
                try:
                    results = await run_in_threadpool(self.store, [item for item, _ in batch])
                except Exception as exc:  # the whole batch failed (one transaction): every member hears it
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, done), result in zip(batch, results, strict=True):
                    if not done.done():  # its caller may have gone (a disconnect): the row is stored anyway
                        done.set_result(result)
        finally:
            self.draining = None
