"""The shared rate limiter on a real Redis: limits hold across threads (and so across workers)."""
from __future__ import annotations

import bisect
import random
import threading
import time

import pytest
import redis

from invoicer.providers.ratelimit import Limiter, Rate, Throttled, within

from ..conftest import TEST_ENV


@pytest.fixture
def limiter(redis_client):
    redis_client.flushdb()
    return Limiter(redis.Redis.from_url(TEST_ENV["INVOICER_BROKER_URL"]))


def test_a_full_window_goes_at_once_then_it_waits(limiter):
    """10 a minute: ten requests need no wait, the eleventh waits about six seconds."""
    rate = Rate(10, 60)
    assert [limiter._wait_ms("t:burst", rate) for _ in range(10)] == [0] * 10
    assert 5000 < limiter._wait_ms("t:burst", rate) <= 6000


def test_a_request_can_cost_many_units(limiter):
    """Gmail counts quota units: 1,000 a minute with a burst of 300, a send costs 100. Three sends go at
    once, the fourth would wait for 100 units (6 s) and takes nothing, so a cheap look-up (5 units) waits
    only 0.3 s; without Redis the same arithmetic holds in the process."""
    rate = Rate(1000, 60, burst=300)
    for lim in (limiter, Limiter(None)):
        assert [lim._wait_ms("t:units", rate, 100) for _ in range(3)] == [0] * 3
        assert 5900 < lim._wait_ms("t:units", rate, 100) <= 6000
        assert 250 < lim._wait_ms("t:units", rate, 5) <= 300


def test_threads_share_one_budget(limiter):
    """Four threads, 20 requests, 10/s with a burst of 1: never more than one request per 0.1 s window."""
    stamps, lock = [], threading.Lock()

    def work():
        for _ in range(5):
            with limiter.slot("t:shared", [Rate(10, 1, burst=1)]):
                with lock:
                    stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 20
    assert stamps[-1] - stamps[0] >= 19 * 0.1 * 0.95


def test_concurrency_cap(limiter):
    inside, peak, lock = [0], [0], threading.Lock()

    def work():
        with limiter.slot("t:conc", [Rate(1000, 1)], concurrency=2):
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= peak[0] <= 2 and inside[0] == 0


def test_a_long_wait_raises_throttled_without_calling(limiter):
    with limiter.slot("t:slow", [Rate(1, 60)]):
        pass
    with pytest.raises(Throttled) as caught:
        with limiter.slot("t:slow", [Rate(1, 60)], max_wait=0.2):
            pytest.fail("the body must not run")
    assert 50 < caught.value.retry_after <= 60


def test_keys_are_independent(limiter):
    with limiter.slot("t:a", [Rate(1, 60)]):
        pass
    with limiter.slot("t:b", [Rate(1, 60)], max_wait=0.1):
        pass


def test_within_never_exceeds_the_count_in_any_window(limiter):
    """10 a minute with a burst of 2: two at once, then 8 spread over the minute, never 10 at once."""
    rate = within(10, 60, burst=2)
    waits = [limiter._wait_ms("t:within", rate) for _ in range(3)]
    assert waits[:2] == [0, 0] and waits[2] > 0
    assert rate.count + (rate.burst or 0) == 10


@pytest.mark.parametrize("count,per,burst", [(25, 1, 5), (10, 1, 2), (60, 60, 10), (500, 60, 25)])
def test_within_holds_at_the_vendor_when_requests_arrive_late(limiter, count, per, burst):
    """A saturated stream through the limiter's arithmetic (each request admitted at the earliest
    moment the bucket allows), then delayed by up to `jitter` on its way (the early ones late and the
    later ones on time is the worst case): no sliding window of `per` seconds at the vendor ever holds
    more than `count`."""
    rate = within(count, per, burst, jitter=0.1)
    interval = rate.interval_ms / 1000
    admitted = [max(0.0, (k + 1 - burst) * interval) for k in range(4 * count)]
    rng = random.Random(count)
    n = len(admitted)
    late_first = [[0.1 if k < split else 0.0 for k in range(n)] for split in (burst, *range(0, n, n // 16))]
    for delays in ([0.0] * n, *late_first, [rng.uniform(0, 0.1) for _ in admitted]):
        arrived = sorted(a + d for a, d in zip(admitted, delays))
        worst = max(bisect.bisect_right(arrived, t + per - 1e-9) - i for i, t in enumerate(arrived))
        assert worst <= count
    # and the limiter itself admits exactly that burst before making anyone wait
    waits = [limiter._wait_ms(f"t:late:{count}", rate) for _ in range(burst + 1)]
    assert waits[:burst] == [0] * burst and waits[burst] > 0


def test_a_fractional_interval_never_lets_two_through_for_one_slot(limiter):
    """8 calls per 1.1 s (an interval of 137.5 ms): threads hammering the bucket for 2.2 s get the
    burst plus one call per interval, never more (Redis truncates a script's number reply, so a
    wait of 0.5 ms once read as 0 let a caller through without taking its slot: 21 a second)."""
    rate = Rate(8, 1.1, 2)
    admitted, lock = [], threading.Lock()
    stop = time.monotonic() + 2.2

    def hammer():
        while time.monotonic() < stop:
            if limiter._wait_ms("t:fractional", rate) <= 0:
                with lock:
                    admitted.append(time.monotonic())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(admitted) - min(admitted)
    assert len(admitted) <= 2 + elapsed / 0.1375 + 1
