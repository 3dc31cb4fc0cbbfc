import pytest

from invoicer.providers.slack.simulator import SlackSimulator

from ..channels import serve


@pytest.fixture
def sim(monkeypatch):
    with serve(SlackSimulator(), monkeypatch) as simulator:
        monkeypatch.setenv("INVOICER_SANDBOX_SLACK_WEBHOOK", simulator.env()["INVOICER_SANDBOX_SLACK_WEBHOOK"])
        yield simulator
