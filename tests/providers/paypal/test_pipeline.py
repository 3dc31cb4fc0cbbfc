"""The whole pipeline on the PayPal simulator: a job becomes a sent PayPal invoice whose total is ours,
its payer link is the Pay online link on the PDF and in the SMS, and PayPal's INVOICING.INVOICE.PAID
delivery, verified by PayPal's verify-webhook-signature call, marks our invoice paid."""
from __future__ import annotations

from decimal import Decimal

import requests
from sqlalchemy import select

from invoicer import db

from ...conftest import ADMIN, VAR
from .. import pdf_text, run_job


def test_paypal_invoice_its_pay_link_and_its_verified_paid_webhook(procs, tmp_path):
    from invoicer import sandbox

    box = sandbox.start(["paypal"])
    try:
        paypal = box["paypal"]
        path = tmp_path / "tenants.yaml"
        path.write_text(box.tenants_yaml({"pal-co": box.tenant("Pal Co", "paypal",
                                                                channels={"customer": ["email", "sms"]})}))
        env = {**box.env, "INVOICER_CONFIG": str(path)}
        base, status = run_job(procs, env, "pal-co")
        [invoice] = status["invoices"]
        [pp] = paypal.sim.invoices.values()
        assert pp["status"] == "SENT" and pp["detail"]["invoice_number"] == invoice["number"]
        assert Decimal(pp["amount"]["value"]) == Decimal(invoice["total"]) == Decimal("251.10")
        pay_url = pp["detail"]["metadata"]["recipient_view_url"]

        assert pay_url in pdf_text(base, invoice)
        assert pay_url in (VAR / "outbox" / "sms.jsonl").read_text()

        hook = f"{base}/v1/webhooks/paypal/pal-co"
        body, headers = paypal.sim.pay(pp["id"])
        forged = requests.post(hook, data=body.replace(b'"PAID"', b'"PAID" '), headers=headers, timeout=10)
        assert forged.status_code == 401
        ok = requests.post(hook, data=body, headers=headers, timeout=10)
        assert ok.status_code == 200 and ok.json()["outcomes"] == ["paid"]
        assert requests.post(hook, data=body, headers=headers, timeout=10).json()["outcomes"] == ["unchanged"]
        paid = requests.get(f"{base}/v1/jobs/pal-co/J-1", headers=ADMIN, timeout=10).json()["invoices"][0]
        assert Decimal(paid["amount_paid"]) == Decimal("251.10") and paid["paid_at"]
        with db.engine().connect() as conn:
            audit = conn.execute(select(db.audit_log.c.action, db.audit_log.c.detail)).all()
        assert [d["provider"] for a, d in audit if a == "invoice_paid"] == ["paypal"]
    finally:
        box.stop()
