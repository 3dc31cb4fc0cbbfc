import pytest

from invoicer.providers.google import auth
from invoicer.providers.google.simulator import GoogleSimulator

from ..channels import serve


@pytest.fixture
def sim(monkeypatch, redis_client):
    redis_client.flushdb()  # the shared limiter's buckets start empty
    auth.forget()
    with serve(GoogleSimulator(), monkeypatch) as simulator:
        yield simulator
    auth.forget()
