"""The whole pipeline on simulators: one job for a tenant on Stripe and Square whose `pay_link` names
Square, so Square's payment page (not Stripe's) is the Pay online link on the PDF and in the SMS; then
Square's signed `invoice.payment_made` through POST /v1/webhooks/square/{tenant} marks it paid."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from sqlalchemy import select

from invoicer import config, db
from invoicer.config import ConfigError

from ...conftest import ADMIN, VAR
from .. import pdf_text, run_job


@pytest.fixture
def box(monkeypatch):
    from invoicer import sandbox

    box = sandbox.start(["square", "stripe"])
    for name, value in box.env.items():
        monkeypatch.setenv(name, value)
    yield box
    box.stop()


def tenants_file(tmp_path, box, **extra) -> str:
    tenants = {"pay-co": box.tenant("Pay Co", "square", "stripe", channels={"customer": ["email", "sms"]}, **extra)}
    path = tmp_path / "tenants.yaml"
    path.write_text(box.tenants_yaml(tenants))
    return str(path)


def test_pay_link_must_name_a_payment_platform_of_the_tenant(tmp_path, box):
    assert config.load_tenants(tenants_file(tmp_path, box, pay_link="square"))["pay-co"].pay_link == "square"
    for wrong in ("paypal", "nowhere"):
        with pytest.raises(ConfigError, match=f"tenants.pay-co.pay_link: '{wrong}'"):
            config.load_tenants(tenants_file(tmp_path, box, pay_link=wrong))


def test_square_invoice_its_pay_link_and_its_paid_webhook(procs, tmp_path, box):
    square, stripe = box["square"], box["stripe"]
    env = {**box.env, "INVOICER_CONFIG": tenants_file(tmp_path, box, pay_link="square")}
    base, status = run_job(procs, env, "pay-co")
    [invoice] = status["invoices"]
    [sq] = square.sim.invoices.values()
    order = square.sim.orders[sq["order_id"]]
    assert Decimal(invoice["total"]) == Decimal("251.10") and order["total_money"] == {"amount": 25110,
                                                                                      "currency": "USD"}
    assert sq["status"] == "UNPAID" and sq["invoice_number"] == invoice["number"]
    pay_url = sq["public_url"]
    [st] = stripe.sim.invoices.values()
    assert stripe.sim._invoice_view(st)["hosted_invoice_url"] != pay_url

    text = pdf_text(base, invoice)
    assert pay_url in text and "/i/" not in text  # Square's page, not Stripe's
    assert pay_url in (VAR / "outbox" / "sms.jsonl").read_text()

    hook = f"{base}/v1/webhooks/square/pay-co"
    body, headers = square.sim.pay(sq["id"], hook)
    assert requests.post(hook, data=body.replace(b'"PAID"', b'"UNPAID"'), headers=headers,
                         timeout=10).status_code == 401
    other_url = square.sim.signed(square.sim.event("invoice.payment_made", sq["id"]), "https://elsewhere/hook")
    assert requests.post(hook, data=other_url[0], headers=other_url[1], timeout=10).status_code == 401
    ok = requests.post(hook, data=body, headers=headers, timeout=10)
    assert ok.status_code == 200 and ok.json()["outcomes"] == ["paid"]
    assert requests.post(hook, data=body, headers=headers, timeout=10).json()["outcomes"] == ["unchanged"]
    paid = requests.get(f"{base}/v1/jobs/pay-co/J-1", headers=ADMIN, timeout=10).json()["invoices"][0]
    assert Decimal(paid["amount_paid"]) == Decimal("251.10") and paid["paid_at"]
    with db.engine().connect() as conn:
        audit = conn.execute(select(db.audit_log.c.action, db.audit_log.c.detail)).all()
    assert [d["provider"] for a, d in audit if a == "invoice_paid"] == ["square"]
