"""The Xero adapter over real HTTP against XeroSimulator, with real PostgreSQL (credentials, refs) and
Redis (rate limiter); assertions on Xero's side (what the simulator stored)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

import pytest
import requests
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.simulate import Running
from invoicer.providers.xero.simulator import XeroSimulator
from tests.conftest import wait_for
from tests.providers.xero import ORG_ACCOUNTS, ORG_TAX_RATES, TENANT_ID, make_doc, options

Xero = registry.get("xero")
KEY = "k" * 48


@pytest.fixture(scope="module")
def running():
    with Running(XeroSimulator((TENANT_ID,), accounts=set(ORG_ACCOUNTS), tax_rates=dict(ORG_TAX_RATES))) as r:
        yield r


@pytest.fixture
def sim_only(running):
    running.sim.reset()  # one server for the module (stopping one takes half a second), fresh state per test
    return SimpleNamespace(sim=running.sim, url=running.url)


@pytest.fixture
def xero(clean, sim_only, tmp_path, monkeypatch):
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("INVOICER_XERO_CLIENT_ID", sim_only.sim.client_id)
    monkeypatch.setenv("INVOICER_XERO_CLIENT_SECRET", sim_only.sim.client_secret)
    ctx = make_ctx(tmp_path)
    ctx.credentials.put(sim_only.sim.grant())

    def provider(attempt: int = 1, **extra):
        return Xero(options(sim_only.url, **extra), make_ctx(tmp_path, attempt))

    return SimpleNamespace(sim=sim_only.sim, url=sim_only.url, ctx=ctx, provider=provider,
                           org=sim_only.sim.org(TENANT_ID))


def make_ctx(tmp_path, attempt: int = 1) -> Ctx:
    return Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="books")


def api_calls(sim, method=None, suffix=""):
    return [r for r in sim.received if r.path.startswith("/api.xro/") and (method is None or r.method == method)
            and r.path.endswith(suffix)]


# ---------------------------------------------------------------- create

def test_create_makes_an_authorised_invoice_with_our_total(xero):
    doc = make_doc()
    created = xero.provider().create_invoice(doc, KEY)
    [stored] = xero.org.invoices.values()
    assert created.external_id == stored["InvoiceID"] and created.number == stored["InvoiceNumber"] == "INV-0001"
    assert stored["Total"] == doc["total"] == Decimal("251.10") and stored["TotalTax"] == Decimal("3.60")
    assert stored["Status"] == "AUTHORISED" and stored["Reference"] == doc["number"]
    assert created.url.endswith(stored["InvoiceID"]) and created.detail["total"] == "251.10"
    put = api_calls(xero.sim, "PUT", "/Invoices")[0]
    assert put.headers["idempotency-key"] == KEY and put.headers["xero-tenant-id"] == TENANT_ID
    assert put.headers["authorization"].startswith("Bearer ") and put.headers["accept"] == "application/json"
    assert b"." in put.body and b"e+" not in put.body.lower()  # money as exact decimal numbers


def test_unknown_customer_is_created_as_a_contact_and_remembered(xero):
    xero.provider().create_invoice(make_doc(), KEY)
    [contact] = xero.org.contacts.values()
    assert contact["ContactNumber"] == "C-1" and contact["EmailAddress"] == "huong@example.com"
    assert contact["Name"] == "Nguyễn Thị Hương" and contact["Phones"][0]["PhoneNumber"] == "+14075550100"
    assert xero.ctx.refs.get("contact", "C-1") == contact["ContactID"]
    [stored] = xero.org.invoices.values()
    assert stored["Contact"]["ContactID"] == contact["ContactID"]
    xero.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)
    assert len(api_calls(xero.sim, "GET", "/Contacts")) == 1 and len(api_calls(xero.sim, "PUT", "/Contacts")) == 1
    assert len(xero.org.invoices) == 2


def test_existing_contact_is_found_by_email(xero):
    existing = xero.sim.add_contact(TENANT_ID, Name="Huong Nguyen", EmailAddress="HUONG@example.com")
    xero.provider().create_invoice(make_doc(), KEY)
    assert api_calls(xero.sim, "PUT", "/Contacts") == []
    assert next(iter(xero.org.invoices.values()))["Contact"]["ContactID"] == existing["ContactID"]


def test_name_taken_by_another_contact_gets_our_id_added(xero):
    xero.sim.add_contact(TENANT_ID, Name="Nguyễn Thị Hương", EmailAddress="someone.else@example.com")
    xero.provider().create_invoice(make_doc(), KEY)
    names = sorted(c["Name"] for c in xero.org.contacts.values())
    assert names == ["Nguyễn Thị Hương", "Nguyễn Thị Hương (C-1)"]


def test_contact_made_by_a_concurrent_worker_is_used_not_duplicated(xero, monkeypatch):
    """Another worker makes our customer between our lookup and our create: Xero refuses the second
    contact, and the invoice goes to the one the other worker made."""
    provider = xero.provider()
    real_request = provider._request
    other = []

    def request(method, path, **kw):
        resp = real_request(method, path, **kw)
        if (method, path) == ("GET", "/Contacts") and not other:
            other.append(xero.sim.add_contact(TENANT_ID, Name="Nguyễn Thị Hương", ContactNumber="C-1"))
        return resp

    monkeypatch.setattr(provider, "_request", request)
    provider.create_invoice(make_doc(), KEY)
    assert len(xero.org.contacts) == 1
    assert next(iter(xero.org.invoices.values()))["Contact"]["ContactID"] == other[0]["ContactID"]
    assert xero.ctx.refs.get("contact", "C-1") == other[0]["ContactID"]


def test_check_options_lists_what_is_missing():
    assert Xero.check_options(options(), "books") == []
    problems = Xero.check_options({"provider": "xero", "accounts": {"labor": "200"}}, "books")
    assert "platforms.books.tenant_id: the Xero organisation id is not set" in problems
    assert "platforms.books.accounts.material is not set" in problems
    assert "platforms.books.tax_types.exempt is not set" in problems


def test_create_invoices_batches_50_in_one_request(xero):
    docs = [make_doc(number=f"ACME-{2000 + i}", job_id=f"J-{i}") for i in range(50)]
    keys = [f"key-{i:03d}" for i in range(50)]
    created = xero.provider().create_invoices(docs, keys)
    puts = api_calls(xero.sim, "PUT", "/Invoices")
    assert len(puts) == 1 and xero.org.creates == 1 and len(xero.org.invoices) == 50
    assert len(puts[0].json()["Invoices"]) == 50
    assert [c.external_id for c in created] == list(xero.org.invoices)
    assert [xero.org.invoices[c.external_id]["Reference"] for c in created] == [d["number"] for d in docs]
    assert all(i["Total"] == Decimal("251.10") for i in xero.org.invoices.values())
    assert len(api_calls(xero.sim, "PUT", "/Contacts")) == 1  # one customer, one contact


def test_new_customers_cost_one_lookup_per_25_and_one_create_per_50(xero):
    """60 invoices for 60 customers, 3 of whom Xero already has and one whose name another contact
    holds: 3 lookups, 2 contact creates (50 + 7; the name clash is sorted out alone), 2 invoice
    creates; every invoice on its own customer's contact."""
    known = [xero.sim.add_contact(TENANT_ID, Name=f"Known {i}", ContactNumber=f"C-{i}") for i in range(3)]
    xero.sim.add_contact(TENANT_ID, Name="Customer 7", ContactNumber="someone-else")
    docs = [make_doc(number=f"ACME-{3000 + i}", job_id=f"J-{i}",
                     customer={"id": f"C-{i}", "name": f"Customer {i}", "email": f"c{i}@example.com"})
            for i in range(60)]
    created = xero.provider().create_invoices(docs, [f"key-{i:03d}" for i in range(60)])
    assert all(not isinstance(c, Exception) for c in created)
    # the clash alone: look up, create (refused: the name), look up again, create with our id added
    assert len(api_calls(xero.sim, "GET", "/Contacts")) == 3 + 2
    puts = api_calls(xero.sim, "PUT", "/Contacts")
    assert [len(r.json()["Contacts"]) for r in puts] == [50, 1, 1, 7]
    assert len(api_calls(xero.sim, "PUT", "/Invoices")) == 2
    by_number = {c["ContactNumber"]: c for c in xero.org.contacts.values()}
    assert len(by_number) == 61 and by_number["C-7"]["Name"] == "Customer 7 (C-7)"
    for doc, c in zip(docs, created):
        contact_id = xero.org.invoices[c.external_id]["Contact"]["ContactID"]
        assert contact_id == by_number[doc["customer"]["id"]]["ContactID"]
    assert {by_number[f"C-{i}"]["ContactID"] for i in range(3)} == {k["ContactID"] for k in known}


def test_an_invoice_xero_refuses_does_not_sink_its_batch(xero):
    """Xero refuses one invoice of a batch (its contact was archived meanwhile): the others are made in
    the same call, and the refused one comes back as its own Rejected."""
    docs = [make_doc(number=f"ACME-{4000 + i}", job_id=f"J-{i}", customer={"id": f"C-{i}", "name": f"N {i}"})
            for i in range(5)]
    provider = xero.provider()
    gone = xero.sim.add_contact(TENANT_ID, Name="Archived", ContactNumber="C-2")
    xero.ctx.refs.put("contact", "C-2", "00000000-0000-0000-0000-00000000dead")  # a contact Xero no longer has
    created = provider.create_invoices(docs, [f"key-{i}" for i in range(5)])
    assert len(api_calls(xero.sim, "PUT", "/Invoices")) == 1
    assert isinstance(created[2], Rejected) and "could not be found" in str(created[2])
    assert [isinstance(c, Exception) for c in created] == [False, False, True, False, False]
    assert sorted(i["Reference"] for i in xero.org.invoices.values()) == ["ACME-4000", "ACME-4001", "ACME-4003",
                                                                          "ACME-4004"]
    assert gone["ContactID"] not in {i["Contact"]["ContactID"] for i in xero.org.invoices.values()}


# ---------------------------------------------------------------- idempotency and retries

def test_same_key_replays_the_first_invoice(xero):
    doc = make_doc()
    first = xero.provider().create_invoice(doc, KEY)
    again = xero.provider(attempt=2).create_invoice(doc, KEY)
    assert again.external_id == first.external_id and len(xero.org.invoices) == 1


def test_same_key_with_a_different_invoice_is_refused(xero):
    xero.provider().create_invoice(make_doc(), KEY)
    with pytest.raises(Rejected, match="different request"):
        xero.provider().create_invoice(make_doc(number="ACME-9999", job_id="J-9"), KEY)
    assert len(xero.org.invoices) == 1


def test_dropped_connection_then_lookup_before_retry_creates_nothing_twice(xero):
    doc = make_doc()
    contact = xero.sim.add_contact(TENANT_ID, Name="Huong", ContactNumber="C-1")
    xero.ctx.refs.put("contact", "C-1", contact["ContactID"])
    xero.sim.inject("drop")  # Xero stores the invoice, the answer never arrives
    with pytest.raises(OutcomeUnknown):
        xero.provider().create_invoice(doc, KEY)
    assert len(xero.org.invoices) == 1
    retry = xero.provider(attempt=2)  # what pipeline._invoice does on attempt 2: look first
    found = retry.find_invoice(doc, KEY)
    assert found is not None and found.external_id == next(iter(xero.org.invoices))
    assert len(api_calls(xero.sim, "PUT", "/Invoices")) == 1 and len(xero.org.invoices) == 1


def test_lookup_finds_nothing_when_nothing_was_made(xero):
    assert xero.provider(attempt=2).find_invoice(make_doc(), KEY) is None


def test_lookup_by_our_number_when_xero_uses_it(xero):
    doc = make_doc()
    made = xero.provider(use_our_number=True).create_invoice(doc, KEY)
    assert made.number == doc["number"]
    found = xero.provider(attempt=2, use_our_number=True).find_invoice(doc, KEY)
    assert found.external_id == made.external_id
    assert api_calls(xero.sim, "GET", "/Invoices")[-1].query["InvoiceNumbers"] == [doc["number"]]


def test_429_raises_rate_limited_with_retry_after(xero):
    contact = xero.sim.add_contact(TENANT_ID, Name="Huong", ContactNumber="C-1")
    xero.ctx.refs.put("contact", "C-1", contact["ContactID"])
    xero.sim.inject("429")
    with pytest.raises(RateLimited) as caught:
        xero.provider().create_invoice(make_doc(), KEY)
    assert caught.value.retry_after == 7 and "minute limit" in str(caught.value)
    assert xero.org.invoices == {}


def test_5xx_raises_unavailable_and_a_retry_succeeds(xero):
    contact = xero.sim.add_contact(TENANT_ID, Name="Huong", ContactNumber="C-1")
    xero.ctx.refs.put("contact", "C-1", contact["ContactID"])
    xero.sim.inject("500")
    with pytest.raises(Unavailable) as caught:
        xero.provider().create_invoice(make_doc(), KEY)
    assert not isinstance(caught.value, (RateLimited, OutcomeUnknown)) and caught.value.status == 503
    created = xero.provider(attempt=2).create_invoice(make_doc(), KEY)
    assert list(xero.org.invoices) == [created.external_id]


def test_pipeline_invoice_step_creates_sends_and_on_retry_finds(xero, tmp_path):
    """invoicer.pipeline._invoice, as a worker runs it: attempt 1 creates (and sends); a lost answer on the
    send makes attempt 2 look the invoice up, find it already sent, and create nothing."""
    from invoicer.config import Tenant
    from invoicer.pipeline import _invoice

    tenant = Tenant.model_validate({"name": "Acme", "sources": {}, "platforms": {
        "books": options(xero.url, send=True)}})
    row = SimpleNamespace(target="books", provider="xero", idempotency_key=KEY)
    doc = make_doc()
    xero.sim.inject(*[None] * 3, "drop")  # GET Contacts, PUT Contacts, PUT Invoices answer; the email's is lost
    with pytest.raises(OutcomeUnknown):
        _invoice(row, doc, tenant, make_ctx(tmp_path, 1))
    result = _invoice(row, doc, tenant, make_ctx(tmp_path, 2))
    assert result["detail"]["found_existing"] is True and result["external_id"] in xero.org.invoices
    assert len(xero.org.invoices) == 1 and xero.org.emails == [result["external_id"]]
    assert len(api_calls(xero.sim, "POST", "/Email")) == 1


# ---------------------------------------------------------------- OAuth 2 with rotating refresh tokens

def test_401_refreshes_once_and_stores_the_rotated_refresh_token(xero):
    before = xero.ctx.credentials.get()
    xero.sim.advance(31 * 60)  # Xero's 30-minute access token has expired, our clock has not noticed
    created = xero.provider().create_invoice(make_doc(), KEY)
    after = xero.ctx.credentials.get()
    assert after["refresh_token"] == xero.sim.latest_refresh != before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    assert len([r for r in xero.sim.received if r.path == "/connect/token"]) == 1
    assert list(xero.org.invoices) == [created.external_id]
    # the old refresh token dies once Xero's grace period is over: the rotated one had to be stored
    xero.sim.advance(31 * 60)
    old = requests.post(f"{xero.url}/connect/token", auth=(xero.sim.client_id, xero.sim.client_secret),
                        data={"grant_type": "refresh_token", "refresh_token": before["refresh_token"]}, timeout=5)
    assert old.status_code == 400 and old.json() == {"error": "invalid_grant"}


def test_token_about_to_expire_is_renewed_before_the_call(xero):
    stale = {**xero.ctx.credentials.get(), "expires_at": 0}
    xero.ctx.credentials.put(stale)
    xero.provider().create_invoice(make_doc(), KEY)
    token_calls = [i for i, r in enumerate(xero.sim.received) if r.path == "/connect/token"]
    assert token_calls == [0]  # renewed first, so no call was refused
    assert xero.ctx.credentials.get()["refresh_token"] == xero.sim.latest_refresh


def test_refresh_token_used_after_the_grace_period_is_auth_failed(xero):
    old = xero.ctx.credentials.get()
    requests.post(f"{xero.url}/connect/token", auth=(xero.sim.client_id, xero.sim.client_secret),
                  data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}, timeout=5)
    xero.sim.advance(31 * 60)  # someone else rotated it half an hour ago
    xero.ctx.credentials.put({**old, "expires_at": 0})
    with pytest.raises(AuthFailed, match="invalid_grant"):
        xero.provider().create_invoice(make_doc(), KEY)
    assert xero.org.invoices == {} and api_calls(xero.sim) == []


def test_no_stored_credentials_is_auth_failed(xero):
    with db.engine().begin() as conn:
        conn.execute(db.credentials.delete())
    with pytest.raises(AuthFailed, match="invoicer credentials set acme-hvac books"):
        xero.provider().create_invoice(make_doc(), KEY)


# ---------------------------------------------------------------- refusals

def test_xero_validation_error_is_rejected_with_its_message(xero):
    with pytest.raises(Rejected, match="Account code '999' is not a valid code") as caught:
        xero.provider(accounts={"labor": "200", "material": "999", "fee": "270"}).create_invoice(make_doc(), KEY)
    assert xero.org.invoices == {}  # refused on its own (summarizeErrors=false): Xero made nothing


def test_missing_account_mapping_names_the_option_and_sends_nothing(xero):
    with pytest.raises(MappingMissing, match=r"platforms\.books\.accounts\.fee"):
        xero.provider(accounts={"labor": "200", "material": "260"}).create_invoice(make_doc(), KEY)
    assert xero.sim.received == []


def test_missing_tenant_id_names_the_option(xero):
    with pytest.raises(MappingMissing, match=r"platforms\.books\.tenant_id"):
        xero.provider(tenant_id="").create_invoice(make_doc(), KEY)


def test_a_different_xero_total_is_rejected_with_both_figures(xero):
    xero.sim.honour_tax_amount = False  # this organisation recomputes tax from the TaxType's rate
    xero.org.tax_rates["OUTPUT"] = Decimal("0.10")  # 10 % of 45.00 = 4.50, not our 3.60
    with pytest.raises(Rejected, match=r"252\.00 USD.*251\.10 USD"):
        xero.provider().create_invoice(make_doc(), KEY)


def test_duplicate_invoice_number_is_refused(xero):
    xero.provider(use_our_number=True).create_invoice(make_doc(), KEY)
    with pytest.raises(Rejected, match=r"Invoice # must be unique\."):
        xero.provider(use_our_number=True).create_invoice(make_doc(job_id="J-2"), "other-key")
    assert len(xero.org.invoices) == 1


# ---------------------------------------------------------------- send and payment status

def test_send_emails_the_authorised_invoice_once(xero):
    doc = make_doc()
    created = xero.provider(send=True).create_invoice(doc, KEY)
    xero.provider(send=True).send_invoice(created, doc, KEY)
    assert xero.org.emails == [created.external_id]
    assert xero.org.invoices[created.external_id]["SentToContact"] is True
    email = api_calls(xero.sim, "POST", "/Email")[0]
    assert email.headers["idempotency-key"] == f"{KEY}:email" and email.json() == {}
    found = xero.provider(attempt=2, send=True).find_invoice(doc, KEY)
    xero.provider(attempt=2, send=True).send_invoice(found, doc, KEY)  # already sent: not again
    assert len(api_calls(xero.sim, "POST", "/Email")) == 1


def test_only_authorised_invoices_can_be_emailed(xero):
    doc = make_doc()
    created = xero.provider().create_invoice(doc, KEY)
    xero.sim.pay(created.external_id, doc["total"], TENANT_ID)
    with pytest.raises(Rejected, match="AUTHORISED"):
        xero.provider().send_invoice(created, doc, KEY)


def test_payment_status_follows_xero(xero):
    doc = make_doc()
    created = xero.provider().create_invoice(doc, KEY)
    status = xero.provider().payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("0.00"), Decimal("251.10"), False)
    xero.sim.pay(created.external_id, Decimal("100.00"), TENANT_ID)
    status = xero.provider().payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("100.00"), Decimal("151.10"), False)
    xero.sim.pay(created.external_id, Decimal("151.10"), TENANT_ID)
    assert xero.provider().payment_status(created.external_id).paid


# ---------------------------------------------------------------- the simulator's limits and auth

def _get(sim_only, token, **headers):
    return requests.get(f"{sim_only.url}/api.xro/2.0/Contacts", timeout=5, headers={
        "Authorization": f"Bearer {token}", "xero-tenant-id": TENANT_ID, "Accept": "application/json", **headers})


def test_simulator_minute_limit(sim_only):
    token = sim_only.sim.grant()["access_token"]
    answers = [_get(sim_only, token) for _ in range(60)]
    assert {a.status_code for a in answers} == {200}
    assert answers[0].headers["X-MinLimit-Remaining"] == "59" and answers[-1].headers["X-MinLimit-Remaining"] == "0"
    over = _get(sim_only, token)
    assert over.status_code == 429 and over.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    sim_only.sim.advance(61)
    assert _get(sim_only, token).status_code == 200


def test_simulator_day_limit(sim_only):
    sim_only.sim.limits.day = 3
    token = sim_only.sim.grant()["access_token"]
    assert [_get(sim_only, token).status_code for _ in range(3)] == [200, 200, 200]
    over = _get(sim_only, token)
    assert over.status_code == 429 and over.headers["X-Rate-Limit-Problem"] == "day"
    assert 86000 < int(over.headers["Retry-After"]) <= 86400


def test_simulator_concurrent_limit(sim_only):
    sim = sim_only.sim
    token = sim.grant()["access_token"]
    sim.gate = threading.Event()
    with ThreadPoolExecutor(5) as pool:
        held = [pool.submit(_get, sim_only, token) for _ in range(5)]
        wait_for(lambda: sim.org(TENANT_ID).in_flight == 5, timeout=10, what="5 calls in flight")
        over = _get(sim_only, token)
        sim.gate.set()
        assert [f.result().status_code for f in held] == [200] * 5
    assert over.status_code == 429 and over.headers["X-Rate-Limit-Problem"] == "concurrent"


def test_simulator_auth_answers(sim_only):
    sim = sim_only.sim
    token = sim.grant()["access_token"]
    missing = requests.get(f"{sim_only.url}/api.xro/2.0/Contacts", headers={"xero-tenant-id": TENANT_ID}, timeout=5)
    assert missing.status_code == 401 and missing.json()["Title"] == "Unauthorized"
    assert _get(sim_only, token, **{"xero-tenant-id": "someone-else"}).status_code == 403
    sim.advance(30 * 60 + 1)
    expired = _get(sim_only, token)
    assert expired.status_code == 401 and expired.json()["Detail"].startswith("TokenExpired: token expired at")


def test_simulator_refresh_rotation_and_grace(sim_only):
    sim = sim_only.sim
    first = sim.grant()

    def refresh(token):
        return requests.post(f"{sim_only.url}/connect/token", auth=(sim.client_id, sim.client_secret),
                             data={"grant_type": "refresh_token", "refresh_token": token}, timeout=5)

    second = refresh(first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and second["expires_in"] == 1800
    assert refresh(first["refresh_token"]).status_code == 200  # lost answer: the old one still works a while
    sim.advance(30 * 60)
    assert refresh(first["refresh_token"]).json() == {"error": "invalid_grant"}
    bad_client = requests.post(f"{sim_only.url}/connect/token", auth=("x", "y"), timeout=5,
                               data={"grant_type": "refresh_token", "refresh_token": sim.latest_refresh})
    assert bad_client.status_code == 400 and bad_client.json()["error"] == "invalid_client"


def test_simulator_runs_without_the_shared_spec(tmp_path, monkeypatch):
    from invoicer.providers.simulate import Request

    monkeypatch.setenv("INVOICER_XERO_SPEC", str(tmp_path / "absent.yaml"))
    sim = XeroSimulator((TENANT_ID,))
    assert sim.spec is None  # no spec, no schema validation: a read-only Total passes through
    body, refused = sim._body(Request("PUT", "/api.xro/2.0/Invoices", {}, {}, b'{"Invoices":[{"Total":1}]}'),
                              "Invoices")
    assert refused is None and body == {"Invoices": [{"Total": 1}]}


def test_simulator_refuses_keys_over_128_characters(sim_only):
    token = sim_only.sim.grant()["access_token"]
    answer = requests.put(f"{sim_only.url}/api.xro/2.0/Contacts", data=b'{"Contacts":[{"Name":"A"}]}', timeout=5,
                          headers={"Authorization": f"Bearer {token}", "xero-tenant-id": TENANT_ID,
                                   "Idempotency-Key": "x" * 129, "Content-Type": "application/json"})
    assert answer.status_code == 400 and sim_only.sim.org(TENANT_ID).contacts == {}
