"""The base of every vendor simulator: a small real HTTP server on loopback.

A simulator lists routes `(method, path regex) -> handler(request) -> Reply`; this module serves
them (threaded, HTTP/1.1 keep-alive), records every request, and applies injected faults in order:
  "429"   answer 429 with Retry-After (the vendor's own body and headers via `rate_limited`)
  "500"   answer 503
  "drop"  do the work, then close the connection without answering (outcome unknown)
  "stall" do the work, then answer only after `stall_seconds` (past the client's timeout)
plus `latency_ms` on every answer. Tests and `invoicer sandbox` use it; it is not for production.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route

    def json(self):
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)


@dataclass
class Reply:
    status: int
    body: object = None  # dict/list -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.body, (bytes, bytearray)):
            return bytes(self.body), self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), self.headers.get("Content-Type", "text/plain; charset=utf-8")
        if self.body is None:
            return b"", self.headers.get("Content-Type", "application/json")
        return json.dumps(self.body).encode(), self.headers.get("Content-Type", "application/json")


Route = tuple[str, str, Callable[[Request], Reply]]


class AimedFaults(deque):
    """The fault queue, plus faults that wait for a request to match (`Simulator.fault_on`)."""

    def __init__(self, sim: "Simulator"):
        super().__init__()
        self.sim = sim
        self.on: list[tuple[str, str, str]] = []

    def _match(self) -> int | None:
        if not self.sim.received:  # the request being served was appended just before we are asked
            return None
        req = self.sim.received[-1]
        return next((i for i, (method, pattern, _) in enumerate(self.on)
                     if req.method == method and re.fullmatch(pattern, req.path)), None)

    def __bool__(self) -> bool:
        return len(self) > 0 or self._match() is not None

    def popleft(self):
        if len(self):
            return super().popleft()
        return self.on.pop(self._match())[2]


class Simulator:
    """Subclass: set `routes` (or override `handle`) and `rate_limited()` for the vendor's 429."""

    routes: list[Route] = []

    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[Request] = []
        self.faults: deque[str] = AimedFaults(self)
        self._windows: dict[str, deque] = {}
        self._window_lock = threading.Lock()
        self.latency_ms = 0
        self.stall_seconds = 35.0
        self._compiled = [(m, re.compile(f"^{p}$"), h) for m, p, h in self.routes]

    def over_limit(self, key: str, limit: int, now: float, window: float = 1.0) -> bool:
        """True when `key` already made `limit` requests in the `window` seconds before `now` (a vendor's
        rate limit); otherwise this request is counted."""
        with self._window_lock:
            hits = self._windows.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return True
            hits.append(now)
            return False

    def forget(self) -> None:
        """Forget the requests received, the faults queued or aimed, and the latency: a served simulator
        can then serve another test. The caller holds `lock`."""
        self.received.clear()
        self.faults.clear()
        self.faults.on.clear()
        self.latency_ms = 0

    def inject(self, *faults: str) -> None:
        self.faults.extend(faults)

    def fault_on(self, method: str, path: str, fault: str) -> None:
        """Apply a fault ("429", "500", "drop", "stall") to the next request matching method and path
        (a regex), e.g. fault_on("POST", "/v2/invoices", "drop")."""
        self.faults.on.append((method, path, fault))

    def rate_limited(self, request: Request) -> Reply:
        return Reply(429, {"error": "rate limited"}, {"Retry-After": "1"})

    def handle(self, request: Request) -> Reply:
        for method, pattern, handler in self._compiled:
            m = pattern.match(request.path)
            if m and method == request.method:
                request.params = m.groupdict()
                return handler(self, request)
        return Reply(404, {"error": f"no route {request.method} {request.path}"})


def _handler_for(sim: Simulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: requests carry credentials
            pass

        def setup(self):
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

        def _serve(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, url.path, parse_qs(url.query, keep_blank_values=True),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            with sim.lock:
                sim.received.append(request)
                fault = sim.faults.popleft() if sim.faults else None
            if fault == "429":
                reply = sim.rate_limited(request)
            elif fault == "500":
                reply = Reply(503, {"error": "simulated outage"})
            else:
                reply = sim.handle(request)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "stall":
                time.sleep(sim.stall_seconds)
            if sim.latency_ms:
                time.sleep(sim.latency_ms / 1000)
            body, ctype = reply.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in reply.headers.items():
                if k.lower() != "content-type":
                    self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


class Running:
    """A simulator served on 127.0.0.1; use as a context manager or call stop()."""

    def __init__(self, sim: Simulator, port: int = 0):
        self.sim = sim
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(sim))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
