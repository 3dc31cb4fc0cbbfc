"""Reminders on a controllable clock, on the real PostgreSQL (and the local channels in this process):
the right steps on the right days, none after payment, none twice across duplicate beats and crashes,
quiet hours in the customer's zone, and the by-hand actions (CLI and admin API) in the audit trail."""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from invoicer import db, pipeline, reminders, timezones
from invoicer.cadence import QuietHours, Reminders
from invoicer.config import ConfigError, load_tenants

from .conftest import ADMIN, VAR
from .providers.channels import own_tenants_forgotten  # noqa: F401  (autouse)
from .providers.channels import run_job, use_tenants

UTC = timezone.utc
NY = ZoneInfo("America/New_York")  # the test job's service address is Orlando, FL
DUE = date(2026, 4, 1)  # issued 2026-03-02 with 30 days' terms
CADENCE = {"steps": [
    {"name": "before", "days": -3},
    {"name": "due", "days": 0, "channels": ["email", "sms"]},
    {"name": "late", "days": 7, "channels": ["email", "sms"], "template": "reminder-late"},
]}
LATE = {"reminder-late": {"subject": "Overdue {{ reminder.days_overdue }} days: {{ invoice.number }}, "
                                     "{{ invoice.balance }} to pay"}}


def at(days: int, hour: int, minute: int = 0) -> datetime:
    """A moment `days` after the due date, at a local time in the customer's zone, as UTC."""
    return datetime.combine(DUE + timedelta(days=days), time(hour, minute), tzinfo=NY).astimezone(UTC)


def invoice(monkeypatch, tmp_path, cadence=None, channels=None, templates=None, platforms=None, **customer) -> int:
    """acme-hvac with a cadence; one job run to its end; its invoice moved to a due date in the past."""
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {
        "name": "Acme", "channels": {"customer": ["email"], **(channels or {})},
        "templates": templates or LATE, "reminders": cadence or CADENCE,
        **({"platforms": platforms} if platforms else {})}})
    invoice_id = run_job(**customer)
    with db.engine().begin() as conn:
        conn.execute(update(db.invoices).where(db.invoices.c.id == invoice_id).values(
            issued_on=datetime(2026, 3, 2, 15, tzinfo=UTC), due_days=30))
        assert conn.execute(select(db.invoices.c.stage).where(db.invoices.c.id == invoice_id)).scalar() == "done"
    return invoice_id


def sent(follow) -> list:
    """Run the deliveries the fan-out made, as a worker would; their rows after."""
    for _, delivery_id in follow:
        pipeline.run_delivery(delivery_id)
    return rows([i for _, i in follow])


def rows(ids=None, invoice_id=None) -> list:
    d = db.deliveries.c
    q = select(db.deliveries).where(d.target.like("reminder:%"))
    if ids is not None:
        q = q.where(d.id.in_(ids))
    with db.engine().connect() as conn:
        return conn.execute(q.order_by(d.id)).all()


def steps(invoice_id: int) -> dict:
    r = db.reminders.c
    with db.engine().connect() as conn:
        return {s.step: (s.status, s.reason) for s in conn.execute(select(db.reminders).where(r.invoice_id == invoice_id))}


def audit_actions(invoice_id: int | None = None) -> list[str]:
    a = db.audit_log.c
    q = select(a.action).order_by(a.id)
    if invoice_id is not None:
        q = q.where(a.invoice_id == invoice_id)
    with db.engine().connect() as conn:
        return list(conn.execute(q).scalars())


def sms_lines() -> list[dict]:
    path = VAR / "outbox" / "sms.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------- configuration and zones (no database)

def _load(tmp_path, monkeypatch, reminders_entry, **tenant):
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "reminders": reminders_entry, **tenant}})
    return load_tenants(str(tmp_path / "tenants.yaml"))


@pytest.mark.parametrize("entry, extra, message", [
    ({"steps": [{"name": "x", "days": 30, "escalate": True}]}, {},
     r"reminders\.steps\.x\.channels: an escalation alerts finance on Slack, but channels\.slack is not set"),
    ({"steps": [{"name": "x", "days": 3, "channels": ["slack"]}]}, {},
     r"reminders\.steps\.0: Value error, channels: slack goes to the finance team"),
    ({"steps": [{"name": "x", "days": 3}, {"name": "x", "days": 7}]}, {}, r"reminders\.steps: .*x named twice"),
    ({"steps": [{"name": "x", "days": "3 days"}]}, {}, r"reminders\.steps\.0\.days: Input should be a valid integer"),
    ({"steps": [{"name": "x", "days": 3}], "timezone": "Mars/Olympus"}, {}, r"reminders\.timezone: .*not an IANA"),
    ({"steps": [{"name": "x", "days": 3, "template": "reminder-gentle"}]}, {},
     r"reminders\.steps\.x\.template: there is no templates\.reminder-gentle"),
    ({"steps": [{"name": "x", "days": 3, "template": "invoice"}]}, {}, r"template: 'invoice' is not a reminder"),
    ({"steps": [{"name": "x", "days": 3}], "quiet_hours": {"start": "08:00", "end": "08:00"}}, {},
     r"quiet_hours: Value error, start and end are the same time"),
    ({"steps": [{"name": "x", "days": 3}], "missed": "sometimes"}, {}, r"reminders\.missed: Input should be"),
    ({"steps": []}, {}, r"reminders\.steps: List should have at least 1 item"),
])
def test_a_bad_cadence_is_a_config_error_naming_the_key(tmp_path, monkeypatch, entry, extra, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, monkeypatch, entry, **extra)


def test_a_good_cadence_loads_sorted_with_its_defaults(tmp_path, monkeypatch):
    tenants = _load(tmp_path, monkeypatch, {"steps": [
        {"name": "final", "days": 30, "escalate": True}, {"name": "before", "days": -3}]},
        channels={"slack": {"provider": "slack", "token_env": "X", "channel": "C1"}})
    cfg = tenants["acme-hvac"].reminders
    assert [(s.name, s.channels, s.template, s.role) for s in cfg.steps] == [
        ("before", ["email"], "reminder", "customer"), ("final", ["slack"], "escalation", "finance")]
    assert (cfg.send_at, cfg.missed, cfg.quiet_hours.channels) == (time(9), "skip", ["sms"])


def test_zones_from_the_service_address():
    assert timezones.zone_name("US", "FL") == "America/New_York"
    assert timezones.zone_name("US", "Arizona") == "America/Phoenix"
    assert timezones.zone_name("CA", "BC") == "America/Vancouver"
    assert timezones.zone_name("AU", "WA") == "Australia/Perth"
    assert timezones.zone_name("US", "") == "America/New_York"  # no region: where most people are
    assert timezones.zone_name("JP") == "Asia/Tokyo"  # one zone: from the IANA country table
    assert timezones.zone_name("BR") == "America/Sao_Paulo" and timezones.zone_name("XX") is None
    for table in (*timezones.REGIONS.values(), timezones.COUNTRY):
        for name in table.values():
            ZoneInfo(name)  # every zone named by hand exists


def test_quiet_hours_span_midnight_and_daylight_saving():
    quiet = QuietHours()
    three_am = datetime(2026, 3, 8, 3, tzinfo=NY).astimezone(UTC)  # the night clocks go forward
    assert reminders.allowed_at(three_am, "sms", quiet, NY) == datetime(2026, 3, 8, 8, tzinfo=NY)
    assert reminders.allowed_at(three_am, "email", quiet, NY) == three_am
    ten_pm = datetime(2026, 4, 1, 22, tzinfo=NY)
    assert reminders.allowed_at(ten_pm, "sms", quiet, NY) == datetime(2026, 4, 2, 8, tzinfo=NY)
    noon = datetime(2026, 4, 1, 12, tzinfo=NY)
    assert reminders.allowed_at(noon, "sms", quiet, NY) == noon
    day = QuietHours(start=time(12), end=time(13))
    assert reminders.allowed_at(noon, "sms", day, NY) == datetime(2026, 4, 1, 13, tzinfo=NY)


def test_missed_steps_are_skipped_or_caught_up_as_the_tenant_chose():
    inv = reminders.Invoice(id=1, tenant="t", number="N", issued_on=datetime(2026, 3, 2, 15, tzinfo=UTC),
                            due_on=DUE, total=1, amount_paid=0, customer={}, service_address={}, zone=NY)
    cadence = Reminders(**CADENCE, missed="skip")
    eight_days_late = at(8, 10)
    assert [(s.name, skip) for s, _, skip in reminders.due(cadence, inv, eight_days_late)] == [
        ("before", "missed; a later step (late) is due"), ("due", "missed; a later step (late) is due"), ("late", None)]
    cadence = Reminders(**CADENCE, missed="catch_up")
    assert [(s.name, skip) for s, _, skip in reminders.due(cadence, inv, eight_days_late)] == [
        ("before", None), ("due", None), ("late", None)]
    inv.done = {"before": "sent"}
    assert [s.name for s, _, _ in reminders.due(cadence, inv, at(0, 8, 59))] == []
    assert [s.name for s, _, _ in reminders.due(cadence, inv, at(0, 9))] == ["due"]
    # a step before the invoice existed is not part of its schedule
    short = reminders.Invoice(**{**inv.__dict__, "done": {}, "due_on": date(2026, 3, 3)})
    assert [s.name for s, _ in reminders.schedule(cadence, short)] == ["due", "late"]
    on_receipt = reminders.Invoice(**{**inv.__dict__, "done": {}, "due_on": date(2026, 3, 2)})  # issued 10:00 NY
    assert [s.name for s, _ in reminders.schedule(cadence, on_receipt)] == ["late"]


# ---------------------------------------------------------------- on the database

def test_the_right_reminders_on_the_right_days_and_each_once(clean, monkeypatch, tmp_path):
    inv = invoice(monkeypatch, tmp_path)
    assert reminders.fan_out(at(-4, 12)) == []
    assert reminders.fan_out(at(-3, 8, 59)) == []  # send_at is 09:00 in the customer's zone
    before = reminders.fan_out(at(-3, 9))
    assert [(r.kind, r.target, r.status) for r in sent(before)] == [("email", "reminder:before", "done")]
    assert reminders.fan_out(at(-3, 9, 1)) == [] and reminders.fan_out(at(-1, 12)) == []
    due = reminders.fan_out(at(0, 9, 30))
    assert sorted((r.kind, r.target, r.status) for r in sent(due)) == [
        ("email", "reminder:due", "done"), ("sms", "reminder:due", "done")]
    monkeypatch.setattr(reminders, "clock", lambda: at(7, 10))
    late = reminders.fan_out(at(7, 10))
    assert sorted((r.kind, r.status) for r in sent(late)) == [("email", "done"), ("sms", "done")]
    assert reminders.fan_out(at(40, 10)) == []  # every step made
    assert steps(inv) == {"before": ("sent", None), "due": ("sent", None), "late": ("sent", None)}
    eml = (VAR / "outbox" / "email" / "acme-hvac" / f"{rows(invoice_id=inv)[-2].idempotency_key}.eml").read_bytes()
    assert b"Subject: Overdue 7 days: INV-000001, $251.10 to pay" in eml  # the step's own template
    assert b"attachment" not in eml  # a reminder links the invoice; it does not attach it again
    assert [line["body"][:14] for line in sms_lines()] == ["Reminder from "] * 2
    assert audit_actions(inv).count("reminder_due") == 3


def test_payment_stops_reminders_at_fan_out_and_just_before_sending(clean, monkeypatch, tmp_path):
    from invoicer.providers.base import WebhookEvent

    inv = invoice(monkeypatch, tmp_path)
    monkeypatch.setattr(reminders, "clock", lambda: at(0, 10))
    made = reminders.fan_out(at(0, 10))  # fanned out, not yet sent (queued behind other work) ...
    assert len(made) == 2
    with db.engine().connect() as conn:  # ... when the payment platform says it was paid
        external = conn.execute(select(db.deliveries.c.external_id).where(
            db.deliveries.c.invoice_id == inv, db.deliveries.c.kind == "invoice",
            db.deliveries.c.target == "books")).scalar()
    event = WebhookEvent(type="invoice.paid", external_id=external, amount_paid=None, raw={})
    assert pipeline.apply_webhook("acme-hvac", "local", event) == "paid"
    after = sent(made)
    assert [(r.status, r.detail["reason"]) for r in after] == [("skipped", "the invoice is paid")] * 2
    assert sms_lines() == [] and reminders.fan_out(at(7, 10)) == []
    assert set(steps(inv)) == {"before", "due"}  # nothing after the payment


def test_a_partial_payment_keeps_reminding_with_the_balance(clean, monkeypatch, tmp_path):
    from decimal import Decimal

    inv = invoice(monkeypatch, tmp_path)
    with db.engine().begin() as conn:
        conn.execute(update(db.invoices).where(db.invoices.c.id == inv).values(amount_paid=Decimal("100.00")))
    monkeypatch.setattr(reminders, "clock", lambda: at(7, 10))
    reminders.fan_out(at(0, 10))
    late = sent(reminders.fan_out(at(7, 10)))
    email = next(r for r in late if r.kind == "email")
    eml = (VAR / "outbox" / "email" / "acme-hvac" / f"{email.idempotency_key}.eml").read_bytes()
    assert b"Overdue 7 days: INV-000001, $151.10 to pay" in eml


def test_two_beats_at_once_and_a_crash_make_each_reminder_once(clean, monkeypatch, tmp_path):
    inv = invoice(monkeypatch, tmp_path)
    now = at(0, 10)
    monkeypatch.setattr(reminders, "clock", lambda: now)
    # a crash after the reminders row and the first delivery were written: nothing of it stays
    real = reminders._delivery
    calls = []

    def crash_on_second_channel(*args):
        calls.append(args[5])
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return real(*args)

    monkeypatch.setattr(reminders, "_delivery", crash_on_second_channel)
    with pytest.raises(SystemExit):
        reminders.fan_out(now)
    assert steps(inv) == {} and rows() == []
    monkeypatch.setattr(reminders, "_delivery", real)
    # two beat processes by mistake, fanning out the same moment together
    results, barrier = [], threading.Barrier(4)

    def beat():
        barrier.wait()
        results.append(reminders.fan_out(now))

    threads = [threading.Thread(target=beat) for _ in range(4)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    made = [m for r in results for m in r]
    assert len(made) == 2 and len(rows()) == 2
    assert steps(inv) == {"due": ("sent", None), "before": ("skipped", "missed; a later step (due) is due")}
    # the same task message delivered twice (a redelivery after a lost ack): one message
    for _, delivery_id in made + made:
        pipeline.run_delivery(delivery_id)
    assert len(sms_lines()) == 1 and all(r.status == "done" for r in rows())
    assert len(list((VAR / "outbox" / "email" / "acme-hvac").glob("*.eml"))) == 2  # the invoice + 1 reminder


def test_beat_down_for_a_day_catches_up_once_when_the_tenant_says_so(clean, monkeypatch, tmp_path):
    inv = invoice(monkeypatch, tmp_path, cadence={**CADENCE, "missed": "catch_up"})
    monkeypatch.setattr(reminders, "clock", lambda: at(1, 12))
    made = reminders.fan_out(at(1, 12))  # down from before the -3 step until the day after the due date
    assert sorted(r.target for r in sent(made)) == ["reminder:before", "reminder:due", "reminder:due"]
    assert reminders.fan_out(at(1, 12, 1)) == []
    assert set(steps(inv)) == {"before", "due"}


def test_no_sms_in_the_customers_quiet_hours(clean, monkeypatch, tmp_path):
    inv = invoice(monkeypatch, tmp_path)
    three_am = at(0, 3)
    # send_at 09:00 would never land in quiet hours: beat was down, and comes back at 23:00 local
    late_evening = at(0, 23)
    monkeypatch.setattr(reminders, "clock", lambda: late_evening)
    made = reminders.fan_out(late_evening)
    assert [k for k, _ in made] == ["email"]  # the email goes now ...
    sms = next(r for r in rows() if r.kind == "sms")
    assert sms.status == "retry" and sms.next_attempt_at == at(1, 8)  # ... the SMS at 08:00 their time
    assert sms.attempts == 0 and sms.detail["deferred"] == "quiet hours"
    # picked up early anyway (a sweep, a redelivery): it looks again and waits, spending no attempt
    monkeypatch.setattr(reminders, "clock", lambda: three_am + timedelta(days=1))
    outcome = pipeline.run_delivery(sms.id)
    assert outcome.retry_in == pipeline.settings().retry_cap  # looks again within the cap, not hours ahead
    again = rows([sms.id])[0]
    assert again.status == "retry" and again.attempts == 0 and sms_lines() == []
    with db.engine().begin() as conn:  # the wait is over (the test's clock is in the past)
        conn.execute(update(db.deliveries).where(db.deliveries.c.id == sms.id).values(next_attempt_at=at(1, 8)))
    monkeypatch.setattr(reminders, "clock", lambda: at(1, 8, 1))
    assert pipeline.run_delivery(sms.id).retry_in is None
    assert rows([sms.id])[0].status == "done" and len(sms_lines()) == 1
    assert inv


def test_an_escalation_alerts_finance_on_slack(clean, monkeypatch, tmp_path):
    from invoicer.providers.slack.simulator import SlackSimulator

    from .providers.channels import serve

    with serve(SlackSimulator(), monkeypatch) as sim:
        cadence = {"steps": [*CADENCE["steps"], {"name": "final", "days": 30, "escalate": True}]}
        inv = invoice(monkeypatch, tmp_path, cadence=cadence, channels={"slack": sim.channel(sim.url)})
        before = len(sim.channels[sim.channel_id])  # the invoice itself was announced there
        reminders.opt_out("acme-hvac", "C-1", by="test")  # the customer asked for no reminders ...
        monkeypatch.setattr(reminders, "clock", lambda: at(30, 9, 5))
        made = reminders.fan_out(at(30, 9, 5))
        assert [(r.kind, r.target, r.status) for r in sent(made)] == [("slack", "reminder:final", "done")]
        [posted] = sim.channels[sim.channel_id][before:]  # ... finance is still told
        assert "Overdue: invoice *INV-000001*" in posted["text"] and "30 days ago: $251.10 unpaid" in posted["text"]
    assert steps(inv) == {"before": ("skipped", "missed; a later step (late) is due"),
                          "due": ("skipped", "missed; a later step (late) is due"),
                          "late": ("skipped", "the customer opted out of reminders"), "final": ("sent", None)}


def test_opt_out_pause_and_void_stop_reminders_and_are_audited(clean, monkeypatch, tmp_path):
    inv = invoice(monkeypatch, tmp_path)
    monkeypatch.setattr(reminders, "clock", lambda: at(-3, 10))
    assert reminders.opt_out("acme-hvac", "C-1", by="cli") and not reminders.opt_out("acme-hvac", "C-1", by="cli")
    assert reminders.fan_out(at(-3, 10)) == []
    assert steps(inv) == {"before": ("skipped", "the customer opted out of reminders")}
    assert reminders.opt_out("acme-hvac", "C-1", by="cli", back_in=True)
    assert reminders.act(inv, "pause", by="cli", reason="disputed")["changed"]
    assert reminders.fan_out(at(0, 10)) == []
    made_before_pause = reminders.act(inv, "resume", by="cli")
    assert made_before_pause["changed"]
    made = reminders.fan_out(at(0, 10))
    assert len(made) == 2
    assert reminders.act(inv, "void", by="cli")["changed"]
    monkeypatch.setattr(reminders, "clock", lambda: at(0, 10))
    assert {r.detail["reason"] for r in sent(made)} == {"the invoice was voided"}
    with pytest.raises(reminders.Conflict):
        reminders.act(inv, "pay", by="cli")
    assert reminders.fan_out(at(30, 10)) == []
    trail = audit_actions()
    for action in ("reminders_opt_out", "reminder_skipped", "reminders_opt_in", "reminders_paused",
                   "reminders_resumed", "reminder_due", "invoice_voided"):
        assert action in trail, action


def test_cli_and_admin_api_mark_paid_pause_and_void(clean, client, monkeypatch, tmp_path, capsys):
    from invoicer.cli import main

    inv = invoice(monkeypatch, tmp_path)
    assert client.post(f"/v1/admin/invoices/{inv}/pause", json={"reason": "disputed"},
                       headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.post(f"/v1/admin/invoices/{inv}/pause", json={"reason": "disputed"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["changed"] is True
    assert client.post(f"/v1/admin/invoices/{inv}/refund", headers=ADMIN).status_code == 404
    assert client.post("/v1/admin/invoices/999999/pay", headers=ADMIN).status_code == 404
    r = client.post(f"/v1/admin/invoices/{inv}/pay", json={"reason": 5}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"
    assert main(["invoices", "resume", str(inv)]) == 0
    assert main(["invoices", "pay", "INV-000001", "--tenant", "acme-hvac", "--reason", "cheque"]) == 0
    assert '"changed": true' in capsys.readouterr().out
    r = client.post(f"/v1/admin/invoices/{inv}/void", headers=ADMIN)
    assert r.status_code == 409 and "paid" in r.json()["detail"]
    assert main(["invoices", "pay", "NOPE-1", "--tenant", "acme-hvac"]) == 1
    with db.engine().connect() as conn:
        trail = conn.execute(select(db.audit_log.c.action, db.audit_log.c.detail).where(
            db.audit_log.c.invoice_id == inv, db.audit_log.c.action.in_(
                ("reminders_paused", "reminders_resumed", "invoice_marked_paid")))
            .order_by(db.audit_log.c.id)).all()
    assert [(a, d["by"]) for a, d in trail] == [("reminders_paused", "api"), ("reminders_resumed", "cli"),
                                                ("invoice_marked_paid", "cli")]
    assert trail[0].detail["reason"] == "disputed" and trail[2].detail["amount_paid"] == "251.10"
    assert reminders.fan_out(at(0, 10)) == []


def test_preview_lists_what_would_be_sent_and_to_whom(clean, monkeypatch, tmp_path, capsys):
    from invoicer.cli import main

    invoice(monkeypatch, tmp_path)
    plan = reminders.preview("acme-hvac", 6, now=at(-5, 12))
    assert [(p["step"], p["due_at"]) for p in plan] == [("before", at(-3, 9).isoformat()),
                                                        ("due", at(0, 9).isoformat())]
    assert plan[1]["zone"] == "America/New_York"
    assert [(c["channel"], c["to"]) for c in plan[1]["channels"]] == [("email", "h***@example.com"),
                                                                     ("sms", "+14***00")]
    assert reminders.fan_out(at(-5, 12)) == []  # a preview changes nothing
    capsys.readouterr()
    assert main(["reminders", "preview", "--tenant", "acme-hvac", "--days", "30", "--json"]) == 0
    # today, the due date long past: the missed steps would be skipped, the latest sent at once
    now = json.loads(capsys.readouterr().out)
    assert [(p["step"], p.get("skipped")) for p in now] == [
        ("before", "missed; a later step (late) is due"), ("due", "missed; a later step (late) is due"), ("late", None)]
    assert [c["channel"] for c in now[2]["channels"]] == ["email", "sms"]
    assert main(["reminders", "preview", "--tenant", "acme-hvac", "--days", "30"]) == 0
    assert "INV-000001" in capsys.readouterr().out
    assert main(["reminders", "preview", "--tenant", "nobody", "--days", "3"]) == 2


def test_payment_status_is_polled_from_a_platform_without_webhooks(clean, monkeypatch, tmp_path):
    from decimal import Decimal

    from invoicer import payments
    from invoicer.providers import registry
    from invoicer.providers.simulate import Running
    from invoicer.providers.wave.simulator import WaveSimulator

    from .providers.accounting import harness
    from .providers.wave import options

    assert {"quickbooks", "wave", "myob"} <= set(payments.pollable()) and "stripe" not in payments.pollable()
    with Running(WaveSimulator()) as running:
        wave = harness(running, monkeypatch, tmp_path, registry.get("wave"), options)
        inv = invoice(monkeypatch, tmp_path, platforms={"books": options(running.url)})
        [(delivery_id, external_id)] = [(r.id, r.external_id) for r in _invoice_rows(inv)]
        now = db.utcnow()
        assert payments.due(now) == [delivery_id]
        assert payments.due(now) == []  # claimed: a second beat asks nothing
        assert payments.poll(delivery_id) == "unpaid"
        wave.sim.pay(external_id, Decimal("100.00"))
        assert payments.due(now + timedelta(minutes=30)) == []  # asked at most once an hour
        assert payments.due(now + timedelta(hours=1, seconds=1)) == [delivery_id]
        assert payments.poll(delivery_id) == "partial"
        wave.sim.pay(external_id, Decimal("151.10"))
        assert payments.due(now + timedelta(hours=3)) == [delivery_id]
        assert payments.poll(delivery_id) == "paid"
    with db.engine().connect() as conn:
        paid = conn.execute(select(db.invoices.c.amount_paid, db.invoices.c.paid_at)
                            .where(db.invoices.c.id == inv)).one()
    assert paid.amount_paid == Decimal("251.10") and paid.paid_at is not None
    assert payments.due(now + timedelta(hours=9)) == [] and reminders.fan_out(at(0, 10)) == []
    assert audit_actions(inv)[-2:] == ["payment_partial", "invoice_paid"]


def _invoice_rows(invoice_id: int) -> list:
    d = db.deliveries.c
    with db.engine().connect() as conn:
        return conn.execute(select(db.deliveries).where(d.invoice_id == invoice_id, d.kind == "invoice")).all()


def test_a_platform_voiding_the_invoice_stops_its_reminders(clean, monkeypatch, tmp_path):
    from invoicer.providers.base import WebhookEvent

    inv = invoice(monkeypatch, tmp_path)
    [row] = _invoice_rows(inv)
    event = WebhookEvent(type="invoice.voided", external_id=row.external_id)
    assert pipeline.apply_webhook("acme-hvac", "local", event) == "recorded"
    assert reminders.fan_out(at(0, 10)) == [] and "webhook_invoice.voided" in audit_actions(inv)


def test_beat_schedules_the_reminder_and_payment_selections():
    import invoicer.tasks.reminders  # noqa: F401  (registers the tasks, as the worker's include does)
    from invoicer.tasks import app

    schedule = app.conf.beat_schedule
    assert schedule["reminders"]["task"] == "invoicer.beat.reminders" and schedule["reminders"]["schedule"] == 60
    assert schedule["payments"]["task"] == "invoicer.beat.payments"
    assert {"invoicer.beat.reminders", "invoicer.beat.payments", "invoicer.invoices.poll_payment"} <= set(app.tasks)
    assert "invoicer.tasks.reminders" in app.conf.include
