"""A small HTTP/1.1 load generator for bench/run.py, run as its own process.

Raw keep-alive connections on asyncio (uvloop when installed): far cheaper per request than an HTTP
client library, so on a 2-core box it takes as little CPU from the server as a Python generator can.
It prints one JSON object on stdout, including its own CPU time, so a reader can see it was not the
limit (cpu_share near 1.0 would mean it was).

closed loop:  --concurrency C --count N     C connections, each posts its next body as soon as the
                                            previous answer arrived; N requests in all.
open loop:    --rate R --duration D         a request is due every 1/R s whatever the answers do;
                                            latency counts from when it was due (no coordinated
                                            omission), so waiting for a free connection counts too.

Bodies come from --bodies, a file with one request body per line, used in order (and cycled when
there are fewer bodies than requests).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from urllib.parse import urlsplit


class Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> "Conn":
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes) -> int:
        self.writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        else:
            raise RuntimeError("answer without content-length")
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


_CPU0 = 0.0  # CPU used before the measured run (imports, reading bodies, opening connections)


def summary(latencies: list[float], statuses: dict, errors: int, elapsed: float, extra: dict) -> dict:
    lat = sorted(latencies)
    cpu_s = _cpu() - _CPU0
    out = {"requests": len(latencies) + errors, "ok": sum(n for s, n in statuses.items() if 200 <= int(s) < 300),
           "statuses": statuses, "errors": errors, "elapsed_s": round(elapsed, 3),
           "rps": round(len(latencies) / elapsed, 1) if elapsed else None,
           "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None,
           "generator_cpu_s": round(cpu_s, 2), "generator_cpu_share": round(cpu_s / elapsed, 2) if elapsed else None}
    for name, p in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("max_ms", 100)):
        v = percentile(lat, p)
        out[name] = round(v * 1000, 2) if v is not None else None
    out.update(extra)
    return out


async def closed(host, port, head, bodies, count, concurrency) -> dict:
    conns = [await Conn.open(host, port) for _ in range(concurrency)]
    latencies, statuses, errors = [], {}, 0
    nxt = 0

    async def run(conn: Conn):
        nonlocal nxt, errors
        while nxt < count:
            i = nxt
            nxt += 1
            t = time.perf_counter()
            try:
                status = await conn.request(head, bodies[i % len(bodies)])
            except (OSError, asyncio.IncompleteReadError, RuntimeError):
                errors += 1
                conn.close()
                conn = await Conn.open(host, port)
                continue
            latencies.append(time.perf_counter() - t)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        conn.close()

    global _CPU0
    _CPU0 = _cpu()
    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    return summary(latencies, statuses, errors, time.perf_counter() - started,
                   {"mode": "closed", "concurrency": concurrency})


async def open_loop(host, port, head, bodies, rate, duration, max_conns, drain) -> dict:
    total = int(rate * duration)
    pool: asyncio.Queue = asyncio.Queue()
    opened = 0
    for _ in range(min(32, max_conns)):
        pool.put_nowait(await Conn.open(host, port))
        opened += 1
    latencies, statuses, errors = [], {}, 0
    late_max = 0.0
    pending: set[asyncio.Task] = set()

    async def one(i: int, due: float):
        nonlocal opened, errors
        if pool.empty() and opened < max_conns:
            opened += 1
            conn = await Conn.open(host, port)
        else:
            conn = await pool.get()
        try:
            status = await conn.request(head, bodies[i % len(bodies)])
        except (OSError, asyncio.IncompleteReadError, RuntimeError):
            errors += 1
            conn.close()
            pool.put_nowait(await Conn.open(host, port))
            return
        latencies.append(time.perf_counter() - due)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        pool.put_nowait(conn)

    global _CPU0
    _CPU0 = _cpu()
    t0 = time.perf_counter()
    i = 0
    while i < total:
        now = time.perf_counter()
        due_count = min(total, int((now - t0) * rate) + 1)
        while i < due_count:
            due = t0 + i / rate
            late_max = max(late_max, now - due)
            task = asyncio.ensure_future(one(i, due))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        await asyncio.sleep(0.001)
    sent_done = time.perf_counter()
    unfinished = 0
    if pending:
        done, still = await asyncio.wait(set(pending), timeout=drain)
        unfinished = len(still)
        for task in still:
            task.cancel()
    elapsed = time.perf_counter() - t0
    out = summary(latencies, statuses, errors + unfinished, elapsed,
                  {"mode": "open", "offered_rps": rate, "duration_s": duration, "connections_used": opened,
                   "unfinished": unfinished, "schedule_s": round(sent_done - t0, 3),
                   "dispatch_late_max_ms": round(late_max * 1000, 2)})
    # completed within the schedule window plus drain: the achieved rate is completions over wall time
    out["achieved_rps"] = round(len(latencies) / elapsed, 1) if elapsed else None
    while not pool.empty():
        pool.get_nowait().close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--bodies", required=True, help="file with one request body per line")
    p.add_argument("--count", type=int, help="closed loop: requests in all (default: one per body)")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rate", type=float, help="open loop: requests per second")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--max-conns", type=int, default=256)
    p.add_argument("--drain", type=float, default=20.0, help="open loop: seconds to wait for late answers")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    u = urlsplit(args.url)
    host, port = u.hostname, u.port or 80
    head = (f"POST {u.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"connection: keep-alive\r\ncontent-length: ").encode()
    with open(args.bodies, "rb") as fh:
        bodies = [line.rstrip(b"\n") for line in fh if line.strip()]
    if args.rate:
        out = asyncio.run(open_loop(host, port, head, bodies, args.rate, args.duration, args.max_conns, args.drain))
    else:
        out = asyncio.run(closed(host, port, head, bodies, args.count or len(bodies), args.concurrency))
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
