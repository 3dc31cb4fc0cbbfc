"""SMTP over a real local mail server (aiosmtpd): STARTTLS, login, the message as sent, each failure
as its typed error, and what a retry after an unknown outcome does (review; or again, same Message-ID,
when the tenant chose at least once)."""
from __future__ import annotations

import pytest

from invoicer.errors import AuthFailed, OutcomeUnknown, Rejected, Unavailable
from invoicer.providers.base import Message
from invoicer.providers.smtp.adapter import Smtp
from invoicer.providers.smtp.simulator import SmtpSimulator

from ...conftest import free_port
from ..channels import messages, one_channel, run_job


@pytest.fixture(scope="module")
def server():
    sim = SmtpSimulator().start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(server, monkeypatch):
    server.messages.clear()
    server.faults.clear()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    return server


MSG = Message(key="d" * 64, to="huong@example.com", subject="Invoice ACME-1", text="Hello\n", html="<p>Hello</p>",
              attachment=("ACME-1.pdf", b"%PDF-1.7 x"))


def test_sends_over_starttls_with_login(sim):
    sent = Smtp(sim.channel(), None).send_email(MSG)
    [got] = sim.messages
    assert got["tls"] and got["auth"] and got["to"] == ["huong@example.com"]
    assert got["from"] == "billing@acme.example"
    assert got["mail"]["Message-ID"] == sent.external_id == f"<{'d' * 64}@acme.example>"
    assert sent.detail["smtp_reply"].startswith("250")
    [pdf] = list(got["mail"].iter_attachments())
    assert pdf.get_content() == b"%PDF-1.7 x"


def test_a_temporary_refusal_is_retried_a_permanent_one_is_not(sim):
    provider = Smtp(sim.channel(), None)
    sim.inject("421")
    with pytest.raises(Unavailable) as exc:
        provider.send_email(MSG)
    assert not isinstance(exc.value, OutcomeUnknown) and exc.value.status == 421
    sim.inject("550")
    with pytest.raises(Rejected, match="550"):
        provider.send_email(MSG)
    assert sim.messages == []


def test_a_wrong_password_is_auth_failed(sim, monkeypatch):
    monkeypatch.setenv("INVOICER_SANDBOX_SMTP_PASSWORD", "wrong")
    with pytest.raises(AuthFailed):
        Smtp(sim.channel(), None).send_email(MSG)


def test_no_server_is_unavailable_and_nothing_was_sent(sim):
    with pytest.raises(Unavailable) as exc:
        Smtp(sim.channel(port=free_port()), None).send_email(MSG)
    assert not isinstance(exc.value, OutcomeUnknown)


def test_a_connection_lost_after_the_data_is_an_unknown_outcome(sim):
    sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        Smtp(sim.channel(), None).send_email(MSG)
    assert len(sim.messages) == 1  # the server had it


def test_in_the_pipeline_an_unknown_outcome_goes_to_review_not_to_a_second_copy(clean, sim, monkeypatch, tmp_path):
    """SMTP cannot be asked whether a message went: the delivery waits for a person, one copy sent."""
    one_channel(monkeypatch, tmp_path, "email", sim.channel())
    sim.inject("drop")
    [row] = messages(run_job())
    assert row.status == "review" and row.attempts == 2 and row.detail["status"] == "unknown"
    assert len(sim.messages) == 1


def test_a_worker_killed_mid_send_counts_as_an_unknown_outcome(clean, sim, monkeypatch, tmp_path):
    """An attempt that began and never recorded its end (the worker died mid-send) may have sent the
    message: the retry does not send again."""
    from sqlalchemy import update

    from invoicer import db, pipeline

    one_channel(monkeypatch, tmp_path, "email", sim.channel())
    real_run = pipeline.run_delivery

    def crash_first_email(delivery_id):
        if pipeline.delivery_kind(delivery_id) == "email" and not getattr(crash_first_email, "done", False):
            crash_first_email.done = True  # claimed and sent, then the worker died before recording it
            with db.engine().begin() as conn:
                conn.execute(update(db.deliveries).where(db.deliveries.c.id == delivery_id).values(
                    status="running", attempts=1, claimed_until=db.utcnow()))
            return pipeline.Outcome(retry_in=0.1)
        return real_run(delivery_id)

    monkeypatch.setattr(pipeline, "run_delivery", crash_first_email)
    [row] = messages(run_job())
    assert row.status == "review" and row.attempts == 2 and sim.messages == []


def test_a_tenant_may_choose_at_least_once_and_get_the_same_message_id_twice(clean, sim, monkeypatch, tmp_path):
    one_channel(monkeypatch, tmp_path, "email", {**sim.channel(), "at_least_once": True})
    sim.inject("drop")
    [row] = messages(run_job())
    assert row.status == "done" and row.attempts == 2 and row.detail["status"] == "sent"
    assert [m["mail"]["Message-ID"] for m in sim.messages] == [row.external_id] * 2
    mail = sim.messages[-1]["mail"]
    assert mail["Subject"] == "Invoice INV-000001 from Acme"
    assert [a.get_filename() for a in mail.iter_attachments()] == ["INV-000001.pdf"]
    assert "/v1/invoices/" in mail.get_body(("plain",)).get_content()


def test_link_instead_of_attachment_per_tenant(clean, sim, monkeypatch, tmp_path):
    one_channel(monkeypatch, tmp_path, "email", sim.channel(), pdf="link")
    run_job()
    [got] = sim.messages
    assert list(got["mail"].iter_attachments()) == []
    assert "is attached" not in got["mail"].get_body(("plain",)).get_content()



def _in_review(sim, monkeypatch, tmp_path):
    from invoicer import dlq

    one_channel(monkeypatch, tmp_path, "email", sim.channel())
    sim.inject("drop")
    [row] = messages(run_job())
    assert row.status == "review" and [r["id"] for r in dlq.dead_letters(status="review")] == [row.id]
    return row


def _settled() -> list[str]:
    from sqlalchemy import select

    from invoicer import db

    with db.engine().connect() as conn:
        return [d["outcome"] for d in conn.execute(select(db.audit_log.c.detail).where(
            db.audit_log.c.action == "review_settled")).scalars()]


def test_settle_resend_sends_one_more_copy_despite_the_earlier_unknown_outcome(clean, sim, monkeypatch, tmp_path):
    """`invoicer dlq settle ID --outcome resend`: a person saw the message never arrived."""
    from invoicer import dlq, pipeline

    row = _in_review(sim, monkeypatch, tmp_path)
    assert dlq.settle(row.id, sent=False) == [("email", row.id)]
    assert dlq.settle(row.id, sent=False) is None  # settled once: nothing to do the second time
    assert pipeline.run_delivery(row.id).retry_in is None
    [again] = messages(row.invoice_id)
    assert again.status == "done" and again.attempts == 1 and len(sim.messages) == 2
    assert _settled() == ["resend"]


def test_settle_sent_over_the_admin_api_closes_the_delivery_and_sends_nothing(client, sim, monkeypatch, tmp_path):
    row = _in_review(sim, monkeypatch, tmp_path)
    assert [r["id"] for r in client.get("/v1/admin/review").json()["review"]] == [row.id]
    bad = client.post(f"/v1/admin/review/{row.id}/settle", json={"outcome": "maybe"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "outcome"
    assert client.post(f"/v1/admin/review/{row.id}/settle", json={"outcome": "sent"}).json() == {
        "settled": row.id, "outcome": "sent"}
    assert client.post(f"/v1/admin/review/{row.id}/settle", json={"outcome": "sent"}).status_code == 409
    [settled] = messages(row.invoice_id)
    assert settled.status == "done" and settled.detail["settled_by"] == "api" and len(sim.messages) == 1
    assert _settled() == ["sent"]
