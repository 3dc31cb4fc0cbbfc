"""Schemathesis against our own OpenAPI document (GET /openapi.json, admin token): requests made from the
document, valid and invalid, to every operation of the real app (real PostgreSQL and Redis). No answer
is a 5xx or breaks the document; a refused event is stored and queued nowhere."""
from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from ..conftest import ADMIN, sign
from .conftest import footprint

FUZZ = settings(max_examples=30, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
FUZZ_OTHERS = settings(FUZZ, max_examples=15)
OPERATIONS = [("GET", "/v1/jobs/{tenant}/{job_id}"), ("GET", "/v1/invoices/{invoice_id}.pdf"),
              ("GET", "/v1/admin/dlq"), ("GET", "/v1/admin/dlq/{delivery_id}"),
              ("POST", "/v1/admin/dlq/{delivery_id}/retry"), ("POST", "/v1/admin/dlq/{delivery_id}/discard"),
              ("POST", "/v1/admin/replay"), ("POST", "/v1/webhooks/{provider}/{tenant}"),
              ("POST", "/v1/webhooks/{provider}")]
MODES = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture
def api(client):
    return schemathesis.openapi.from_asgi("/openapi.json", client.app, headers=ADMIN)


def not_a_server_error(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])


def test_the_document_is_served_only_with_the_token_and_resolves(client, api):
    from fastapi.testclient import TestClient

    assert TestClient(client.app).get("/openapi.json").status_code == 401
    listed = {(op.method.upper(), op.path) for op in (r.ok() for r in api.get_all_operations())}
    assert ("POST", "/v1/events") in listed and set(OPERATIONS) <= listed


@FUZZ
@given(data=st.data())
def test_events_made_from_the_document_never_get_a_5xx_and_refusals_leave_nothing(client, api, redis_client,
                                                                                 data):
    """The event bodies are generated from the document, then signed as a real source would sign them."""
    mode = data.draw(MODES)
    case = data.draw(api["/v1/events"]["POST"].as_strategy(generation_mode=mode))
    before = footprint(redis_client)
    raw = case.body if isinstance(case.body, bytes) else json.dumps(case.body, ensure_ascii=False).encode()
    r = client.post("/v1/events", content=raw, headers=sign(raw.decode("utf-8", "replace")))
    not_a_server_error(r)
    case.validate_response(r, checks=[content_type_conformance, response_schema_conformance])
    if r.status_code >= 400:
        assert r.json()["error"] and r.json()["detail"]
        assert footprint(redis_client) == before


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_every_other_operation_never_gets_a_5xx(client, api, method, path):
    operation = api[path][method]

    @FUZZ_OTHERS
    @given(data=st.data())
    def check(data):
        case = data.draw(operation.as_strategy(generation_mode=data.draw(MODES)))
        response = case.call(headers=ADMIN)
        not_a_server_error(response)
        case.validate_response(response, checks=[content_type_conformance, response_schema_conformance])

    check()
