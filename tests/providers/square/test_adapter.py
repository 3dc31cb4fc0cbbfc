"""The Square adapter over real HTTP against SquareSimulator, with the real database (refs) and Redis (limits)."""
from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.simulate import Running
from invoicer.providers.square.adapter import Square
from invoicer.providers.square.simulator import SquareSimulator

from . import square_doc

TOKEN = "EAAAtest-square-token-0001"
LOCATION = "LTEST0000000001"


@pytest.fixture(scope="module")
def served():
    with Running(SquareSimulator(tokens=(TOKEN,), location_id=LOCATION)) as running:
        yield running


@pytest.fixture
def sim(clean, served, monkeypatch):
    monkeypatch.setenv("SQUARE_TOKEN", TOKEN)
    served.sim.reset()
    return served


def provider(running, tmp_path, attempt: int = 1, **options) -> Square:
    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="payments")
    return Square({"provider": "square", "access_token_env": "SQUARE_TOKEN", "location_id": LOCATION,
                   "base_url": running.url, **options}, ctx)


def posts(running, path: str) -> list:
    return [r for r in running.sim.received if r.method == "POST" and r.path == path]


def test_registered_with_its_capabilities_and_options_checked():
    assert registry.get("square") is Square
    assert {"create_invoice", "find_invoice", "payment_status", "parse_webhook", "payment_link"} <= Square.capabilities
    assert "send_invoice" not in Square.capabilities  # publishing is what sends it
    problems = Square.check_options({"provider": "square", "delivery": "fax", "send": True,
                                     "payment_methods": ["card", "cheque"]}, "payments")
    assert any("location_id" in p for p in problems) and any("access_token_env" in p for p in problems)
    assert any("delivery" in p for p in problems) and any("cheque" in p for p in problems)
    assert any("send" in p for p in problems)
    assert Square.check_options({"location_id": "L", "access_token_env": "X"}, "payments") == []


def test_create_makes_a_published_invoice_whose_order_totals_ours(sim, tmp_path):
    doc = square_doc()
    created = provider(sim, tmp_path).create_invoice(doc, "a" * 48)
    inv = sim.sim.invoices[created.external_id]
    order = sim.sim.orders[inv["order_id"]]
    assert order["total_money"] == {"amount": 25110, "currency": "USD"}
    assert order["total_discount_money"]["amount"] == 2750
    assert order["line_items"][-1]["total_discount_money"]["amount"] == 0  # the tax line takes no discount
    assert inv["status"] == "UNPAID" and inv["version"] == 1 and inv["invoice_number"] == "ACME-001001"
    assert inv["payment_requests"][0]["computed_amount_money"]["amount"] == 25110
    assert inv["payment_requests"][0]["due_date"] == "2026-12-02"
    assert created.url == inv["public_url"] and created.url.startswith(sim.url)
    assert requests.get(created.url, timeout=5).status_code == 200  # the pay link works
    assert created.number == "ACME-001001" and created.detail["status"] == "UNPAID"
    assert sim.sim.published == []  # SHARE_MANUALLY: Square sends nothing, our messages carry the link

    customer = sim.sim.customers[inv["primary_recipient"]["customer_id"]]
    assert customer["reference_id"] == "C-1" and customer["email_address"] == "huong@example.com"
    assert provider(sim, tmp_path).ctx.refs.get("customer", "C-1") == customer["id"]
    for r in [r for r in sim.sim.received if r.path.startswith("/v2/")]:
        assert r.headers["authorization"] == f"Bearer {TOKEN}" and r.headers["square-version"] == "2025-08-20"
    keys = [r.json().get("idempotency_key") for r in sim.sim.received if r.method == "POST"
            and not r.path.startswith("/v2/customers/search")]
    assert keys[1:] == ["a" * 48 + ":order", "a" * 48 + ":invoice", "a" * 48 + ":publish:0"]
    assert keys[0].startswith("invoicer:customer:")


def test_known_customer_reused_and_found_by_reference_or_email(sim, tmp_path):
    p = provider(sim, tmp_path)
    p.create_invoice(square_doc("ACME-001001"), "b" * 48)
    p.create_invoice(square_doc("ACME-001002", job_id="J-2"), "c" * 48)
    assert len(posts(sim, "/v2/customers")) == 1
    auth = {"Authorization": f"Bearer {TOKEN}"}
    theirs = requests.post(f"{sim.url}/v2/customers", json={"given_name": "Nine", "email_address": "NINE@example.com"},
                           headers=auth, timeout=5).json()["customer"]
    doc = square_doc("ACME-001009", job_id="J-9", customer={"id": "C-9", "email": "nine@example.com"})
    created = p.create_invoice(doc, "d" * 48)
    assert sim.sim.invoices[created.external_id]["primary_recipient"]["customer_id"] == theirs["id"]


def test_same_key_twice_returns_the_first_invoice(sim, tmp_path):
    p = provider(sim, tmp_path)
    first = p.create_invoice(square_doc(), "e" * 48)
    again = p.create_invoice(square_doc(), "e" * 48)
    assert again.external_id == first.external_id and again.url == first.url
    assert len(sim.sim.invoices) == 1 and len(sim.sim.orders) == 1


def test_dropped_invoice_create_is_found_and_published_not_duplicated(sim, tmp_path):
    doc, key = square_doc(), "f" * 48
    sim.sim.fault_on("POST", "/v2/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, key)
    (draft,) = sim.sim.invoices.values()
    assert draft["status"] == "DRAFT"
    found = provider(sim, tmp_path, attempt=2).find_invoice(doc, key)  # what the pipeline does on attempt 2
    assert found is not None and found.external_id == draft["id"] and found.url == draft["public_url"]
    assert draft["status"] == "UNPAID" and len(sim.sim.invoices) == 1 and len(sim.sim.orders) == 1


def test_an_order_is_made_once_even_when_squares_replay_window_has_passed(sim, tmp_path):
    doc, key = square_doc(), "g" * 48
    sim.sim.fault_on("POST", "/v2/invoices", "500")  # the order is made, the invoice is not
    with pytest.raises(Unavailable):
        provider(sim, tmp_path).create_invoice(doc, key)
    sim.sim.idempotency.clear()  # Square forgot the keys: only our refs remember the order
    created = provider(sim, tmp_path, attempt=2).create_invoice(doc, key)
    assert len(sim.sim.orders) == 1 and len(sim.sim.invoices) == 1
    assert sim.sim.invoices[created.external_id]["order_id"] in sim.sim.orders


def test_dropped_publish_then_retry_publishes_once(sim, tmp_path):
    doc, key = square_doc(), "h" * 48
    sim.sim.fault_on("POST", r"/v2/invoices/[^/]+/publish", "drop")
    with pytest.raises(OutcomeUnknown):
        provider(sim, tmp_path).create_invoice(doc, key)
    (inv,) = sim.sim.invoices.values()
    assert inv["status"] == "UNPAID"  # it was published; only the answer was lost
    created = provider(sim, tmp_path, attempt=2).create_invoice(doc, key)  # every step replays
    assert created.external_id == inv["id"] and created.url == inv["public_url"] and len(sim.sim.invoices) == 1


def test_publish_after_a_version_change_uses_the_new_version(sim, tmp_path):
    doc, key = square_doc(), "i" * 48
    sim.sim.fault_on("POST", r"/v2/invoices/[^/]+/publish", "500")
    with pytest.raises(Unavailable):
        provider(sim, tmp_path).create_invoice(doc, key)
    (inv,) = sim.sim.invoices.values()
    inv["version"] = 3  # someone edited the draft in the Square dashboard
    found = provider(sim, tmp_path, attempt=2).find_invoice(doc, key)
    assert found.detail["status"] == "UNPAID" and inv["version"] == 4


def test_find_returns_none_when_nothing_was_made(sim, tmp_path):
    assert provider(sim, tmp_path, attempt=2).find_invoice(square_doc(), "j" * 48) is None


def test_rate_limited_body_is_rate_limited(sim, tmp_path):
    sim.sim.inject("429")
    with pytest.raises(RateLimited) as err:
        provider(sim, tmp_path).payment_status("inv:0-x")
    assert "RATE_LIMITED" in str(err.value) and err.value.retry_after is None
    sim.sim.fail_with(400, "RATE_LIMITED", "Too many", category="RATE_LIMIT_ERROR")  # whatever the status
    with pytest.raises(RateLimited):
        provider(sim, tmp_path).payment_status("inv:0-x")


def test_simulator_enforces_its_rate_with_squares_body(sim):
    sim.sim.clock = lambda: 1_800_000_000.0
    auth = {"Authorization": f"Bearer {TOKEN}"}
    answers = [requests.get(f"{sim.url}/v2/invoices/none", headers=auth, timeout=5) for _ in range(21)]
    assert [a.status_code for a in answers[:20]] == [404] * 20 and answers[20].status_code == 429
    assert answers[20].json() == {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED",
                                              "detail": "Rate limit exceeded. Please retry later."}]}


def test_auth_and_configuration_failures(sim, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUARE_TOKEN", "EAAAwrong")
    with pytest.raises(AuthFailed, match="UNAUTHORIZED"):
        provider(sim, tmp_path).create_invoice(square_doc(), "l" * 48)
    monkeypatch.delenv("SQUARE_TOKEN")
    with pytest.raises(AuthFailed, match="SQUARE_TOKEN"):
        provider(sim, tmp_path).create_invoice(square_doc(), "l" * 48)
    with pytest.raises(MappingMissing, match="location_id"):
        provider(sim, tmp_path, location_id=None).create_invoice(square_doc(), "l" * 48)
    assert not sim.sim.invoices


def test_square_refusals_are_rejected(sim, tmp_path):
    p = provider(sim, tmp_path)
    p.create_invoice(square_doc(), "m" * 48)
    with pytest.raises(Rejected, match="already used"):  # our number again under another key
        p.create_invoice(square_doc(job_id="J-2"), "n" * 48)
    with pytest.raises(Rejected, match="IDEMPOTENCY_KEY_REUSED"):
        p.create_invoice(square_doc("ACME-001003", summary="Other work."), "m" * 48)
    sim.sim.currency = "CAD"
    with pytest.raises(Rejected, match="CURRENCY_MISMATCH"):
        p.create_invoice(square_doc("ACME-001004", job_id="J-4"), "o" * 48)


def test_a_total_that_differs_on_square_is_rejected_before_any_invoice(sim, tmp_path):
    p = provider(sim, tmp_path)
    p.ctx.refs.put("customer", "C-1", requests.post(
        f"{sim.url}/v2/customers", json={"given_name": "H"}, headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5).json()["customer"]["id"])
    order = requests.post(f"{sim.url}/v2/orders", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5, json={
        "order": {"location_id": LOCATION, "line_items": [{"name": "By hand", "quantity": "1",
                                                           "base_price_money": {"amount": 100, "currency": "USD"}}]}})
    p.ctx.refs.put("order", "p" * 48, order.json()["order"]["id"])
    with pytest.raises(Rejected, match="totals 100 USD on Square but 25110"):
        p.create_invoice(square_doc(), "p" * 48)
    assert not sim.sim.invoices


def test_email_delivery_is_sent_by_square_on_publish(sim, tmp_path):
    created = provider(sim, tmp_path, delivery="email").create_invoice(square_doc(), "q" * 48)
    assert sim.sim.published == [created.external_id] and created.detail["delivery_method"] == "EMAIL"


def test_payment_status_partial_then_paid(sim, tmp_path):
    p = provider(sim, tmp_path)
    created = p.create_invoice(square_doc(), "r" * 48)
    assert p.payment_status(created.external_id) == type(p.payment_status(created.external_id))(
        Decimal("0.00"), Decimal("251.10"), False)
    sim.sim.pay(created.external_id, "https://x/hook", amount=10000)
    s = p.payment_status(created.external_id)
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("100.00"), Decimal("151.10"), False)
    sim.sim.pay(created.external_id, "https://x/hook")
    s = p.payment_status(created.external_id)
    assert (s.amount_paid, s.amount_due, s.paid) == (Decimal("251.10"), Decimal("0.00"), True)


def test_zero_decimal_currency_end_to_end(sim, tmp_path):
    sim.sim.currency = "JPY"
    doc = square_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8000",
                                             "taxable": True}],
                     materials=[], fees=[], discounts=[], tax={"rate": "0.10", "jurisdiction": "JP"})
    created = provider(sim, tmp_path).create_invoice(doc, "s" * 48)
    order = sim.sim.orders[sim.sim.invoices[created.external_id]["order_id"]]
    assert order["total_money"] == {"amount": 13200, "currency": "JPY"}


def test_kwd_is_refused_before_any_request(sim, tmp_path):
    doc = square_doc(currency="KWD", labor=[], materials=[], discounts=[],
                     fees=[{"description": "Visit", "amount": "10.005", "taxable": False}])
    with pytest.raises(Rejected, match="KWD"):
        provider(sim, tmp_path).check_invoice(doc)
    with pytest.raises(Rejected, match="KWD"):
        provider(sim, tmp_path).create_invoice(doc, "t" * 48)
    assert sim.sim.received == []
