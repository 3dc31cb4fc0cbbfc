"""Pieces the accounting simulators share (Zoho Books, FreshBooks, Wave, MYOB): a clock tests can move,
a vendor's per-account call quota (rolling minute, day, calls in flight), and route dispatch that hands
each API handler the request once the vendor's auth and limits have let it through. Tests and
`invoicer sandbox` only."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .simulate import Reply, Request, Simulator


@dataclass
class Quota:
    """One account's calls: at most `minute` in any rolling 60 s (or `per` seconds), `day` per day from
    the first call, `concurrent` at once. `take` counts a call or names the limit it would break."""
    minute: int = 60
    day: int = 5000
    concurrent: int = 5
    per: float = 60.0
    window: deque = field(default_factory=deque)
    day_start: float | None = None
    day_count: int = 0
    in_flight: int = 0

    def take(self, now: float) -> str | None:
        if self.day_start is None or now - self.day_start >= 86400:
            self.day_start, self.day_count = now, 0
        while self.window and now - self.window[0] >= self.per:
            self.window.popleft()
        if self.day_count >= self.day:
            return "day"
        if len(self.window) >= self.minute:
            return "minute"
        if self.in_flight >= self.concurrent:
            return "concurrent"
        self.day_count += 1
        self.window.append(now)
        self.in_flight += 1
        return None

    def retry_after(self, limit: str, now: float) -> float:
        if limit == "day":
            return max(1.0, self.day_start + 86400 - now)
        if limit == "minute" and self.window:
            return max(1.0, self.window[0] + self.per - now)
        return 1.0

    def release(self) -> None:
        self.in_flight -= 1


class AccountingSimulator(Simulator):
    """A simulator with a movable clock and routed API handlers.

    Subclasses set `routes`, implement `fresh()` and call `reset()` at the end of their __init__, [(method, path regex, handler(self, account, request) -> Reply)] and implement
    `authorise(request) -> (account, None) | (None, error Reply)`, `quota(account) -> Quota`,
    `over_limit(limit, retry_after) -> Reply` (the vendor's own answer) and `not_found(request)`; `outside`
    lists (method, path) -> handler(self, request) served without auth (a token endpoint)."""

    outside: dict[tuple[str, str], Callable] = {}

    def __init__(self):
        super().__init__()
        self.state = threading.RLock()
        self.offset = 0.0
        self.gate = None  # a threading.Event: API calls wait on it while counted in flight

    def reset(self) -> None:
        """Back to a new simulator (no requests, faults, tokens or records), same settings."""
        with self.state, self.lock:
            self.forget()
            self.offset = 0.0
            self.fresh()

    def fresh(self) -> None:
        """Subclasses: make their accounts, tokens and records anew (called under the locks)."""

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock (token expiry, rate windows) forward."""
        with self.state:
            self.offset += seconds

    def requests_to(self, method: str, suffix: str) -> list[Request]:
        return [r for r in self.received if r.method == method and r.path.endswith(suffix)]

    def handle(self, request: Request) -> Reply:
        direct = self.outside.get((request.method, request.path))
        if direct is not None:
            return direct(self, request)
        for method, pattern, handler in self._compiled:
            m = pattern.match(request.path)
            if m and method == request.method:
                request.params = m.groupdict()
                return self._guarded(request, handler)
        return self.not_found(request)

    def _guarded(self, request: Request, handler) -> Reply:
        with self.state:
            account, refused = self.authorise(request)
            if refused is not None:
                return refused
            quota = self.quota(account)
            now = self.now()
            limit = quota.take(now)
            if limit:
                return self.over_limit(limit, quota.retry_after(limit, now))
        try:
            if self.gate is not None:
                self.gate.wait(30)
            with self.state:
                return handler(self, account, request)
        finally:
            with self.state:
                quota.release()

    def rate_limited(self, request: Request) -> Reply:  # an injected "429"
        return self.over_limit("minute", 60.0)

    # ------------------------------------------------------------ for subclasses

    def authorise(self, request: Request):
        raise NotImplementedError

    def quota(self, account) -> Quota:
        raise NotImplementedError

    def over_limit(self, limit: str, retry_after: float) -> Reply:
        return Reply(429, {"error": f"{limit} limit"}, {"Retry-After": str(int(retry_after))})

    def not_found(self, request: Request) -> Reply:
        return Reply(404, {"error": f"no route {request.method} {request.path}"})
