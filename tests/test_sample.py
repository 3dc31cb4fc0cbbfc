import json
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from invoicer.models import Event
from invoicer.sample import generate, write_jsonl

EVENTS = generate()


def _decimals(value: str) -> int:
    return max(0, -Decimal(value).as_tuple().exponent)


def _amounts(job):
    yield from (line["rate"] for line in job["labor"])
    yield from (line["unit_price"] for line in job["materials"])
    yield from (fee["amount"] for fee in job["fees"])
    yield from (d["amount"] for d in job["discounts"] if "amount" in d)


def test_deterministic_for_a_seed():
    assert generate(120, seed=3) == generate(120, seed=3)
    assert generate(120, seed=3) != generate(120, seed=4)
    assert generate(50) == EVENTS[:50]


@pytest.mark.parametrize("count", [0, 1, 17, 300, 1000])
def test_exact_count_and_unique_event_ids(count):
    events = generate(count, seed=11)
    assert len(events) == count
    assert len({e["id"] for e in events}) == count


def test_every_event_meets_the_contract():
    for e in EVENTS:
        Event.model_validate(e)
        json.dumps(e)  # serialisable as is
        assert e["occurred_at"].endswith("Z") and e["job"]["completed_at"].endswith("Z")
        assert isinstance(e["customer"]["external_ids"], dict)


def test_time_order_and_start():
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    events = generate(100, start=start)
    stamps = [e["occurred_at"] for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert stamps[0].startswith("2025-01-01")
    assert EVENTS[0]["occurred_at"].startswith("2026-11-02T13:")


def test_mix_of_event_types():
    kinds = Counter(e["type"] for e in EVENTS)
    assert kinds["job.completed"] > kinds["job.signed"] > kinds["job.updated"] > 0
    assert 0.02 <= kinds["job.updated"] / len(EVENTS) <= 0.10
    for e in EVENTS:
        if e["type"] == "job.signed":
            assert e["job"]["signature"]["signed_by"] and e["job"]["signature"]["signed_at"]
        elif e["type"] == "job.completed":
            assert "signature" not in e["job"]


def test_follow_ups_refer_to_earlier_jobs():
    seen, first = {}, {}
    for e in EVENTS:
        job_id = e["job"]["id"]
        if e["type"] == "job.updated":
            assert job_id in seen
            assert e["job"] != seen[job_id]
        if job_id in first and e["type"] == "job.signed":
            previous = {k: v for k, v in seen[job_id].items() if k != "signature"}
            assert {k: v for k, v in e["job"].items() if k != "signature"} == previous
            assert e["tenant"] == first[job_id]["tenant"] and e["customer"] == first[job_id]["customer"]
        first.setdefault(job_id, e)
        seen[job_id] = e["job"]
    per_job = Counter(e["job"]["id"] for e in EVENTS)
    assert sum(1 for n in per_job.values() if n > 1) >= 10
    signed_later = {e["job"]["id"] for e in EVENTS if e["type"] == "job.signed" and first[e["job"]["id"]] is not e}
    assert signed_later


def test_currency_minor_units():
    events = generate(1000, seed=5)
    by_currency = Counter(e["job"]["currency"] for e in events)
    assert {"USD", "CAD", "GBP", "AUD", "EUR", "JPY", "KWD"} <= set(by_currency)
    for e in events:
        allowed = {"JPY": 0, "KWD": 3}.get(e["job"]["currency"], 2)
        for amount in _amounts(e["job"]):
            assert _decimals(amount) <= allowed, (e["id"], amount)


def test_realistic_content():
    jobs = [e["job"] for e in EVENTS]
    assert any(Decimal(m["quantity"]) % 1 for j in jobs for m in j["materials"])  # refrigerant by the pound
    assert any("percent" in d for j in jobs for d in j["discounts"])
    assert any("amount" in d for j in jobs for d in j["discounts"])
    assert any("po_number" in j for j in jobs) and any("po_number" not in j for j in jobs)
    customers = [e["customer"] for e in EVENTS]
    assert any(c["phone"] is None for c in customers) and any(c["email"] is None for c in customers)
    assert any(c["billing_address"] for c in customers)
    assert any(not n.isascii() for n in (c["name"] for c in customers))


def test_write_jsonl(tmp_path):
    path = tmp_path / "events.jsonl"
    write_jsonl(EVENTS[:20], path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == EVENTS[:20]
    assert any(not line.isascii() for line in lines)  # ensure_ascii=False
