"""The Sage Intacct adapter over real HTTP against SageIntacctSimulator (XML gateway), with real PostgreSQL
(session cache, refs) and Redis (concurrency limiter); assertions on Sage Intacct's side."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.sage_intacct import transform
from invoicer.providers.sage_intacct.simulator import SageIntacctSimulator
from tests.conftest import wait_for
from tests.providers.erp import fixtures
from tests.providers.sage_intacct import make_doc, options

SageIntacct = registry.get("sage_intacct")
KEY = "d4" * 24


running, si = fixtures(SageIntacctSimulator, SageIntacct, options, "gl")


def functions(sim, name):
    return [r for r in sim.received if f"<{name}".encode() in r.body]


def test_create_makes_one_ar_invoice_with_our_total(si):
    doc = make_doc()
    created = si.provider().create_invoice(doc, KEY)
    [stored] = si.sim.invoices.values()
    assert created.external_id == stored["RECORDNO"] and created.number == stored["RECORDID"] == "INV-00001"
    assert stored["TOTALENTERED"] == doc["total"] == Decimal("251.10") and stored["DOCNUMBER"] == "ACME-1001"
    assert [li["GLACCOUNTNO"] for li in si.sim.lines(stored["RECORDNO"])] == ["4000", "4100", "4200", "4900", "2200"]
    assert si.sim.customers["C-1"]["NAME"] == "Nguyễn Thị Hương" and stored["CUSTOMERID"] == "C-1"
    [create] = functions(si.sim, "create_invoice")
    assert create.headers["content-type"].startswith("application/xml")
    assert b"<uniqueid>true</uniqueid>" in create.body and transform.control_id(KEY).encode() in create.body
    assert b"<sessionid>" in create.body and si.sim.user_password.encode() not in create.body
    assert si.sim.logins == 1  # one session for every call


def test_session_is_cached_and_renewed_when_it_expires(si):
    si.provider().create_invoice(make_doc(), KEY)
    si.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "e5" * 24)
    assert si.sim.logins == 1
    si.sim.expire_sessions()
    si.provider().payment_status(next(iter(si.sim.invoices)))
    assert si.sim.logins == 2


def test_a_repeated_create_is_refused_by_control_id_and_resolves_to_the_same_invoice(si):
    doc = make_doc()
    first = si.provider().create_invoice(doc, KEY)
    again = si.provider().create_invoice(doc, KEY)
    assert again.external_id == first.external_id and len(si.sim.invoices) == 1 and si.sim.creates == 1


def test_dropped_answer_then_retry_finds_the_invoice_and_creates_nothing(si):
    doc = make_doc()
    si.provider().create_invoice(make_doc(number="ACME-0999", job_id="J-0"), "f6" * 24)  # session + customer ready
    si.sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        si.provider().create_invoice(doc, KEY)
    assert si.sim.creates == 2
    found = si.provider(attempt=2).find_invoice(doc, KEY)
    assert found is not None and found.number == "INV-00002" and si.sim.creates == 2
    assert si.provider(attempt=2).find_invoice(make_doc(number="ACME-5555"), "a7" * 24) is None


def test_a_failed_create_can_be_retried_with_the_same_control_id(si):
    with pytest.raises(Rejected, match="Invalid GL account '9999'"):
        si.provider(gl_accounts={"labor": "9999", "material": "4100", "fee": "4200", "discount": "4900",
                                 "tax": "2200"}).create_invoice(make_doc(), KEY)
    created = si.provider(attempt=2).create_invoice(make_doc(), KEY)
    assert created.external_id in si.sim.invoices and si.sim.creates == 1


def test_our_number_when_the_tenant_says_so(si):
    assert si.provider(use_our_number=True).create_invoice(make_doc(number="ACME-1042"), KEY).number == "ACME-1042"


def test_existing_customer_is_used_not_duplicated(si):
    si.sim.customers["C-1"] = {"RECORDNO": "9", "CUSTOMERID": "C-1", "NAME": "Huong", "EMAIL1": ""}
    si.provider().create_invoice(make_doc(), KEY)
    assert len(si.sim.customers) == 1 and functions(si.sim, "CUSTOMER") == []


def test_gateway_429_is_rate_limited(si):
    si.sim.inject("429")
    with pytest.raises(RateLimited) as exc:
        si.provider().create_invoice(make_doc(), KEY)
    assert "GW-0010" in str(exc.value) and exc.value.retry_after == 10.0


def test_limiter_keeps_requests_in_flight_under_the_companys_limit(si):
    si.provider().create_invoice(make_doc(), KEY)
    si.sim.flight.gate = threading.Event()
    docs = [make_doc(number=f"ACME-{2000 + i}", job_id=f"J-{i}") for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(si.provider().create_invoice, d, f"k{i:047d}") for i, d in enumerate(docs)]
        wait_for(lambda: si.sim.flight.count == 2, 30, what="two requests in flight")
        si.sim.flight.gate.set()
        results = [f.result() for f in futures]
    assert len({r.external_id for r in results}) == 3 and si.sim.creates == 4


def test_bad_sender_or_user_credentials_are_auth_failed(si, monkeypatch):
    monkeypatch.setenv("INVOICER_SANDBOX_SAGE_INTACCT_USER_PASSWORD", "wrong")
    with pytest.raises(AuthFailed, match="Sign-in information is incorrect"):
        si.provider().create_invoice(make_doc(), KEY)
    monkeypatch.setenv("INVOICER_SANDBOX_SAGE_INTACCT_SENDER_PASSWORD", "wrong")
    with pytest.raises(AuthFailed, match="XL03000006"):
        si.provider().create_invoice(make_doc(), KEY)


def test_missing_secret_or_mapping_fails_before_any_call(si, monkeypatch):
    with pytest.raises(MappingMissing, match="gl_accounts.discount"):
        si.provider(gl_accounts={"labor": "4000", "material": "4100", "fee": "4200"}).create_invoice(make_doc(), KEY)
    monkeypatch.delenv("INVOICER_SANDBOX_SAGE_INTACCT_SENDER_ID")
    with pytest.raises(MappingMissing, match="INVOICER_SANDBOX_SAGE_INTACCT_SENDER_ID"):
        si.provider().create_invoice(make_doc(), KEY)
    assert si.sim.received == []


def test_payment_status(si):
    created = si.provider().create_invoice(make_doc(), KEY)
    si.sim.pay(created.external_id, Decimal("251.10"))
    status = si.provider().payment_status(created.external_id)
    assert status.paid and status.amount_paid == Decimal("251.10") and status.amount_due == 0


def test_check_options_lists_what_is_missing():
    assert SageIntacct.check_options(options(), "gl") == []
    problems = SageIntacct.check_options({"provider": "sage_intacct"}, "gl")
    assert "platforms.gl.company_id: the Sage Intacct company id is not set" in problems
    assert "platforms.gl.gl_accounts.labor is not set" in problems


def test_gateway_limit_answered_with_http_200_is_rate_limited_too(si, monkeypatch):
    real = si.sim.rate_limited
    monkeypatch.setattr(si.sim, "rate_limited", lambda request: type(real(request))(200, real(request).body,
                                                                                       real(request).headers))
    si.sim.inject("429")
    with pytest.raises(RateLimited, match="GW-0010"):
        si.provider().create_invoice(make_doc(), KEY)


def test_control_id_refused_but_no_invoice_of_ours_is_rejected_for_a_person(si):
    si.sim.used_controls.add(transform.control_id(KEY))  # run before, but its invoice is not there
    with pytest.raises(Rejected, match="already run .* no invoice with reference ACME-1001"):
        si.provider().create_invoice(make_doc(), KEY)
    assert si.sim.creates == 0
