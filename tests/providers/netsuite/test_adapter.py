"""The NetSuite adapter over real HTTP against NetSuiteSimulator (signed OAuth 1.0a requests verified by the
simulator), with real PostgreSQL (refs) and Redis (concurrency limiter); assertions on NetSuite's side."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.providers import registry
from invoicer.providers.netsuite.simulator import NetSuiteSimulator
from tests.conftest import wait_for
from tests.providers.erp import fixtures
from tests.providers.netsuite import make_doc, options

NetSuite = registry.get("netsuite")
KEY = "a1" * 24


running, ns = fixtures(NetSuiteSimulator, NetSuite, options, "erp")


def calls(sim, method, part):
    return [r for r in sim.received if r.method == method and part in r.path]


def test_create_upserts_one_invoice_with_our_total(ns):
    doc = make_doc()
    created = ns.provider().create_invoice(doc, KEY)
    [stored] = ns.sim.invoices.values()
    assert created.external_id == stored["id"] and created.number == stored["tranId"] == "INV1"
    assert stored["total"] == doc["total"] == Decimal("251.10") and stored["taxTotal"] == 0
    assert stored["externalId"] == f"invoicer-{KEY}" and created.detail["total"] == "251.10"
    [put] = calls(ns.sim, "PUT", "/invoice/")
    assert put.path.endswith(f"/invoice/eid:invoicer-{KEY}") and put.query["replace"] == ["item"]
    auth = put.headers["authorization"]
    assert auth.startswith("OAuth ") and 'realm="TSTDRV2710001"' in auth and "HMAC-SHA256" in auth
    [customer] = ns.sim.customers.values()
    assert customer["companyName"] == "Nguyễn Thị Hương" and stored["entity"] == {"id": customer["id"]}
    assert ns.sim.emails == []  # invoicer sends it (send is off)


def test_repeated_create_updates_the_same_invoice_never_a_second(ns):
    doc = make_doc()
    first = ns.provider().create_invoice(doc, KEY)
    second = ns.provider().create_invoice(doc, KEY)
    assert first.external_id == second.external_id and len(ns.sim.invoices) == 1
    assert len(ns.sim.lines(first.external_id)) == 5  # lines replaced, not appended
    assert ns.sim.invoices[first.external_id]["total"] == doc["total"]
    assert len(ns.sim.customers) == 1 and len(calls(ns.sim, "PUT", "/customer/")) == 1  # remembered


def test_dropped_answer_then_retry_finds_the_invoice_and_creates_nothing(ns):
    doc = make_doc()
    ns.provider().create_invoice(make_doc(number="ACME-0999", job_id="J-0"), "b2" * 24)  # customer known
    ns.sim.inject("drop")
    with pytest.raises(OutcomeUnknown):
        ns.provider().create_invoice(doc, KEY)
    assert len(ns.sim.invoices) == 2  # it did land
    found = ns.provider(attempt=2).find_invoice(doc, KEY)
    assert found is not None and found.number == "INV2" and len(ns.sim.invoices) == 2
    writes = ns.sim.writes
    assert ns.provider(attempt=2).find_invoice(make_doc(number="X"), "c3" * 24) is None
    assert ns.sim.writes == writes


def test_email_by_netsuite_when_the_tenant_chooses_it(ns):
    created = ns.provider(send=True).create_invoice(make_doc(), KEY)
    assert ns.sim.emails == [(created.external_id, "huong@example.com")]
    ns.provider(send=True).create_invoice(make_doc(), KEY)
    assert len(ns.sim.emails) == 1


def test_our_number_when_the_tenant_says_so(ns):
    created = ns.provider(use_our_number=True).create_invoice(make_doc(number="ACME-1042"), KEY)
    assert created.number == "ACME-1042"


def test_a_non_zero_tax_code_on_the_lines_is_caught_as_a_wrong_total(ns):
    with pytest.raises(Rejected, match="totals 255.10 USD, ours is 251.10"):
        ns.provider(tax_codes={"taxable": "20", "non_taxable": "-8"}).create_invoice(make_doc(), KEY)


def test_429_concurrency_limit_is_rate_limited_with_a_wait(ns):
    ns.sim.inject("429")
    with pytest.raises(RateLimited) as exc:
        ns.provider().create_invoice(make_doc(), KEY)
    assert exc.value.retry_after == 5.0 and "CONCURRENCY_LIMIT_EXCEEDED" in str(exc.value)
    assert ns.sim.invoices == {}


def test_concurrency_limit_as_400_body_is_rate_limited_too(ns, monkeypatch):
    from invoicer.providers.netsuite import simulator

    monkeypatch.setattr(ns.sim, "rate_limited", lambda request: simulator._error(
        400, "Bad Request", "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked."))
    ns.sim.inject("429")
    with pytest.raises(RateLimited):
        ns.provider().create_invoice(make_doc(), KEY)


def test_our_limiter_keeps_requests_in_flight_under_the_accounts_limit(ns):
    ns.sim.flight.limit = 2
    ns.provider().create_invoice(make_doc(), KEY)  # customer known from here on
    ns.sim.flight.gate = threading.Event()
    docs = [make_doc(number=f"ACME-{2000 + i}", job_id=f"J-{i}") for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(ns.provider(concurrency=2).create_invoice, d, f"k{i:047d}") for i, d in enumerate(docs)]
        wait_for(lambda: ns.sim.flight.count == 2, 30, what="two requests in flight")
        ns.sim.flight.gate.set()
        results = [f.result() for f in futures]
    assert len({r.external_id for r in results}) == 3 and len(ns.sim.invoices) == 4


def test_bad_token_secret_is_auth_failed(ns, monkeypatch):
    monkeypatch.setenv("INVOICER_SANDBOX_NETSUITE_TOKEN_SECRET", "wrong")
    with pytest.raises(AuthFailed, match="INVALID_LOGIN"):
        ns.provider().create_invoice(make_doc(), KEY)


def test_validation_error_is_rejected_with_the_path(ns):
    with pytest.raises(Rejected, match=r"item.items\[0\].item"):
        ns.provider(items={"labor": "999", "material": "12", "fee": "13", "discount": "14", "tax": "15"}) \
            .create_invoice(make_doc(), KEY)


def test_missing_secret_or_mapping_fails_before_any_call(ns, monkeypatch):
    monkeypatch.delenv("INVOICER_SANDBOX_NETSUITE_TOKEN_ID")
    with pytest.raises(MappingMissing, match="INVOICER_SANDBOX_NETSUITE_TOKEN_ID"):
        ns.provider().create_invoice(make_doc(), KEY)
    with pytest.raises(MappingMissing, match="items.discount"):
        ns.provider(items={"labor": "11", "material": "12", "fee": "13"}).create_invoice(make_doc(), KEY)
    assert ns.sim.received == []


def test_payment_status(ns):
    created = ns.provider().create_invoice(make_doc(), KEY)
    ns.sim.pay(created.external_id, Decimal("100.00"))
    status = ns.provider().payment_status(created.external_id)
    assert status.amount_paid == Decimal("100.00") and status.amount_due == Decimal("151.10") and not status.paid


def test_check_options_lists_what_is_missing():
    assert NetSuite.check_options(options(), "erp") == []
    problems = NetSuite.check_options({"provider": "netsuite", "auth": "oauth2", "algorithm": "RS256"}, "erp")
    assert "platforms.erp.account_id: the NetSuite account id is not set" in problems
    assert "platforms.erp.items.labor is not set" in problems
    assert any(p.startswith("platforms.erp.certificate_id") for p in problems)
    assert any(p.startswith("platforms.erp.algorithm: one of PS256") for p in problems)
    assert any("not 'saml'" in p for p in NetSuite.check_options(options(auth="saml"), "erp"))


# ---------------------------------------------------------------- OAuth 2.0 client credentials (M2M)

def m2m(ns, **extra):
    return ns.provider(auth="oauth2", certificate_id=ns.sim.certificate_id, algorithm="ES256", **extra)


def test_oauth2_client_credentials_token_is_cached_and_renewed(ns):
    created = m2m(ns).create_invoice(make_doc(), KEY)
    assert ns.sim.invoices[created.external_id]["total"] == Decimal("251.10") and ns.sim.grants == 1
    [put] = calls(ns.sim, "PUT", "/invoice/")
    assert put.headers["authorization"].startswith("Bearer ns-at-")
    [grant] = calls(ns.sim, "POST", "/oauth2/v1/token")
    assert b"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" in grant.body
    m2m(ns).payment_status(created.external_id)
    assert ns.sim.grants == 1  # the stored token serves the next call
    ns.sim.expire_tokens()  # ended early on NetSuite's side: 401, a new token, the call repeated once
    assert m2m(ns).payment_status(created.external_id).amount_due == Decimal("251.10") and ns.sim.grants == 2


def test_oauth2_with_an_rsa_key_and_ps256(ns, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ns.sim.map_certificate("rsa-cert", key.public_key())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    monkeypatch.setenv("INVOICER_SANDBOX_NETSUITE_PRIVATE_KEY", pem.replace("\n", "\\n"))  # one-line form
    created = ns.provider(auth="oauth2", certificate_id="rsa-cert").create_invoice(make_doc(), KEY)
    assert created.external_id in ns.sim.invoices


def test_oauth2_unknown_certificate_or_bad_key_is_auth_failed(ns, monkeypatch):
    with pytest.raises(AuthFailed, match="refused the client credentials"):
        ns.provider(auth="oauth2", certificate_id="not-mapped", algorithm="ES256").create_invoice(make_doc(), KEY)
    monkeypatch.setenv("INVOICER_SANDBOX_NETSUITE_PRIVATE_KEY", "not a key")
    with pytest.raises(AuthFailed, match="cannot sign"):
        m2m(ns).create_invoice(make_doc(), KEY)
    assert ns.sim.invoices == {}
