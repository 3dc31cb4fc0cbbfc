"""Vendor rate limits shared by every worker: a GCRA token bucket and a concurrency cap in Redis.

A burst for one tenant drains at the highest rate the vendor allows; a worker waits its turn (up to
`max_wait`), else raises Throttled, which reschedules the step without spending one of its attempts.
Without Redis (the embedded demo broker) the limits hold per process only.
"""
from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import RateLimited


class Throttled(RateLimited):
    """Our own limiter said wait; the vendor was not called."""


@dataclass(frozen=True)
class Rate:
    count: int
    per: float  # seconds
    burst: int | None = None  # default: count (a full window may go at once)

    @property
    def interval_ms(self) -> float:
        return self.per * 1000 / self.count


def within(count: int, per: float, burst: int, jitter: float = 0.1) -> Rate:
    """A rate that never puts more than `count` requests in any window of `per` seconds at the vendor,
    however it slides its window: a bucket lets `burst` go at once and then the rest of the count over
    the window. Requests leave us in order but reach the vendor up to `jitter` seconds apart from when
    the limiter let them go (scheduling, connection set-up), which squeezes `per + jitter` seconds of
    our admissions into one vendor window; the steady rate is stretched to fit that."""
    return Rate(count - burst, per + jitter, burst)


_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3] or 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
-- a request that costs `cost` units takes `cost` intervals (Gmail: a send is 100 quota units)
local wait = tat + interval * (cost - 1) - tolerance - now
-- rounded up: Redis truncates a Lua number reply to an integer, and a wait of 0.5 ms read as 0
-- would let the caller through without its slot being taken
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], tat + interval * cost, 'PX', math.ceil(tat + interval * cost - now + 1000))
return 0
"""

_ENTER = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 0
end
return 50
"""


class Limiter:
    def __init__(self, redis_client=None, prefix: str = "invoicer:rl:"):
        self.redis = redis_client
        self.prefix = prefix
        if redis_client is not None:
            self._gcra = redis_client.register_script(_GCRA)
            self._enter = redis_client.register_script(_ENTER)
        self._local: dict[str, float] = {}
        self._lock = threading.Lock()

    def _wait_ms(self, key: str, rate: Rate, cost: int = 1) -> float:
        tolerance = (rate.burst or rate.count) * rate.interval_ms - rate.interval_ms
        if self.redis is not None:
            return float(self._gcra(keys=[key], args=[rate.interval_ms, tolerance, cost]))
        with self._lock:
            now = time.monotonic() * 1000
            tat = max(self._local.get(key, now), now)
            wait = tat + rate.interval_ms * (cost - 1) - tolerance - now
            if wait <= 0:
                self._local[key] = tat + rate.interval_ms * cost
            return max(0.0, wait)

    @contextmanager
    def slot(self, key: str, rates: list[Rate], concurrency: int | None = None, lease: float = 60,
             max_wait: float = 20, cost: int = 1):
        """Hold one request's worth of every rate (and a concurrency slot) for `key`; a request that
        costs `cost` units (a rate counted in quota units, as Gmail's) takes that many."""
        start = time.monotonic()
        deadline = start + max_wait
        waited = False
        try:
            for i, rate in enumerate(rates):
                while (wait := self._wait_ms(f"{self.prefix}{key}:r{i}", rate, cost)) > 0:
                    if time.monotonic() + wait / 1000 > deadline:
                        raise Throttled(f"{key}: over {rate.count} per {rate.per:g} s", retry_after=wait / 1000)
                    waited = True
                    time.sleep(wait / 1000)
        finally:
            if waited:
                _count_wait(key, time.monotonic() - start)
        token = uuid.uuid4().hex
        ckey = f"{self.prefix}{key}:c"
        if concurrency and self.redis is not None:
            while int(self._enter(keys=[ckey], args=[concurrency, int(lease * 1000), token])):
                if time.monotonic() > deadline:
                    raise Throttled(f"{key}: {concurrency} requests already in flight", retry_after=1.0)
                time.sleep(0.05)
        try:
            yield
        finally:
            if concurrency and self.redis is not None:
                self.redis.zrem(ckey, token)


def _count_wait(key: str, seconds: float) -> None:
    from .. import metrics

    platform = key.split(":", 1)[0]  # keys start with the provider's slug
    metrics.RATE_WAITS.labels(platform).inc()
    metrics.RATE_WAIT_SECONDS.labels(platform).inc(seconds)


_limiter: Limiter | None = None


def limiter() -> Limiter:
    """The process's limiter, on the broker's Redis when the broker is Redis."""
    global _limiter
    if _limiter is None:
        from ..config import settings

        url = settings().broker_url
        client = None
        if url.startswith("redis"):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        _limiter = Limiter(client)
    return _limiter
