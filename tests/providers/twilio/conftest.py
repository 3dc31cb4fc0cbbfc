import pytest

from invoicer.providers.simulate import Running
from invoicer.providers.twilio.simulator import TwilioSimulator


@pytest.fixture
def sim(monkeypatch):
    simulator = TwilioSimulator()
    with Running(simulator) as running:
        simulator.url = running.url
        for k, v in simulator.env().items():
            monkeypatch.setenv(k, v)
        yield simulator
