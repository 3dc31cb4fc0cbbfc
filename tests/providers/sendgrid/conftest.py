import pytest

from invoicer.providers.sendgrid.simulator import SendGridSimulator
from invoicer.providers.simulate import Running


@pytest.fixture
def sim(monkeypatch):
    simulator = SendGridSimulator()
    with Running(simulator) as running:
        simulator.url = running.url
        for k, v in simulator.env().items():
            monkeypatch.setenv(k, v)
        yield simulator
