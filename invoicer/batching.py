"""Group commit: callers hand one item each to a batcher and await their own result; the batcher
stores whatever is waiting as one batch, in one worker thread, with no timer (items gather while the
previous batch commits)."""
from __future__ import annotations

import asyncio
from typing import Callable

from starlette.concurrency import run_in_threadpool


class GroupCommit:
    """`store(items) -> results` (one result per item, in order) runs for at most `limit` items at a
    time, one batch after another. `then(items, results)`, when given, runs next in a thread of its
    own while the next batch is stored (a slow broker holds up that batch's answers, not the
    commits after it). Each caller gets its own result, or the batch's exception."""

    def __init__(self, store: Callable[[list], list], limit: int = 200,
                 then: Callable[[list, list], object] | None = None):
        self.store, self.limit, self.then = store, limit, then
        self.waiting: list[tuple[object, asyncio.Future]] = []
        self.draining: asyncio.Task | None = None
        self.following: set[asyncio.Task] = set()

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
                    _answer(batch, error=exc)
                    continue
                if self.then is None:
                    _answer(batch, results)
                    continue
                follow = asyncio.get_running_loop().create_task(self._follow(batch, results))
                self.following.add(follow)
                follow.add_done_callback(self.following.discard)
        finally:
            self.draining = None

    async def _follow(self, batch: list, results: list) -> None:
        try:
            await run_in_threadpool(self.then, [item for item, _ in batch], results)
        finally:  # stored is stored: the answers stand whatever `then` did
            _answer(batch, results)


def _answer(batch: list, results: list | None = None, error: Exception | None = None) -> None:
    for i, (_, done) in enumerate(batch):
        if done.done():  # its caller has gone (a disconnect): the row is stored anyway
            continue
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(results[i])
