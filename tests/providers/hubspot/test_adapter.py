"""The HubSpot adapter over real HTTP against HubSpotSimulator, with real PostgreSQL (credentials, refs) and
Redis (rate limiter); assertions on HubSpot's side (what the simulator stored)."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
import requests
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.hubspot.simulator import HubSpotSimulator
from invoicer.providers.simulate import Running

from . import PORTAL, make_doc, options

HubSpot = registry.get("hubspot")
KEY = "h" * 48
TOKEN = "pat-na1-sim-token"


@pytest.fixture(scope="module")
def running():
    with Running(HubSpotSimulator(portal=PORTAL)) as r:
        yield r


@pytest.fixture
def hs(clean, running, tmp_path, monkeypatch):
    running.sim.reset()
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("INVOICER_HUBSPOT_CLIENT_ID", running.sim.client_id)
    monkeypatch.setenv("INVOICER_HUBSPOT_CLIENT_SECRET", running.sim.client_secret)
    monkeypatch.setenv("HS_TOKEN", TOKEN)
    ctx = make_ctx(tmp_path)

    def provider(attempt: int = 1, **extra):
        return HubSpot(options(running.url, **extra), make_ctx(tmp_path, attempt))

    def private(attempt: int = 1, **extra):
        return provider(attempt, token_env="HS_TOKEN", **extra)

    return SimpleNamespace(sim=running.sim, url=running.url, ctx=ctx, provider=provider, private=private)


def make_ctx(tmp_path, attempt: int = 1) -> Ctx:
    return Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac", platform="crm")


def calls(sim, method=None, suffix=""):
    return [r for r in sim.received if r.path.startswith("/crm/") and (method is None or r.method == method)
            and r.path.endswith(suffix)]


def invoices(sim):
    return list(sim.objects["invoices"].values())


# ---------------------------------------------------------------- create

def test_registered_as_a_crm_that_takes_the_pdf():
    assert {"create_invoice", "find_invoice", "attach_pdf"} <= HubSpot.capabilities
    assert "payment_link" not in HubSpot.capabilities and "send_invoice" not in HubSpot.capabilities


def test_create_makes_an_open_invoice_with_our_total_lines_and_contact(hs):
    doc = make_doc()
    created = hs.private().create_invoice(doc, KEY)
    [inv] = invoices(hs.sim)
    props = hs.sim._view("invoices", inv)["properties"]
    assert created.external_id == inv["id"] and created.number == props["hs_number"] == "INV-0001"
    assert props["hs_invoice_status"] == "open" and props["invoicer_reference"] == "ACME-1001"
    assert Decimal(props["hs_amount_billed"]) == doc["total"] == Decimal("251.10")
    assert created.url == f"https://app.hubspot.com/contacts/{PORTAL}/record/0-53/{inv['id']}"
    lines = hs.sim.lines_of(inv["id"])
    assert sorted(li["properties"]["name"] for li in lines) == [
        "Diagnosis and repair (2 x 100)", "Run capacitor", "Tax FL 8%", "Trip charge"]
    [contact] = hs.sim.objects["contacts"].values()
    assert contact["properties"]["email"] == "huong@example.com" and contact["properties"]["lastname"] == "Hương"
    assert hs.sim.associated("invoices", inv["id"], "contacts") == [contact["id"]]
    assert hs.ctx.refs.get("contact", "C-1") == contact["id"]
    [batch] = calls(hs.sim, "POST", "/line_items/batch/create")
    assert len(batch.json()["inputs"]) == 4  # one request for every line item
    for r in calls(hs.sim):
        assert r.headers["authorization"] == f"Bearer {TOKEN}"
    assert b"e+" not in calls(hs.sim, "POST", "/objects/invoices")[0].body.lower()


def test_existing_contact_is_found_by_email_and_reused(hs):
    existing = hs.sim.add("contacts", email="Huong@Example.com", firstname="Huong")
    hs.private().create_invoice(make_doc(), KEY)
    assert calls(hs.sim, "POST", "/objects/contacts") == []
    assert hs.sim.associated("invoices", invoices(hs.sim)[0]["id"], "contacts") == [existing["id"]]
    hs.private().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)
    assert len(calls(hs.sim, "POST", "/contacts/search")) == 1  # remembered after the first


def test_contact_made_meanwhile_by_another_worker_is_used(hs, monkeypatch):
    provider = hs.private()
    real = provider._find_contact
    looks = []

    def just_before_the_other_worker(customer):
        looks.append(1)
        if len(looks) == 1:
            hs.sim.add("contacts", email="huong@example.com")
            return None
        return real(customer)

    monkeypatch.setattr(provider, "_find_contact", just_before_the_other_worker)
    hs.sim.search_lag = 60  # the other worker's contact is not searchable yet: HubSpot's 409 names it
    provider.create_invoice(make_doc(), KEY)
    [contact] = hs.sim.objects["contacts"].values()
    assert len(looks) == 1 and hs.sim.associated("invoices", invoices(hs.sim)[0]["id"], "contacts") == [contact["id"]]


def test_the_deal_the_event_names_is_associated(hs):
    deal, contact = "9876", hs.sim.add("contacts", email="someone@example.com")["id"]
    hs.private().create_invoice(make_doc(customer={"external_ids": {"hubspot_deal": deal, "hubspot": contact}}), KEY)
    [inv] = invoices(hs.sim)
    assert hs.sim.associated("invoices", inv["id"], "deals") == [deal]
    assert hs.sim.associated("invoices", inv["id"], "contacts") == [contact]
    assert calls(hs.sim, "POST", "/contacts/search") == []


# ---------------------------------------------------------------- never twice

def test_dropped_invoice_create_is_found_and_completed_on_the_retry(hs):
    hs.sim.fault_on("POST", "/crm/v3/objects/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        hs.private().create_invoice(make_doc(), KEY)
    [draft] = invoices(hs.sim)
    assert draft["properties"]["hs_invoice_status"] == "draft"
    found = hs.private(attempt=2).find_invoice(make_doc(), KEY)
    assert found.external_id == draft["id"] and found.detail["status"] == "open"
    assert len(invoices(hs.sim)) == 1 and len(hs.sim.lines_of(draft["id"])) == 4


def test_dropped_line_items_are_not_made_twice(hs):
    hs.sim.fault_on("POST", "/crm/v3/objects/line_items/batch/create", "drop")
    with pytest.raises(OutcomeUnknown):
        hs.private().create_invoice(make_doc(), KEY)
    found = hs.private(attempt=2).find_invoice(make_doc(), KEY)
    assert len(hs.sim.lines_of(found.external_id)) == 4 and len(hs.sim.objects["line_items"]) == 4
    assert len(calls(hs.sim, "POST", "/line_items/batch/create")) == 1  # nothing was missing
    assert Decimal(found.detail["total"]) == Decimal("251.10")


def test_partly_made_line_items_get_only_the_missing_ones(hs):
    hs.sim.fault_on("PATCH", r"/crm/v3/objects/invoices/\d+", "drop")
    with pytest.raises(OutcomeUnknown):
        hs.private().create_invoice(make_doc(), KEY)
    [inv] = invoices(hs.sim)  # the PATCH was applied (a drop answers nothing, the work is done)
    assert inv["properties"]["hs_invoice_status"] == "open"
    # a line item lost in HubSpot meanwhile: the retry adds it back, no more
    lost = hs.sim.lines_of(inv["id"])[1]["id"]
    inv["properties"]["hs_invoice_status"] = "draft"
    for key in list(hs.sim.assoc):
        hs.sim.assoc[key].pop(lost, None)
    found = hs.private(attempt=2).find_invoice(make_doc(), KEY)
    assert len(hs.sim.lines_of(found.external_id)) == 4 and found.detail["status"] == "open"


def test_create_hitting_our_unique_property_looks_the_invoice_up(hs):
    hs.sim.fault_on("POST", "/crm/v3/objects/invoices", "drop")
    with pytest.raises(OutcomeUnknown):
        hs.private().create_invoice(make_doc(), KEY)
    hs.sim.search_lag = 60  # the search index has not caught up: retry shortly
    with pytest.raises(Unavailable) as err:
        hs.private(attempt=2).create_invoice(make_doc(), KEY)
    assert err.value.status == 409 and err.value.retry_after == 5
    hs.sim.search_lag = 0
    created = hs.private(attempt=3).create_invoice(make_doc(), KEY)
    assert len(invoices(hs.sim)) == 1 and created.detail["status"] == "open"


def test_find_returns_none_when_nothing_was_made(hs):
    assert hs.private(attempt=2).find_invoice(make_doc(), KEY) is None


def test_a_draft_changed_in_hubspot_to_another_total_is_not_opened(hs):
    hs.sim.fault_on("PATCH", r"/crm/v3/objects/invoices/\d+", "500")
    with pytest.raises(Unavailable):
        hs.private().create_invoice(make_doc(), KEY)
    [inv] = invoices(hs.sim)
    extra = hs.sim.add("line_items", name="Extra", quantity="1", price="1.00")["id"]  # added by a person
    hs.sim.assoc.setdefault(("invoices", inv["id"], "line_items"), {})[extra] = 409
    with pytest.raises(Rejected, match="252.10 USD, ours to 251.10"):
        hs.private(attempt=2).find_invoice(make_doc(), KEY)
    assert inv["properties"]["hs_invoice_status"] == "draft"


# ---------------------------------------------------------------- the note

def test_note_with_the_pdf_link_on_the_contact_once(hs):
    link = "https://invoicer.example/v1/documents/7?expires=1&sig=x"
    hs.sim.fault_on("PATCH", r"/crm/v3/objects/invoices/\d+", "500")
    with pytest.raises(Unavailable):
        hs.private(note=True).create_invoice(make_doc(pdf_link=link), KEY)
    hs.private(attempt=2, note=True).find_invoice(make_doc(pdf_link=link), KEY)
    [note] = hs.sim.objects["notes"].values()
    assert link in note["properties"]["hs_note_body"] and "ACME-1001" in note["properties"]["hs_note_body"]
    [contact] = hs.sim.objects["contacts"].values()
    assert hs.sim.associated("notes", note["id"], "contacts") == [contact["id"]]


def test_no_note_unless_asked_or_without_a_link(hs):
    hs.private().create_invoice(make_doc(pdf_link="https://x.example/pdf"), KEY)
    hs.private(note=True).create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)
    assert hs.sim.objects["notes"] == {}


# ---------------------------------------------------------------- money

def test_zero_decimal_currency_end_to_end(hs):
    doc = make_doc(currency="JPY", labor=[{"description": "Repair", "hours": "1.5", "rate": "8000",
                                           "taxable": True}], materials=[], fees=[])
    created = hs.private().create_invoice(doc, KEY)
    assert Decimal(created.detail["total"]) == doc["total"] and doc["total"] == doc["total"].to_integral_value()


def test_three_decimal_currency_end_to_end(hs):
    doc = make_doc(currency="KWD", labor=[], materials=[],
                   fees=[{"description": "Visit", "amount": "25.125", "taxable": True}])
    created = hs.private().create_invoice(doc, KEY)
    assert Decimal(created.detail["total"]) == doc["total"]


# ---------------------------------------------------------------- errors, limits, auth

def test_429_is_rate_limited_for_the_ten_second_window(hs):
    hs.sim.inject("429")
    with pytest.raises(RateLimited) as err:
        hs.private().create_invoice(make_doc(), KEY)
    assert err.value.retry_after == 10 and "TEN_SECONDLY_ROLLING" in str(err.value)


def test_simulator_enforces_its_ten_second_limit_with_hubspots_body(hs):
    hs.sim.per_10s = 3
    try:
        codes = [requests.get(f"{hs.url}/crm/v3/objects/invoices/1", headers={"Authorization": f"Bearer {TOKEN}"},
                              timeout=5) for _ in range(4)]
    finally:
        hs.sim.per_10s = 100
    assert [r.status_code for r in codes] == [404, 404, 404, 429]
    body = codes[-1].json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["status"] == "error" and body["correlationId"]


def test_unknown_reference_property_is_rejected_naming_it(hs):
    with pytest.raises(Rejected, match="PROPERTY_DOESNT_EXIST|does not exist"):
        hs.private(reference_property="not_made_yet").create_invoice(make_doc(), KEY)
    assert invoices(hs.sim) == []


def test_5xx_is_unavailable(hs):
    hs.sim.inject("500")
    with pytest.raises(Unavailable):
        hs.private().create_invoice(make_doc(), KEY)


def test_private_token_missing_or_refused(hs, monkeypatch):
    monkeypatch.delenv("HS_TOKEN")
    with pytest.raises(MappingMissing, match="HS_TOKEN"):
        hs.private().create_invoice(make_doc(), KEY)
    monkeypatch.setenv("HS_TOKEN", "pat-wrong")
    with pytest.raises(AuthFailed):
        hs.private().create_invoice(make_doc(), KEY)
    assert hs.sim.token_calls == 0


def test_oauth_token_is_renewed_when_expired_and_when_refused(hs):
    tokens = hs.sim.issue_tokens()
    hs.ctx.credentials.put({**tokens, "expires_at": 0})  # expired by our clock: renewed before the call
    hs.provider().create_invoice(make_doc(), KEY)
    assert hs.sim.token_calls == 1
    stored = hs.ctx.credentials.get()
    assert stored["access_token"] != tokens["access_token"] and stored["refresh_token"] == tokens["refresh_token"]
    hs.sim.expire(stored["access_token"])  # refused early by HubSpot: renewed once and repeated
    hs.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)
    assert hs.sim.token_calls == 2 and len(invoices(hs.sim)) == 2


def test_no_oauth_credentials_is_auth_failed(hs):
    with pytest.raises(AuthFailed, match="invoicer credentials set"):
        hs.provider().create_invoice(make_doc(), KEY)


def test_check_options_names_the_key():
    assert HubSpot.check_options({"rate_per_10s": "fast"}, "crm") == [
        "platforms.crm.rate_per_10s: a whole number of requests per 10 s (100, 150, 190)"]
    assert HubSpot.check_options({"association_types": {"invoice_to_cat": 1}}, "crm") == [
        "platforms.crm.association_types: unknown invoice_to_cat"]
    assert HubSpot.check_options({"rate_per_10s": 150}, "crm") == []
