"""Secrets and personal data stay out of everything an operator (or an attacker with read access to the
broker) can see. One short real run: the ingress, a prefork worker and Flower as processes, the customer
told by email (SMTP) and SMS (Twilio) through their simulators; every command Redis receives is
recorded (MONITOR) so the queue messages are seen while they exist. Then the logs, those messages (their
task arguments decoded), every key left in Redis, Flower's API and every /metrics are scanned for the
test secrets, the customers' emails, phone numbers and names: none may appear."""
from __future__ import annotations

import base64
import json
import os
import re
import threading

import pytest
import requests

from invoicer.providers.smtp.simulator import SmtpSimulator
from invoicer.providers.twilio.simulator import TwilioSimulator

from ..conftest import ADMIN, REDIS_DB, SECRET, TEST_ENV, VAR, answers, free_port, make_event, sign, wait_for
from ..providers.channels import own_tenants_forgotten  # noqa: F401  (autouse)
from ..providers.channels import serve, use_tenants

FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-pw-" + "7Hq2xZ"
CUSTOMERS = [(f"Zbigniew Qxertyuiop {i}", f"zq.private{i}@customer-mail.example", f"+4420795501{i:02d}")
             for i in range(4)]


class Monitor(threading.Thread):
    """Every command Redis runs on the test database, recorded as it happens."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.monitor = client.monitor().__enter__()
        self.commands: list[str] = []

    def run(self):
        try:
            while True:
                c = self.monitor.next_command()
                if str(c.get("db")) == str(REDIS_DB):
                    self.commands.append(c["command"])
        except Exception:  # the connection closed at the end of the test
            pass

    def stop(self):
        self.monitor.connection.disconnect()


def decoded(command: str) -> list[str]:
    """A pushed kombu message's text and its body decoded from base64 (where the task arguments are)."""
    out = [command]
    for m in re.finditer(r'"body": "([A-Za-z0-9+/=]+)"', command.replace('\\"', '"')):
        out.append(base64.b64decode(m.group(1)).decode("utf-8", "replace"))
    return out


def everything_in_redis(client) -> str:
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        value = {"string": lambda: client.get(key), "list": lambda: client.lrange(key, 0, -1),
                 "hash": lambda: client.hgetall(key), "set": lambda: client.smembers(key),
                 "zset": lambda: client.zrange(key, 0, -1)}.get(kind, lambda: b"")()
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


@pytest.fixture
def channels(monkeypatch):
    smtp = SmtpSimulator().start()
    for k, v in smtp.env().items():
        monkeypatch.setenv(k, v)
    with serve(TwilioSimulator(), monkeypatch) as twilio:
        yield smtp, twilio
    smtp.stop()


@pytest.mark.slow
def test_no_secret_or_personal_data_in_logs_broker_flower_or_metrics(procs, redis_client, channels, monkeypatch,
                                                                    tmp_path):
    smtp, twilio = channels
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {
        "name": "Acme", "sources": {"*": {"secret_env": "INVOICER_TEST_SECRET"}},
        "channels": {"customer": ["email", "sms"], "email": smtp.channel(), "sms": twilio.channel(twilio.url)}}})
    env = {**os.environ, "INVOICER_FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
           "INVOICER_TASK_EVENTS": "true"}
    monitor = Monitor(redis_client)
    monitor.start()
    try:
        api, flower, worker_metrics = free_port(), free_port(), free_port()
        procs.start("serve", "--port", str(api), "--log-level", "info", env=env)
        procs.start("flower", "--port", str(flower), env=env)
        procs.worker("--log-level", "info", "--metrics-port", str(worker_metrics), env=env, concurrency=2)
        base, fbase, auth = f"http://127.0.0.1:{api}", f"http://127.0.0.1:{flower}", (FLOWER_USER, FLOWER_PASSWORD)
        wait_for(lambda: answers(api, "/healthz") and answers(flower, "/healthcheck"), 60, what="ingress, Flower")
        wait_for(lambda: requests.get(f"{fbase}/api/workers", params={"refresh": 1}, auth=auth, timeout=30).json(),
                 60, what="Flower to see the worker")

        twilio.inject("500", "drop")  # two SMS attempts fail first: the retry path is logged too
        for i, (name, email, phone) in enumerate(CUSTOMERS):
            event = make_event(f"evt-{i}", job_id=f"J-{i}")
            event["customer"].update(name=name, email=email, phone=phone, id=f"C-{i}")
            body = json.dumps(event, ensure_ascii=False)
            assert requests.post(f"{base}/v1/events", data=body.encode(), headers=sign(body, f"m{i}"),
                                 timeout=30).status_code == 202

        def finished():
            states = [requests.get(f"{base}/v1/jobs/acme-hvac/J-{i}", headers=ADMIN, timeout=30).json()
                      for i in range(len(CUSTOMERS))]
            return states if all(s.get("state") in ("done", "failed") for s in states) else None

        states = wait_for(finished, 120, what="every job done")
        assert [s["state"] for s in states] == ["done"] * len(CUSTOMERS), states
        assert len(smtp.messages) == len(twilio.messages) == len(CUSTOMERS)  # the channels really ran

        def flower_saw_all():
            tasks = requests.get(f"{fbase}/api/tasks", auth=auth, timeout=30).json()
            done = [t for t in tasks.values() if t.get("state") == "SUCCESS"]
            names = [t.get("name") for t in done]  # delivery tasks carry many ids: at least one of each
            return tasks if {"invoicer.ingest.process_many", "invoicer.invoices.create", "invoicer.render.pdf",
                             "invoicer.notify.send"} <= set(names) else None

        tasks = wait_for(flower_saw_all, 60, what="Flower to record the run's tasks")
        seen = {
            "flower tasks": json.dumps(tasks),
            "flower task info": "\n".join(requests.get(f"{fbase}/api/task/info/{t}", auth=auth, timeout=30).text
                                          for t in list(tasks)[:10]),
            "flower workers": requests.get(f"{fbase}/api/workers", auth=auth, timeout=30).text,
            "flower metrics": requests.get(f"{fbase}/metrics", auth=auth, timeout=30).text,
            "ingress metrics": requests.get(f"{base}/metrics", timeout=30,
                                            headers={"Authorization": f"Bearer {TEST_ENV['INVOICER_METRICS_TOKEN']}"}).text,
            "worker metrics": requests.get(f"http://127.0.0.1:{worker_metrics}/metrics", timeout=30, headers={
                "Authorization": f"Bearer {TEST_ENV['INVOICER_METRICS_TOKEN']}"}).text,
            "job status": json.dumps(states),
        }
    finally:
        monitor.stop()
    procs.stop_all()  # the logs are complete once the processes have stopped
    seen["redis now"] = everything_in_redis(redis_client)
    pushed = [c for c in monitor.commands if re.match(r"^(LPUSH|RPUSH|SET|SETEX|HSET|ZADD|PUBLISH|EVALSHA)\b", c, re.I)]
    assert sum("invoicer.notify.send" in c for c in pushed) >= 2 * len(CUSTOMERS), len(monitor.commands)  # seen
    seen["redis commands"] = "\n".join(text for c in pushed for text in decoded(c))
    logs = sorted(VAR.parent.glob(f"{VAR.name}-*.log"))
    seen["logs"] = "\n".join(p.read_text(errors="replace") for p in logs)
    # each place scanned really holds what it should: the run's logs, task arguments, Flower's tasks, metrics
    assert "email.done" in seen["logs"] and "sms.done" in seen["logs"] and "event.accepted" in seen["logs"]
    assert "sms.retry" in seen["logs"]
    # a task's decoded arguments: a list of ids (or one id), then no keyword arguments
    assert re.search(r"^\[\[(\d+|\[\d+(, \d+)*\])\], \{\}", seen["redis commands"], re.M), \
        seen["redis commands"][:2000]
    assert "invoicer.notify.send" in seen["flower tasks"] and '"args": "(' in seen["flower tasks"]
    assert "invoicer_events_total" in seen["ingress metrics"] and "invoicer_invoices_created" in seen["worker metrics"]

    secrets = {"webhook secret": SECRET, "webhook secret key": SECRET.removeprefix("whsec_"),
               "admin token": TEST_ENV["INVOICER_API_TOKEN"], "metrics token": TEST_ENV["INVOICER_METRICS_TOKEN"],
               "link key": TEST_ENV["INVOICER_SECRET_KEY"], "Flower password": FLOWER_PASSWORD,
               "SMTP password": smtp.password, "Twilio auth token": twilio.auth_token}
    personal = {f"customer {i} {kind}": value for i, c in enumerate(CUSTOMERS)
                for kind, value in zip(("name", "email", "phone"), c)}
    personal |= {f"customer {i} phone digits": c[2].lstrip("+") for i, c in enumerate(CUSTOMERS)}
    leaks = [(what, where) for what, value in {**secrets, **personal}.items()
             for where, text in seen.items() if value in text]
    assert not leaks, leaks
