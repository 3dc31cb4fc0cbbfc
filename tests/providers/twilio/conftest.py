import pytest

from invoicer.providers.twilio.simulator import TwilioSimulator

from ..channels import serve


@pytest.fixture
def sim(monkeypatch):
    with serve(TwilioSimulator(), monkeypatch) as simulator:
        yield simulator
