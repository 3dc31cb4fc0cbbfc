"""Logs: JSON lines with tenant, job, event, platform and attempt; personal data masked, secrets never
written. Proven over a whole demo run on the vendor simulators, then piece by piece."""
from __future__ import annotations

import json
import re
import sqlite3

import pytest

from invoicer import logs

from .test_cli import run_cli

CELERY_PLAIN = re.compile(r"^worker: (Warm|Cold) shutdown \(MainProcess\)$")  # printed by Celery itself
STEP_FIELDS = {"tenant", "job", "event_pk", "platform", "attempt", "kind", "delivery"}


def personal_data(database) -> set[str]:
    """Every email, phone, name and street line the demo's events carried."""
    found = set()
    with sqlite3.connect(database) as conn:
        for (body,) in conn.execute("SELECT body FROM events"):
            event = json.loads(body)
            customer = event["customer"]
            found |= {customer.get("email"), customer.get("phone"), customer.get("name")}
            for place in (customer.get("billing_address") or {}, event["job"].get("service_address") or {}):
                found |= {place.get("line1"), place.get("line2")}
    return {v for v in found if v and len(v) >= 5}


@pytest.mark.slow
def test_a_whole_demo_run_logs_json_steps_and_no_personal_data_or_secrets(tmp_path):
    from .conftest import TEST_ENV

    # on the test Redis: with it the shared rate limiter spares the sandbox's vendors their 429s (the
    # embedded broker, tested by test_cli, has per-process limits only, and takes minutes here)
    env = {"INVOICER_BROKER_URL": TEST_ENV["INVOICER_BROKER_URL"], "INVOICER_RETRY_BASE": "0.2"}
    out = run_cli("demo", "--sandbox", "--count", "24", "--log-level", "info", env=env, cwd=tmp_path)
    assert "events sent          24" in out.stdout, out.stdout + out.stderr
    text = (tmp_path / "var" / "demo.log").read_text()
    lines, plain = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            plain.append(line)
    assert all(CELERY_PLAIN.match(p) for p in plain), plain[:5]
    events = {entry["event"] for entry in lines}
    assert {"event.accepted", "event.applied", "invoice.done", "pdf.done", "email.done", "job.done"} <= events
    steps = [e for e in lines if e["event"] in ("invoice.done", "invoice.retry", "invoice.dead")]
    assert {"quickbooks", "xero", "stripe"} <= {e["platform"] for e in steps}
    assert all(STEP_FIELDS <= e.keys() for e in steps)

    secrets = ["sim-client-secret", "sim-secret", "sk_test_sim", "whsec_sim_secret"]
    leaked = [s for s in secrets if s in text]
    assert not leaked
    assert not re.search(r"Bearer (?!\[redacted\])\S", text)
    private = personal_data(tmp_path / "var" / "invoicer.sqlite3")
    assert len(private) > 30  # the check below has something to find
    assert not [p for p in private if p in text]


def test_fields_are_masked_by_name_and_by_what_they_hold():
    masked = logs.mask(None, None, {
        "event": "mail to huong@example.com failed", "customer": {"name": "Nguyễn Thị Hương", "id": "C-1"},
        "to": "+84901234567", "access_token": "eyJ.abc", "authorization": "Bearer x", "tenant": "acme-hvac",
        "reason": "called +1 (512) 555-0142 on 2026-11-25, total 1234.50", "attempt": 2,
        "headers": {"Authorization": "Basic dXNlcjpwYXNz", "Idempotency-Key": "k-1"}})
    assert masked["event"] == "mail to h***@*** failed"
    assert masked["customer"] == {"name": "[masked]", "id": "C-1"}
    assert masked["to"] == "[masked]" and masked["access_token"] == "[redacted]"
    assert masked["authorization"] == "[redacted]" and masked["headers"]["Authorization"] == "[redacted]"
    assert masked["reason"] == "called ***42 on 2026-11-25, total 1234.50"
    assert (masked["tenant"], masked["attempt"], masked["headers"]["Idempotency-Key"]) == ("acme-hvac", 2, "k-1")


def test_a_vendor_error_quoting_the_customer_is_scrubbed_before_it_is_logged():
    from invoicer.pipeline import _scrub

    doc = {"customer": {"name": "Nguyễn Thị Hương", "email": "huong@example.com", "phone": "+84901234567",
                        "billing_address": {"line1": "12 Lê Lợi"}}, "service_address": {"line1": "7 Rue Oberkampf"}}
    text = "The contact name Nguyễn Thị Hương is already assigned; address 7 Rue Oberkampf"
    assert _scrub(text, doc) == "The contact name [customer] is already assigned; address [customer]"


def test_an_event_the_worker_cannot_validate_fails_without_its_data_in_the_log_or_the_row(clean, capsys):
    """A stored event whose body no longer validates (a contract change, a bug) is failed with the
    fields and rules that refused it, not the values: the customer's name stays out of both."""
    import json as json_

    from pydantic import ValidationError
    from sqlalchemy import select

    from invoicer import db, pipeline
    from invoicer.ingress import persist
    from invoicer.models import Event

    from .conftest import make_event

    event = make_event()
    pk, _ = persist("acme-hvac", "mobile-app", Event.model_validate(event), json_.dumps(event))
    event["customer"]["name"] = "Zofia Secretname " * 40  # over the 500-character limit
    with pytest.raises(ValidationError) as exc:
        Event.model_validate(event)
    assert "Secretname" in str(exc.value)  # what pydantic would have put in the log
    pipeline.fail_event(pk, exc.value)
    with db.engine().connect() as conn:
        error = conn.execute(select(db.events.c.error).where(db.events.c.id == pk)).scalar_one()
    assert error == "ValidationError: customer.name: string_too_long"
    assert "Secretname" not in capsys.readouterr().out
