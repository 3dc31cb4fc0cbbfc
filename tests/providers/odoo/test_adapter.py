"""The Odoo adapter over real HTTP against OdooSimulator, on JSON-RPC and on JSON-2, with real PostgreSQL
(platform refs) and Redis (rate limiter); assertions on Odoo's side."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from invoicer import db
from invoicer.errors import AuthFailed, OutcomeUnknown, Rejected
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.odoo.simulator import OdooSimulator
from invoicer.providers.simulate import Running
from tests.providers.odoo import odoo_options
from tests.providers.xero import make_doc

Odoo = registry.get("odoo")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(OdooSimulator()) as r:
        yield r


@pytest.fixture(params=["jsonrpc", "json2"])
def odoo(request, clean, running, tmp_path, monkeypatch):
    sim = running.sim
    sim.reset()
    sim.rounding = "round_per_line"
    monkeypatch.setenv("INVOICER_ODOO_API_KEY", sim.api_key)

    def provider(attempt: int = 1, **extra):
        ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="books")
        return Odoo(odoo_options(sim, running.url, api=request.param, **extra), ctx)

    return SimpleNamespace(sim=sim, provider=provider, api=request.param)


def rpc_calls(sim, method):
    """Requests that called `method` (JSON-RPC execute_kw or a JSON-2 path)."""
    out = []
    for r in sim.received:
        if r.path.endswith(f"/{method}"):
            out.append(r)
        elif r.path == "/jsonrpc" and (r.json()["params"].get("args") or [None] * 5)[4:5] == [method]:
            out.append(r)
    return out


def move_creates(sim) -> int:
    return len([r for r in rpc_calls(sim, "create") if b'"account.move"' in r.body or "account.move" in r.path])


def only_move(sim) -> dict:
    [move] = sim.moves.values()
    return move


def test_create_posts_a_customer_invoice_with_our_total(odoo):
    doc = make_doc()
    created = odoo.provider().create_invoice(doc, KEY)
    move = only_move(odoo.sim)
    assert move["state"] == "posted" and move["name"] == created.number == "INV/2026/00001"
    assert move["amount_total"] == doc["total"] == Decimal("251.10") and move["amount_tax"] == 0
    assert move["ref"] == "ACME-1001" and move["move_type"] == "out_invoice" and len(move["lines"]) == 5
    assert created.external_id == str(move["id"]) and odoo.sim.mails == []
    partner = odoo.sim.partners[move["partner_id"]]
    assert partner["email"] == "huong@example.com" and partner["ref"] == "C-1"
    if odoo.api == "json2":
        first = odoo.sim.received[0]
        assert first.headers["authorization"] == f"bearer {odoo.sim.api_key}"
        assert first.headers["x-odoo-database"] == "acme"
    else:
        assert odoo.sim.logins == 1


def test_partner_and_currency_are_found_once_and_remembered(odoo):
    existing = odoo.sim.add_partner(name="Huong N.", email="HUONG@example.com")
    odoo.provider().create_invoice(make_doc(), KEY)
    odoo.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), KEY)
    assert {m["partner_id"] for m in odoo.sim.moves.values()} == {existing} and len(odoo.sim.partners) == 1
    assert len(rpc_calls(odoo.sim, "create")) == 2  # two moves, no partner
    assert len([r for r in rpc_calls(odoo.sim, "search_read") if b"res.currency" in r.body + r.path.encode()]) == 1


def test_lost_answer_to_create_leaves_a_draft_the_retry_posts_once(odoo):
    doc = make_doc()
    odoo.provider().create_invoice(make_doc(number="ACME-1000", job_id="J-0"), KEY)  # partner, currency known
    before = len(odoo.sim.received)
    odoo.sim.inject("", "drop")  # the lookup, then the create whose answer is lost
    with pytest.raises(OutcomeUnknown):
        odoo.provider().create_invoice(doc, KEY)
    assert len(odoo.sim.received) == before + 2
    draft = [m for m in odoo.sim.moves.values() if m["ref"] == doc["number"]]
    assert [m["state"] for m in draft] == ["draft"]
    found = odoo.provider(attempt=2).find_invoice(doc, KEY)
    assert found.external_id == str(draft[0]["id"]) and draft[0]["state"] == "posted"
    assert len(odoo.sim.moves) == 2 and move_creates(odoo.sim) == 2


def test_lost_answer_to_post_is_found_posted(odoo):
    doc = make_doc()
    odoo.provider().create_invoice(make_doc(number="ACME-1000", job_id="J-0"), KEY)
    odoo.sim.inject("", "", "", "drop")  # lookup, create, read, then action_post (answer lost)
    with pytest.raises(OutcomeUnknown):
        odoo.provider().create_invoice(doc, KEY)
    again = odoo.provider(attempt=2).create_invoice(doc, KEY)
    moves = [m for m in odoo.sim.moves.values() if m["ref"] == doc["number"]]
    assert [m["state"] for m in moves] == ["posted"] and again.external_id == str(moves[0]["id"])
    assert len(rpc_calls(odoo.sim, "action_post")) == 2  # the first one's, and none on the retry


def test_nothing_found_when_nothing_was_made(odoo):
    assert odoo.provider(attempt=2).find_invoice(make_doc(), KEY) is None


def test_a_reference_taken_by_another_invoice_is_refused(odoo):
    odoo.sim.add_partner(name="Someone")
    odoo.provider().create_invoice(make_doc(), KEY)
    only_move(odoo.sim)["invoice_origin"] = "SO042"
    with pytest.raises(Rejected, match="did not create"):
        odoo.provider(attempt=2).create_invoice(make_doc(), KEY)
    assert len(odoo.sim.moves) == 1


def test_taxes_mode_posts_when_odoos_tax_is_ours(odoo):
    odoo.sim.rounding = "round_globally"
    doc = make_doc()
    odoo.provider(tax_mode="taxes").create_invoice(doc, KEY)
    move = only_move(odoo.sim)
    assert move["amount_tax"] == Decimal("3.60") and move["amount_total"] == doc["total"] and move["state"] == "posted"


def test_taxes_mode_leaves_a_draft_whose_total_is_not_ours(odoo):
    odoo.sim.taxes[1] = ("Sales Tax 8.25%", Decimal("0.0825"))
    try:
        with pytest.raises(Rejected, match="ours is 251.10"):
            odoo.provider(tax_mode="taxes").create_invoice(make_doc(), KEY)
    finally:
        odoo.sim.taxes[1] = ("Sales Tax 8%", Decimal("0.08"))
    assert only_move(odoo.sim)["state"] == "draft" and rpc_calls(odoo.sim, "action_post") == []


def test_odoo_errors_become_typed_errors(odoo):
    with pytest.raises(Rejected, match="MissingError"):
        odoo.provider(lines={"labor": {"product_id": 999}, "material": {"product_id": 102},
                             "fee": {"product_id": 103}}).create_invoice(make_doc(), KEY)


def test_a_wrong_key_is_auth_failed(odoo, monkeypatch):
    monkeypatch.setenv("INVOICER_ODOO_API_KEY", "0" * 40)
    with pytest.raises(AuthFailed):
        odoo.provider().create_invoice(make_doc(), KEY)


def test_send_emails_with_the_invoice_template_once(odoo):
    doc = make_doc()
    p = odoo.provider(send=True)
    created = p.create_invoice(doc, KEY)
    p.send_invoice(created, doc, KEY)
    odoo.provider(attempt=2, send=True).send_invoice(created, doc, KEY)
    assert odoo.sim.mails == [{"move": int(created.external_id), "name": created.number, "to": "huong@example.com",
                               "template": "account.email_template_edi_invoice", "subtype": "mail.mt_comment"}]
    assert only_move(odoo.sim)["is_move_sent"] is True


def test_payment_status(odoo):
    created = odoo.provider().create_invoice(make_doc(), KEY)
    odoo.sim.pay(int(created.external_id), Decimal("251.10"))
    status = odoo.provider().payment_status(created.external_id)
    assert status.paid and status.amount_due == 0


def test_jpy_posts_exactly_and_kwd_is_refused_before_any_call_on_a_two_digit_database(odoo):
    def job(currency, rate, price):
        return make_doc(currency=currency, labor=[{"description": "Repair", "hours": "1.5", "rate": rate,
                                                   "taxable": True}],
                        materials=[{"sku": "X", "description": "Part", "quantity": "3", "unit_price": price,
                                    "taxable": True}], fees=[], discounts=[{"description": "Loyal", "percent": "7"}])
    jpy = job("JPY", "11875", "2")
    odoo.provider().create_invoice(jpy, KEY)
    assert only_move(odoo.sim)["amount_total"] == jpy["total"]
    before = len(odoo.sim.received)
    with pytest.raises(Rejected, match="Product Price"):
        odoo.provider().create_invoice(job("KWD", "12.345", "1.005"), KEY)
    assert len(odoo.sim.received) == before
