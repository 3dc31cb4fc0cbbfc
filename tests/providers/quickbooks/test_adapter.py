"""The QuickBooks adapter over real HTTP against the simulator, with real PostgreSQL credentials and Redis limits."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
import requests
from cryptography.fernet import Fernet

from invoicer.providers import registry

try:  # registry.get/has import every provider package only while the registry is still empty, and importing
    registry.all_providers()  # the QuickBooks adapter below would fill it: load them all first
except ImportError:  # another package half-written: at least keep `local` (tests/tenants.yaml) registered
    import invoicer.providers.local.adapter  # noqa: F401
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.providers.quickbooks.adapter import QuickBooks, derived_key
from invoicer.providers.quickbooks.simulator import QuickBooksSimulator
from invoicer.providers.quickbooks.transform import display_name
from invoicer.providers.simulate import Running

from ...conftest import wait_for
from .. import corpus_docs
from . import OPTIONS, REALM

KEY = "k" * 48


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


@pytest.fixture
def sim():
    s = QuickBooksSimulator(realm_id=REALM)
    running = Running(s)
    s.url = running.url
    yield s
    threading.Thread(target=running.stop, daemon=True).start()  # serve_forever notices within 0.5 s; don't wait


@pytest.fixture
def ctx(clean, tmp_path, monkeypatch):
    import invoicer.db
    from invoicer.pipeline import Ctx

    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("INVOICER_QUICKBOOKS_CLIENT_ID", "sim-client-id")
    monkeypatch.setenv("INVOICER_QUICKBOOKS_CLIENT_SECRET", "sim-client-secret")
    return Ctx(engine=invoicer.db.engine(), var_dir=tmp_path, attempt=1, tenant="acme-hvac", platform="books")


def provider(sim, ctx, **options) -> QuickBooks:
    return QuickBooks({**OPTIONS, "base_url": sim.url, "token_url": f"{sim.url}/oauth2/v1/tokens/bearer",
                       **options}, ctx)


@pytest.fixture
def qb(sim, ctx):
    ctx.credentials.put(sim.issue_tokens())
    return provider(sim, ctx)


def known_customer(sim, ctx, doc) -> str:
    """The customer already exists on QuickBooks and invoicer remembers it: a create is then ONE request."""
    sim.customers["58"] = {"Id": "58", "DisplayName": doc["customer"]["name"]}
    return ctx.refs.put("customer", doc["customer"]["id"], "58")


# ---------------------------------------------------------------- create, find, idempotency

def test_create_lands_on_quickbooks_with_our_total(sim, ctx, qb, docs):
    doc = next(d for d in docs if d["discounts"] and d["tax"]["amount"])
    created = qb.create_invoice(doc, KEY)
    [invoice] = sim.invoices.values()
    assert created.external_id == invoice["Id"] and created.number == doc["number"] == invoice["DocNumber"]
    assert invoice["TotalAmt"] == invoice["Balance"] == doc["total"]
    assert created.detail["total"] == str(doc["total"])
    [post] = sim.api_requests("/invoice", "POST")
    assert post.query["requestid"] == [KEY] and post.query["minorversion"] == ["75"]
    assert post.headers["authorization"].startswith("Bearer ") and post.headers["content-type"] == "application/json"
    # the customer was looked up (email, then name), created once, and remembered
    [customer] = sim.customers.values()
    assert customer["PrimaryEmailAddr"]["Address"] == doc["customer"]["email"]
    assert invoice["CustomerRef"]["value"] == customer["Id"] == ctx.refs.get("customer", doc["customer"]["id"])
    queries = [r.query["query"][0] for r in sim.api_requests("/query")]
    assert queries == [f"select * from Customer where PrimaryEmailAddr = '{doc['customer']['email']}'",
                       f"select * from Customer where DisplayName = '{doc['customer']['name']}'"]


def test_a_known_customer_is_not_looked_up_again(sim, ctx, qb, docs):
    qb.create_invoice(docs[0], KEY)
    before = len(sim.api_requests("/query"))
    qb.create_invoice({**docs[0], "number": "INV-900001"}, "k2" * 24)
    assert len(sim.api_requests("/query")) == before and len(sim.customers) == 1 and len(sim.invoices) == 2


def test_a_customer_is_found_by_email(sim, ctx, qb, docs):
    doc = docs[1]
    sim.customers["77"] = {"Id": "77", "DisplayName": "Someone Else",
                           "PrimaryEmailAddr": {"Address": doc["customer"]["email"].upper()}}
    qb.create_invoice(doc, KEY)
    assert list(sim.customers) == ["77"] and ctx.refs.get("customer", doc["customer"]["id"]) == "77"


def test_a_namesake_with_another_email_gets_a_distinct_display_name(sim, ctx, qb, docs):
    doc = next(d for d in docs if "'" in d["customer"]["name"])  # the query literal needs its quote escaped
    sim.customers["77"] = {"Id": "77", "DisplayName": doc["customer"]["name"],
                           "PrimaryEmailAddr": {"Address": "other@example.com"}}
    qb.create_invoice(doc, KEY)
    new = [c for c in sim.customers.values() if c["Id"] != "77"]
    assert [c["DisplayName"] for c in new] == [f'{doc["customer"]["name"]} ({doc["customer"]["id"]})']


def test_a_namesake_made_between_our_look_up_and_our_create_is_not_a_dead_letter(sim, ctx, qb, docs):
    """Two workers, two customers of one name (jobs-300.jsonl has many): both look the name up, find
    nothing, and create. QuickBooks refuses the second DisplayName (6240); the customer must then be
    sorted out as a namesake, not the invoice dead-lettered (found by tests/fault)."""
    doc = next(d for d in docs if d["customer"].get("email"))
    name = doc["customer"]["name"]
    answer = sim.handle

    def namesake_arrives(request):  # the other worker's create lands right after our name look-up
        reply = answer(request)
        if request.path.endswith("/query") and "DisplayName" in str(request.query) and "77" not in sim.customers:
            sim.customers["77"] = {"Id": "77", "DisplayName": name, "PrimaryEmailAddr": {"Address": "other@example.com"}}
        return reply

    sim.handle = namesake_arrives
    created = qb.create_invoice(doc, KEY)
    [invoice] = sim.invoices.values()
    mine = ctx.refs.get("customer", doc["customer"]["id"])
    assert created.external_id == invoice["Id"] and invoice["CustomerRef"]["value"] == mine != "77"
    assert sim.customers[mine]["DisplayName"] == f'{name} ({doc["customer"]["id"]})'


def test_the_same_key_returns_the_first_invoice(sim, ctx, qb, docs):
    first = qb.create_invoice(docs[2], KEY)
    again = qb.create_invoice(docs[2], KEY)
    assert again == first and len(sim.invoices) == 1 and sim.replayed == 1


def test_lookup_before_retry_after_a_dropped_connection_creates_nothing_twice(sim, ctx, qb, docs):
    doc = docs[3]
    known_customer(sim, ctx, doc)
    sim.inject("drop")  # QuickBooks creates the invoice, the answer never arrives
    with pytest.raises(OutcomeUnknown):
        qb.create_invoice(doc, KEY)
    assert len(sim.invoices) == 1
    ctx.attempt = 2  # what the pipeline does next: find first, create only if absent
    found = qb.find_invoice(doc, KEY)
    assert found is not None and found.external_id == next(iter(sim.invoices))
    assert qb.create_invoice(doc, KEY) == found  # even a blind re-create is replayed by requestid
    assert len(sim.invoices) == 1


def test_find_returns_none_when_absent(sim, ctx, qb, docs):
    assert qb.find_invoice(docs[4], KEY) is None


def test_a_taken_number_resolves_to_our_invoice_or_is_refused(sim, ctx, qb, docs):
    doc = docs[5]
    first = qb.create_invoice(doc, KEY)
    assert qb.create_invoice(doc, "other-key") == first and len(sim.invoices) == 1  # 6140 -> it is ours
    stranger = {**doc, "number": "INV-777777"}
    sim.invoices["999"] = {"Id": "999", "DocNumber": "INV-777777", "PrivateNote": "typed by hand",
                           "TotalAmt": doc["total"]}
    with pytest.raises(Rejected, match="did not create"):
        qb.create_invoice(stranger, "third-key")


def test_a_different_platform_total_is_rejected_with_both_figures(sim, ctx, qb, docs):
    doc = next(d for d in docs if d["tax"]["amount"])
    sim.ignore_tax_override = True  # QuickBooks computing its own tax (0 here) instead of taking ours
    with pytest.raises(Rejected) as caught:
        qb.create_invoice(doc, KEY)
    [invoice] = sim.invoices.values()
    assert str(invoice["TotalAmt"]) in str(caught.value) and str(doc["total"]) in str(caught.value)


# ---------------------------------------------------------------- errors

def test_quickbooks_429_is_rate_limited_with_the_documented_wait(sim, ctx, qb, docs):
    doc = docs[6]
    known_customer(sim, ctx, doc)
    sim.inject("429")
    with pytest.raises(RateLimited) as caught:
        qb.create_invoice(doc, KEY)
    assert caught.value.retry_after == 60.0  # Intuit: no Retry-After; "wait 60 seconds"
    assert "ThrottleExceeded" in str(caught.value) and "[3001]" in str(caught.value)
    assert not sim.invoices


def test_a_retry_after_header_is_honoured(sim, ctx, qb, docs):
    doc = docs[6]
    known_customer(sim, ctx, doc)
    sim.retry_after = "7"
    sim.inject("429")
    with pytest.raises(RateLimited) as caught:
        qb.create_invoice(doc, KEY)
    assert caught.value.retry_after == 7.0
    assert qb.create_invoice(doc, KEY).number == doc["number"]


def test_5xx_is_unavailable_and_a_retry_succeeds(sim, ctx, qb, docs):
    doc = docs[7]
    known_customer(sim, ctx, doc)
    sim.inject("500")
    with pytest.raises(Unavailable) as caught:
        qb.create_invoice(doc, KEY)
    assert caught.value.retryable and not sim.invoices
    ctx.attempt = 2
    assert qb.find_invoice(doc, KEY) is None
    assert qb.create_invoice(doc, KEY).number == doc["number"] and len(sim.invoices) == 1


def test_a_permanent_400_is_rejected(sim, ctx, docs):
    ctx.credentials.put(sim.issue_tokens())
    qb = provider(sim, ctx, items={"labor": "1", "material": "999", "fee": "3"})  # no item 999 there
    doc = next(d for d in docs if any(l["kind"] == "material" for l in d["lines"]))
    with pytest.raises(Rejected) as caught:
        qb.create_invoice(doc, KEY)
    assert caught.value.status == 400 and "[2500] Invalid Reference Id" in str(caught.value)
    assert not caught.value.retryable and not sim.invoices


def test_a_missing_mapping_fails_before_any_request(sim, ctx, docs):
    ctx.credentials.put(sim.issue_tokens())
    doc = next(d for d in docs if any(l["kind"] == "labor" for l in d["lines"]))
    with pytest.raises(MappingMissing, match=r"platforms\.books\.items\.labor"):
        provider(sim, ctx, items={"material": "2", "fee": "3"}).create_invoice(doc, KEY)
    with pytest.raises(MappingMissing, match=r"platforms\.books\.realm_id"):
        provider(sim, ctx, realm_id=None).create_invoice(doc, KEY)
    assert sim.received == []


# ---------------------------------------------------------------- OAuth 2 with a rotating refresh token

def test_401_renews_the_token_retries_once_and_stores_the_rotated_refresh_token(sim, ctx, qb, docs):
    old = ctx.credentials.get()
    sim.expire_access_tokens()  # QuickBooks says 401 although our clock says the token is still good
    created = qb.create_invoice(docs[8], KEY)
    assert created.number == docs[8]["number"] and sim.token_refreshes == 1
    new = ctx.credentials.get()
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["expires_at"] > time.time() + 3000
    assert len([r for r in sim.received if r.path.endswith("/tokens/bearer")]) == 1
    # the old refresh token is dead at Intuit: only the stored (rotated) one works
    dead = requests.post(f"{sim.url}/oauth2/v1/tokens/bearer", auth=("sim-client-id", "sim-client-secret"),
                         data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
    assert dead.status_code == 400 and dead.json() == {"error": "invalid_grant"}
    token_call = [r for r in sim.received if r.path.endswith("/tokens/bearer")][0]
    assert token_call.headers["authorization"].startswith("Basic ")
    assert token_call.form()["grant_type"] == ["refresh_token"]


def test_an_expired_stored_token_is_renewed_before_the_call(sim, ctx, docs):
    tokens = sim.issue_tokens()
    ctx.credentials.put({**tokens, "expires_at": time.time() - 5})
    provider(sim, ctx).create_invoice(docs[9], KEY)
    assert sim.token_refreshes == 1
    assert not any(r.headers.get("authorization") == f"Bearer {tokens['access_token']}"
                   for r in sim.api_requests())  # the stale one was never used
    assert ctx.credentials.get()["refresh_token"] != tokens["refresh_token"]


def test_a_refused_refresh_token_is_auth_failed(sim, ctx, docs):
    ctx.credentials.put({"access_token": "gone", "refresh_token": "revoked", "expires_at": 0})
    with pytest.raises(AuthFailed, match="invalid_grant"):
        provider(sim, ctx).create_invoice(docs[0], KEY)
    assert not sim.api_requests()


def test_no_stored_credentials_is_auth_failed(sim, ctx, docs):
    with pytest.raises(AuthFailed, match="invoicer credentials set acme-hvac books"):
        provider(sim, ctx).find_invoice(docs[0], KEY)


# ---------------------------------------------------------------- send and payment status

def test_send_emails_once(sim, ctx, qb, docs):
    doc = docs[10]
    created = qb.create_invoice(doc, KEY)
    qb.send_invoice(created, doc, KEY)
    qb.send_invoice(created, doc, KEY)  # a retry of the step: QuickBooks shows EmailSent, nothing is re-sent
    assert sim.sent == [(created.external_id, doc["customer"]["email"])]
    [send] = sim.api_requests("/send", "POST")
    assert send.query["sendTo"] == [doc["customer"]["email"]]
    assert send.query["requestid"] == [derived_key(KEY, "send")]
    assert send.headers["content-type"] == "application/octet-stream"
    assert sim.invoices[created.external_id]["EmailStatus"] == "EmailSent"


def test_no_email_anywhere_means_no_send(sim, ctx, qb, docs):
    doc = {**docs[12], "customer": {**docs[12]["customer"], "email": None}}
    created = qb.create_invoice(doc, KEY)
    qb.send_invoice(created, doc, KEY)
    assert sim.sent == [] and not sim.api_requests("/send")


def test_payment_status_follows_the_balance(sim, ctx, qb, docs):
    doc = docs[11]
    created = qb.create_invoice(doc, KEY)
    status = qb.payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("0"), doc["total"], False)
    sim.pay(created.external_id, Decimal("10.00"))
    status = qb.payment_status(created.external_id)
    assert (status.amount_paid, status.amount_due, status.paid) == (Decimal("10.00"), doc["total"] - 10, False)
    sim.pay(created.external_id, doc["total"])
    assert qb.payment_status(created.external_id).paid


def test_a_payment_leads_to_the_invoices_it_is_applied_to(sim, ctx, qb, docs, monkeypatch):
    created = qb.create_invoice(docs[11], KEY)
    payment = sim.receive_payment(created.external_id, Decimal("10.00"))
    assert qb.payment_invoices(payment) == [created.external_id] and qb.webhook_account() == REALM
    assert qb.payment_status(created.external_id).amount_paid == Decimal("10.00")
    with pytest.raises(Rejected, match="610"):
        qb.payment_invoices("999")  # deleted meanwhile (Object Not Found): the hourly poll asks again
    monkeypatch.delenv("INVOICER_QUICKBOOKS_WEBHOOK_TOKEN", raising=False)
    with pytest.raises(AuthFailed, match="INVOICER_QUICKBOOKS_WEBHOOK_TOKEN"):
        body, headers = sim.notification([("Payment", payment, "Create")])
        qb.parse_webhook(headers, body)


# ---------------------------------------------------------------- the simulator's own limits

def _get(sim, token, query="select * from Invoice"):
    return requests.get(f"{sim.url}/v3/company/{REALM}/query", params={"query": query},
                        headers={"Authorization": f"Bearer {token}"}, timeout=15)


def test_simulator_rejects_missing_and_expired_tokens(sim):
    anonymous = requests.get(f"{sim.url}/v3/company/{REALM}/query", params={"query": "select * from Invoice"})
    assert anonymous.status_code == 401
    assert anonymous.json()["Fault"]["type"] == "AuthenticationFault"
    assert anonymous.json()["Fault"]["Error"][0]["code"] == "3200"
    token = sim.issue_tokens()["access_token"]
    assert _get(sim, token).status_code == 200
    sim.expire_access_tokens()
    assert "Token expired" in _get(sim, token).json()["Fault"]["Error"][0]["Detail"]


def test_simulator_enforces_10_per_second_and_500_per_minute():
    now = [1000.0]
    sim = QuickBooksSimulator(realm_id=REALM, clock=lambda: now[0])
    assert (sim.per_minute, sim.per_second, sim.concurrency) == (500, 10, 10)
    with Running(sim) as running:
        sim.url = running.url
        token = sim.issue_tokens()["access_token"]
        assert [_get(sim, token).status_code for _ in range(11)] == [200] * 10 + [429]
        limited = _get(sim, token)
        assert "message=ThrottleExceeded; errorCode=003001; statusCode=429" in limited.text
        assert "Retry-After" not in limited.headers
        now[0] += 1.0
        assert _get(sim, token).status_code == 200
        sim.per_minute = 20  # the same rule at a size a test can reach quickly
        codes = []
        for _ in range(20):
            now[0] += 0.2  # 5 a second: under the per-second limit
            codes.append(_get(sim, token).status_code)
        assert codes.count(429) == 20 - 9 and codes[:9] == [200] * 9  # 11 earlier + 9 = 20 in the minute
        now[0] += 60
        assert _get(sim, token).status_code == 200


def test_simulator_enforces_10_concurrent_requests(sim):
    token = sim.issue_tokens()["access_token"]
    sim.gate = threading.Event()
    results = []
    threads = [threading.Thread(target=lambda: results.append(_get(sim, token).status_code)) for _ in range(10)]
    sim.per_second = 100  # only concurrency is under test here
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sim.in_flight == 10, timeout=10, what="10 requests in flight")
        assert _get(sim, token).status_code == 429
    finally:
        sim.gate.set()
        for t in threads:
            t.join(10)
    assert results == [200] * 10


def test_simulator_token_endpoint_checks_the_client(sim):
    tokens = sim.issue_tokens()
    bad = requests.post(f"{sim.url}/oauth2/v1/tokens/bearer", auth=("sim-client-id", "wrong"),
                        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
    good = requests.post(f"{sim.url}/oauth2/v1/tokens/bearer", auth=("sim-client-id", "sim-client-secret"),
                         data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    assert set(good) == {"token_type", "access_token", "expires_in", "refresh_token", "x_refresh_token_expires_in"}
    assert good["refresh_token"] != tokens["refresh_token"]


# ---------------------------------------------------------------- 6240 "Duplicate Name Exists"

def test_a_customer_created_by_someone_else_after_our_lookup_is_used(sim, ctx, qb, docs):
    """The race: our lookups (email, name) find nothing, another client creates the customer, our create
    answers 6240; the adapter looks the name up again and uses that customer instead of refusing."""
    doc = next(d for d in docs if "'" in d["customer"]["name"] and d["customer"].get("email"))

    def someone_else(body):
        sim.before_customer_create = None
        sim.customers["900"] = {"Id": "900", "DisplayName": body["DisplayName"],
                                "PrimaryEmailAddr": {"Address": doc["customer"]["email"]}}

    sim.before_customer_create = someone_else
    created = qb.create_invoice(doc, KEY)
    assert list(sim.customers) == ["900"] and ctx.refs.get("customer", doc["customer"]["id"]) == "900"
    assert sim.invoices[created.external_id]["CustomerRef"]["value"] == "900"
    creates = [r for r in sim.api_requests("/customer") if r.method == "POST"]
    assert len(creates) == 1  # refused with 6240, then not tried again
    escaped = doc["customer"]["name"].replace("'", "\\'")
    assert [r.query["query"][0] for r in sim.api_requests("/query")][-2:] == [
        f"select * from Customer where DisplayName = '{escaped}'"] * 2


def test_a_name_taken_meanwhile_by_a_namesake_gets_our_distinct_name(sim, ctx, qb, docs):
    doc = next(d for d in docs if d["customer"].get("email"))
    sim.before_customer_create = lambda body: (setattr(sim, "before_customer_create", None), sim.customers.update(
        {"901": {"Id": "901", "DisplayName": body["DisplayName"], "PrimaryEmailAddr": {"Address": "x@other.example"}}}))
    qb.create_invoice(doc, KEY)
    [ours] = [c for c in sim.customers.values() if c["Id"] != "901"]
    assert ours["DisplayName"] == f'{display_name(doc["customer"])} ({doc["customer"]["id"]})'
    assert ctx.refs.get("customer", doc["customer"]["id"]) == ours["Id"]


def test_a_name_held_by_a_vendor_gets_our_distinct_name(sim, ctx, qb, docs):
    doc = docs[3]
    sim.other_names.add(display_name(doc["customer"]).upper())  # unique case-insensitively, across vendors too
    created = qb.create_invoice(doc, KEY)
    [ours] = sim.customers.values()
    assert ours["DisplayName"] == f'{display_name(doc["customer"])} ({doc["customer"]["id"]})'
    assert sim.invoices[created.external_id]["CustomerRef"]["value"] == ours["Id"]


def test_a_6240_on_our_distinct_name_too_is_rejected_with_quickbooks_words(sim, ctx, qb, docs):
    doc = docs[3]
    name = display_name(doc["customer"])
    sim.other_names |= {name, f'{name} ({doc["customer"]["id"]})'}
    with pytest.raises(Rejected, match=r"\[6240\] Duplicate Name Exists Error"):
        qb.create_invoice(doc, KEY)
    assert sim.customers == {} and sim.invoices == {}
