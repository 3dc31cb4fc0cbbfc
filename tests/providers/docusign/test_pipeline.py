"""DocuSign in the pipeline (in this process, real PostgreSQL and Redis): a create whose answer is lost is
found by the retry, so the customer gets one envelope; a tenants-file entry DocuSign could not use is
refused at start."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from invoicer import db
from invoicer.config import ConfigError, load_tenants
from invoicer.providers.docusign.simulator import DocuSignSimulator
from tests.providers.channels import run_job, serve

from . import signing_tenant


def test_a_lost_answer_is_found_by_the_retry_and_one_envelope_is_sent(clean, tmp_path, monkeypatch):
    from invoicer.providers.docusign import adapter

    adapter._tokens.clear()
    with serve(DocuSignSimulator(), monkeypatch) as sim:
        signing_tenant(monkeypatch, tmp_path, sim)
        sim.fault_on("POST", r".*/envelopes", "drop")
        invoice_id = run_job()
        [envelope_id] = sim.envelopes
        with db.engine().connect() as conn:
            row = conn.execute(select(db.deliveries).where(db.deliveries.c.invoice_id == invoice_id,
                                                           db.deliveries.c.target == "sign")).one()
            attempts = conn.execute(select(db.attempts.c.outcome, db.attempts.c.error_type).where(
                db.attempts.c.delivery_id == row.id).order_by(db.attempts.c.id)).all()
        assert row.status == "done" and row.external_id == envelope_id and row.detail["found_existing"] is True
        assert [a.error_type for a in attempts] == ["OutcomeUnknown", None]
        assert len(sim.api_calls("POST")) == 1 and len(sim.api_calls("GET")) == 1


def test_a_docusign_entry_without_its_user_is_refused_at_start(tmp_path):
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  acme:\n    name: Acme\n    platforms:\n      sign: {provider: docusign, "
                    "sign_here: {page: first}}\n    sources: {'*': {unsigned: true}}\n")
    with pytest.raises(ConfigError) as info:
        load_tenants(str(path))
    assert "tenants.acme.platforms.sign.user_id" in str(info.value)
    assert "tenants.acme.platforms.sign.sign_here" in str(info.value)
