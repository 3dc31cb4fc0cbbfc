"""Slow clients: a body trickled a byte at a time is cut off with a 408 (INVOICER_BODY_TIMEOUT), the
server keeps answering everyone else meanwhile, and nothing is stored or queued. The real server
(uvicorn, as `invoicer serve` runs it) in a thread of this process, spoken to over a socket."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from invoicer import config

from ..conftest import free_port, make_event, sign, wait_for
from .conftest import footprint
from .test_hostile_input import body_of


@pytest.fixture
def server(clean, monkeypatch):
    import uvicorn

    from invoicer.ingress import create_app

    monkeypatch.setenv("INVOICER_BODY_TIMEOUT", "1")
    config.reset()
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off", access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, 20, what="uvicorn")
    yield port
    srv.should_exit = True
    thread.join(10)
    config.reset()


def trickle(port: int, head: bytes, body: bytes, every: float = 0.2) -> bytes:
    """Send the head, then the body a byte at a time until the server answers; what it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        s.settimeout(every)
        answer = b""
        for byte in body:
            try:
                s.sendall(bytes([byte]))
            except OSError:  # the server has answered and closed
                break
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            answer += chunk
            break
        s.settimeout(10)
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:
            pass
        return answer


@pytest.mark.parametrize("chunked", [False, True])
def test_a_trickled_body_times_out_with_408_and_the_server_stays_up(server, redis_client, chunked):
    before = footprint(redis_client)
    body = body_of(make_event()).encode()
    headers = "".join(f"{k}: {v}\r\n" for k, v in sign(body.decode()).items())
    length = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body)}\r\n"
    head = f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}{length}\r\n".encode()
    if chunked:
        body = b"".join(b"1\r\n" + bytes([b]) + b"\r\n" for b in body) + b"0\r\n\r\n"

    served = []

    def meanwhile():  # other clients are served while the slow one holds its connection
        served.append(requests.get(f"http://127.0.0.1:{server}/healthz", timeout=10).status_code)

    other = threading.Timer(0.3, meanwhile)
    other.start()
    answer = trickle(server, head, body)
    other.join()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"the body did not arrive within 1 s" in answer
    assert served == [200]
    assert requests.get(f"http://127.0.0.1:{server}/healthz", timeout=10).json() == {"ok": True}
    assert footprint(redis_client) == before


def test_a_client_that_stops_sending_is_cut_off(server, redis_client):
    """Headers promise a body that never comes: 408, not a connection held for ever."""
    body = body_of(make_event())
    headers = "".join(f"{k}: {v}\r\n" for k, v in sign(body).items())
    with socket.create_connection(("127.0.0.1", server), timeout=30) as s:
        s.sendall(f"POST /v1/events HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode()
                  + body.encode()[:100])
        answer = s.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert requests.get(f"http://127.0.0.1:{server}/healthz", timeout=10).status_code == 200
    assert footprint(redis_client)["events"] == 0
