"""QuickBooks webhooks: the intuit-signature check (pure), and a notification through the ingress turned into a
status request against the simulator over real HTTP, on the real PostgreSQL and Redis: the invoice paid (or
partly), its queued reminder skipped, a replay changing nothing, another company's notice ignored."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from invoicer.providers import registry

registry.all_providers()  # load every provider package before importing one adapter (see test_adapter.py)
from invoicer import db, reminders  # noqa: E402
from invoicer.errors import AuthFailed, Rejected  # noqa: E402
from invoicer.providers.quickbooks import transform, webhooks  # noqa: E402
from invoicer.providers.quickbooks.simulator import QuickBooksSimulator  # noqa: E402
from invoicer.providers.simulate import Running  # noqa: E402

from ...test_reminders import at, audit_actions, invoice, sent  # noqa: E402
from ..accounting import make_ctx  # noqa: E402
from ..channels import own_tenants_forgotten  # noqa: E402,F401  (autouse)
from . import OPTIONS, REALM  # noqa: E402

TOKEN = "verifier-token"


# ---------------------------------------------------------------- the signature and the two formats (pure)

def test_a_signed_notification_gives_its_invoice_and_payment_changes_only():
    sim = QuickBooksSimulator(realm_id=REALM, webhook_token=TOKEN, spec=False)
    body, headers = sim.notification([("Invoice", "130", "Update"), ("Payment", "131", "Create"),
                                      ("Customer", "58", "Update"), ("Invoice", "130", "Emailed"),
                                      ("Payment", "99", "Delete")])
    events = webhooks.parse(headers, body, TOKEN, REALM)
    assert [(e.type, e.external_id, e.raw["account"]) for e in events] == [
        ("invoice.changed", "130", REALM), ("payment.changed", "131", REALM)]
    assert events[1].raw["notification"]["operation"] == "Create"  # the vendor's own item kept beside it


def test_the_cloudevents_format_reads_the_same():
    sim = QuickBooksSimulator(realm_id=REALM, webhook_token=TOKEN, spec=False)
    body, headers = sim.notification([("Payment", "131", "Create"), ("Invoice", "130", "Void")], cloudevents=True)
    assert json.loads(body)[0]["type"] == "qbo.payment.created.v1"
    events = webhooks.parse(headers, body, TOKEN, REALM)
    assert [(e.type, e.external_id) for e in events] == [("payment.changed", "131")]


@pytest.mark.parametrize("change", ["tampered", "wrong_token", "missing"])
def test_a_bad_signature_is_refused_before_the_body_is_read(change):
    sim = QuickBooksSimulator(realm_id=REALM, webhook_token=TOKEN, spec=False)
    body, headers = sim.notification([("Payment", "131", "Create")])
    if change == "tampered":
        body = body.replace(b'"131"', b'"132"')
    elif change == "wrong_token":
        body, headers = sim.notification([("Payment", "131", "Create")], token="another-apps-token")
    else:
        headers = {}
    with pytest.raises(AuthFailed, match="intuit-signature"):
        webhooks.parse(headers, body, TOKEN, REALM)


def test_another_company_is_left_out_and_a_foreign_body_rejected():
    sim = QuickBooksSimulator(realm_id=REALM, webhook_token=TOKEN, spec=False)
    body, headers = sim.notification([("Payment", "131", "Create")], realm_id="123145")
    assert webhooks.parse(headers, body, TOKEN, REALM) == []
    other = b'{"events": []}'
    with pytest.raises(Rejected, match="eventNotifications"):
        webhooks.parse({webhooks.HEADER: webhooks.sign(other, TOKEN)}, other, TOKEN, REALM)


def test_a_payments_invoices_are_its_linked_invoice_transactions():
    credit, invoice_131 = {"TxnId": "7", "TxnType": "CreditMemo"}, {"TxnId": "131", "TxnType": "Invoice"}
    payment = {"Line": [{"LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]},
                        {"LinkedTxn": [credit, invoice_131]},
                        {"LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}]}
    assert transform.linked_invoices(payment) == ["130", "131"]
    assert transform.linked_invoices({"Line": []}) == []


# ---------------------------------------------------------------- through the ingress, on the real database

@pytest.fixture
def qbo(clean, monkeypatch, tmp_path):
    """acme-hvac invoicing on the QuickBooks simulator as `books`, with a reminder cadence; the job run."""
    sim = QuickBooksSimulator(realm_id=REALM, webhook_token=TOKEN)
    with Running(sim) as running:
        monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        books = {**OPTIONS, "base_url": running.url, "token_url": f"{running.url}/oauth2/v1/tokens/bearer"}
        make_ctx(tmp_path).credentials.put(sim.issue_tokens())
        inv = invoice(monkeypatch, tmp_path, platforms={"books": books})
        with db.engine().connect() as conn:
            external = conn.execute(select(db.deliveries.c.external_id).where(
                db.deliveries.c.invoice_id == inv, db.deliveries.c.kind == "invoice")).scalar()
        assert sim.invoices[external]["TotalAmt"] == Decimal("251.10")
        yield sim, inv, external


def post(client, published, body, headers) -> dict:
    """POST the notification as Intuit would, then run the tasks the ingress published, as a worker would."""
    from invoicer.tasks import app

    published.clear()
    answer = client.post("/v1/webhooks/quickbooks", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    for name, message in list(published):
        args, kwargs, _ = message
        app.tasks[name](*args, **kwargs)
    return answer.json()


def amounts(inv: int):
    with db.engine().connect() as conn:
        return conn.execute(select(db.invoices.c.amount_paid, db.invoices.c.paid_at)
                            .where(db.invoices.c.id == inv)).one()


def test_a_payment_notification_marks_the_invoice_paid_and_its_queued_reminder_is_skipped(
        qbo, client, published, monkeypatch):
    sim, inv, external = qbo
    monkeypatch.setattr(reminders, "clock", lambda: at(0, 10))
    made = reminders.fan_out(at(0, 10))  # the due-date reminder fanned out, not yet sent ...
    assert len(made) == 2  # email and SMS
    payment = sim.receive_payment(external, Decimal("251.10"))  # ... when the customer pays in QuickBooks
    body, headers = sim.notification([("Payment", payment, "Create")], cloudevents=True)
    assert post(client, published, body, headers) == {"received": 1, "outcomes": ["following"]}
    assert [name for name, _ in published] == ["invoicer.invoices.follow_payment"]
    assert sim.api_requests(f"/payment/{payment}", "GET") and sim.api_requests(f"/invoice/{external}", "GET")
    paid = amounts(inv)
    assert paid.amount_paid == Decimal("251.10") and paid.paid_at is not None
    assert [(r.status, r.detail["reason"]) for r in sent(made)] == [("skipped", "the invoice is paid")] * 2
    assert reminders.fan_out(at(7, 10)) == []
    trail = audit_actions(inv)
    # a replay (Intuit signs no timestamp) and the invoice's own notice: nothing left open to ask about
    assert post(client, published, body, headers)["outcomes"] == ["not_open"] and published == []
    body, headers = sim.notification([("Invoice", external, "Update")])
    assert post(client, published, body, headers)["outcomes"] == ["not_open"]
    assert audit_actions(inv) == trail and trail.count("invoice_paid") == 1


def test_a_partial_payment_is_recorded_once_and_reminders_go_on(qbo, client, published):
    sim, inv, external = qbo
    payment = sim.receive_payment(external, Decimal("100.00"))
    body, headers = sim.notification([("Payment", payment, "Create")])
    assert post(client, published, body, headers)["outcomes"] == ["following"]
    part = amounts(inv)
    assert part.amount_paid == Decimal("100.00") and part.paid_at is None
    assert post(client, published, body, headers)["outcomes"] == ["following"]  # replayed: asked again ...
    body, headers = sim.notification([("Invoice", external, "Update")])
    assert post(client, published, body, headers)["outcomes"] == ["polling"]
    assert [name for name, _ in published] == ["invoicer.invoices.poll_payment"]
    assert len(sim.api_requests(f"/invoice/{external}", "GET")) == 3
    assert audit_actions(inv).count("payment_partial") == 1  # ... and recorded once
    assert len(reminders.fan_out(at(0, 10))) == 2  # still owed: the due-date reminder is made


def test_a_bad_signature_changes_nothing_and_an_unknown_company_is_ignored(qbo, client, published):
    sim, inv, external = qbo
    payment = sim.receive_payment(external, Decimal("251.10"))
    body, headers = sim.notification([("Payment", payment, "Create")], token="not-our-token")
    published.clear()
    bad = client.post("/v1/webhooks/quickbooks", content=body, headers=headers)
    assert bad.status_code == 401 and published == [] and not sim.api_requests("/payment/" + payment)
    body, headers = sim.notification([("Payment", payment, "Create")])
    tampered = body.replace(b"Create", b"Update")
    assert client.post("/v1/webhooks/quickbooks", content=tampered, headers=headers).status_code == 401
    body, headers = sim.notification([("Payment", payment, "Create")], realm_id="123145")  # no tenant has it
    assert post(client, published, body, headers) == {"received": 0, "outcomes": []}
    assert published == [] and amounts(inv).paid_at is None
    assert client.post("/v1/webhooks/quickbooks/acme-hvac", content=body, headers=headers,
                       ).json() == {"received": 0, "outcomes": []}
    assert "invoice_paid" not in audit_actions(inv)
