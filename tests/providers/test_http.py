"""invoicer.providers.http against a real local server: every answer becomes the right typed error."""
from __future__ import annotations

import pytest

from invoicer.errors import AuthFailed, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.providers import http
from invoicer.providers.simulate import Reply, Running, Simulator

from ..conftest import free_port


class Echo(Simulator):
    def _status(self, request):
        status = int(request.params["status"])
        headers = {"Retry-After": "7"} if status == 429 else {}
        return Reply(status, {"message": f"status {status}"}, headers)

    routes = [("GET", r"/status/(?P<status>\d+)", _status), ("POST", r"/status/(?P<status>\d+)", _status)]


@pytest.fixture(scope="module")
def server():
    with Running(Echo()) as running:
        yield running


def _msg(resp):
    return resp.json()["message"]


@pytest.mark.parametrize("status, error", [(400, Rejected), (404, Rejected), (422, Rejected), (401, AuthFailed),
                                           (403, AuthFailed), (408, Unavailable), (409, Unavailable),
                                           (500, Unavailable), (503, Unavailable), (429, RateLimited)])
def test_status_codes_become_typed_errors(server, status, error):
    with pytest.raises(error) as caught:
        http.call("GET", f"{server.url}/status/{status}", slug="echo", message=_msg)
    assert caught.value.status == status
    assert f"status {status}" in str(caught.value)
    assert caught.value.retryable is (error in (Unavailable, RateLimited))


def test_retry_after_is_read(server):
    with pytest.raises(RateLimited) as caught:
        http.call("GET", f"{server.url}/status/429", slug="echo")
    assert caught.value.retry_after == 7.0


def test_success_returns_the_response(server):
    assert http.call("GET", f"{server.url}/status/200", slug="echo").json() == {"message": "status 200"}


def test_refused_connection_is_unavailable_not_unknown():
    with pytest.raises(Unavailable) as caught:
        http.call("POST", f"http://127.0.0.1:{free_port()}/x", slug="echo")
    assert type(caught.value) is Unavailable


def test_dropped_after_sending_is_outcome_unknown(server):
    server.sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        http.call("POST", f"{server.url}/status/200", slug="echo", json={})


def test_no_answer_in_time_is_outcome_unknown(server):
    server.sim.stall_seconds = 1.5
    server.sim.inject("stall")
    with pytest.raises(OutcomeUnknown):
        http.call("POST", f"{server.url}/status/200", slug="echo", json={}, timeout=(1, 0.5))


def test_base_url_prefers_tenant_option_then_environment(monkeypatch):
    monkeypatch.setenv("INVOICER_ECHO_BASE_URL", "http://env.example/")
    assert http.base_url("echo", {"base_url": "http://tenant.example"}, "https://prod") == "http://tenant.example"
    assert http.base_url("echo", {}, "https://prod") == "http://env.example"
    monkeypatch.delenv("INVOICER_ECHO_BASE_URL")
    assert http.base_url("echo", {}, "https://prod") == "https://prod"


def _answer(content: bytes, reason: str = "Bad Request"):
    import requests

    resp = requests.Response()
    resp.status_code, resp._content, resp.reason, resp.encoding = 400, content, reason, "utf-8"
    return resp


def test_json_message_hands_the_vendor_text_the_parsed_body_or_none():
    seen = []

    def text(body, fallback):
        seen.append(body)
        return body["error"] if isinstance(body, dict) else fallback[:5]

    message = http.json_message(text)
    assert message(_answer(b'{"error": "invalid_grant", "n": 0.10}')) == "invalid_grant"
    assert str(seen[-1]["n"]) == "0.10"  # exact decimals, never floats
    assert message(_answer(b"<html>gateway down</html>")) == "<html" and seen[-1] is None
    assert message(_answer(b"")) == "" and seen[-1] is None
    assert http.json_message(text, reason=True)(_answer(b"")) == "Bad Request"


def test_json_message_serves_as_the_message_of_a_call(server):
    message = http.json_message(lambda body, fallback: f"said {body['message']}")
    with pytest.raises(Rejected, match="said status 422"):
        http.call("GET", f"{server.url}/status/422", slug="echo", message=message)
