"""Gmail and Drive in the pipeline (in this process, real PostgreSQL and Redis, the simulator over HTTP)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from invoicer import db

from ..channels import messages, run_job, use_tenants


def use(monkeypatch, tmp_path, sim, drive: dict | None = None, **gmail) -> None:
    platforms = {"books": {"provider": "local"}}
    if drive is not None:
        platforms["files"] = sim.platform(sim.url, **drive)
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "platforms": platforms, "channels": {
        "customer": ["email"], "email": sim.channel(sim.url, **gmail)}}})


def deliveries(invoice_id: int) -> list:
    d = db.deliveries.c
    with db.engine().connect() as conn:
        return conn.execute(select(db.deliveries).where(d.invoice_id == invoice_id).order_by(d.id)).all()


def stage(invoice_id: int) -> str:
    with db.engine().connect() as conn:
        return conn.execute(select(db.invoices.c.stage).where(db.invoices.c.id == invoice_id)).scalar_one()


def test_gmail_after_a_lost_answer_finds_its_message_and_sends_no_second_copy(clean, sim, monkeypatch, tmp_path):
    use(monkeypatch, tmp_path, sim)
    sim.fault_on("POST", "/upload/gmail/v1/users/me/messages/send", "drop")
    [row] = messages(run_job())
    [message] = sim.messages.values()  # it went, once
    assert row.status == "done" and row.attempts == 2
    assert row.external_id == message["id"] and row.detail["found_existing"] is True
    assert message["message_id"] == f"<{row.idempotency_key}@acme.example>"
    [pdf] = message["mail"].iter_attachments()
    assert pdf.get_filename() == "INV-000001.pdf"
    searches = [r for r in sim.received if r.method == "GET" and r.path.endswith("/messages")]
    assert len(searches) == 1


class Killed(BaseException):
    """The worker process dying between Gmail taking the message and our recording it."""


def test_gmail_after_a_worker_died_mid_send_finds_its_message(clean, sim, monkeypatch, tmp_path):
    from datetime import timedelta

    from sqlalchemy import update

    from invoicer import pipeline
    from invoicer.providers.google.adapter import Gmail

    use(monkeypatch, tmp_path, sim)
    real = Gmail.send_email

    def send_then_die(self, message):
        real(self, message)
        raise Killed

    monkeypatch.setattr(Gmail, "send_email", send_then_die)
    with pytest.raises(Killed):
        run_job()
    monkeypatch.setattr(Gmail, "send_email", real)
    d = db.deliveries.c
    with db.engine().begin() as conn:  # the dead worker's lease runs out
        [email_id] = conn.execute(update(db.deliveries).where(d.kind == "email", d.status == "running").values(
            claimed_until=db.utcnow() - timedelta(seconds=1)).returning(d.id)).scalars().all()
    pipeline.run_delivery(email_id)
    [row] = [r for r in deliveries(messages_invoice(email_id)) if r.kind == "email"]
    assert row.status == "done" and row.attempts == 2 and row.detail["found_existing"] is True
    assert len(sim.messages) == 1 and row.external_id == next(iter(sim.messages))


def messages_invoice(delivery_id: int) -> int:
    with db.engine().connect() as conn:
        return conn.execute(select(db.deliveries.c.invoice_id).where(db.deliveries.c.id == delivery_id)).scalar_one()


def test_a_gmail_rate_limit_is_waited_out_without_spending_an_attempt(clean, sim, monkeypatch, tmp_path):
    use(monkeypatch, tmp_path, sim)
    sim.inject("429")
    [row] = messages(run_job())
    assert row.status == "done" and row.attempts == 1 and len(sim.messages) == 1


def test_drive_files_the_pdf_once_after_a_lost_answer_beside_the_messages(clean, sim, monkeypatch, tmp_path):
    use(monkeypatch, tmp_path, sim, drive={})
    sim.fault_on("POST", "/upload/drive/v3/files", "drop")
    invoice_id = run_job()
    filing = [r for r in deliveries(invoice_id) if r.target == "files"]
    assert [(r.kind, r.provider, r.status, r.attempts) for r in filing] == [("invoice", "drive", "done", 2)]
    [(file_id, file)] = sim.files.items()  # the retry found the file under its reserved id: no second copy
    assert filing[0].external_id == file_id and filing[0].url == file["webViewLink"]
    assert filing[0].detail["found_existing"] is True and sim.permissions == {}
    assert [r.path for r in sim.received].count("/drive/v3/files/generateIds") == 1
    assert stage(invoice_id) == "done"
    [mail] = sim.messages.values()
    assert "/v1/invoices/" in mail["mail"].get_body(("plain",)).get_content()  # our signed link, not Drive's


def test_the_drive_link_stands_in_for_ours_when_the_tenant_says_so(clean, sim, monkeypatch, tmp_path):
    use(monkeypatch, tmp_path, sim, drive={"share": "anyone", "link_in_messages": True})
    invoice_id = run_job()
    rows = deliveries(invoice_id)
    filing = next(r for r in rows if r.target == "files")
    email = next(r for r in rows if r.kind == "email")
    assert filing.status == email.status == "done" and filing.id < email.id  # filed first, then told
    [file] = sim.files.values()
    assert sim.permissions[file["id"]]["anyoneWithLink"]["type"] == "anyone"
    [mail] = sim.messages.values()
    text = mail["mail"].get_body(("plain",)).get_content()
    assert file["webViewLink"] in text and "/v1/invoices/" not in text
    assert stage(invoice_id) == "done"


def test_a_tenant_file_asking_for_a_link_nobody_can_open_is_refused(sim, monkeypatch, tmp_path):
    from invoicer.config import ConfigError, tenants

    use(monkeypatch, tmp_path, sim, drive={"link_in_messages": True})
    with pytest.raises(ConfigError, match="platforms.files.link_in_messages"):
        tenants()
