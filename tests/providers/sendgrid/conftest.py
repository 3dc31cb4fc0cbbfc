import pytest

from invoicer.providers.sendgrid.simulator import SendGridSimulator

from ..channels import serve


@pytest.fixture
def sim(monkeypatch):
    with serve(SendGridSimulator(), monkeypatch) as simulator:
        yield simulator
