"""The DocuSign adapter over real HTTP against DocuSignSimulator (JWT grant, userinfo, envelopes, limits),
with real PostgreSQL and Redis for the context; assertions on DocuSign's side (what the simulator stored)."""
from __future__ import annotations

import base64
from types import SimpleNamespace

import pytest

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.docusign import adapter as ds_adapter
from invoicer.providers.docusign.simulator import DocuSignSimulator
from invoicer.providers.simulate import Running

from . import PDF, make_doc, options

DocuSign = registry.get("docusign")
KEY = "d" * 64


@pytest.fixture(scope="module")
def running():
    with Running(DocuSignSimulator()) as r:
        r.sim.url = r.url
        yield r


@pytest.fixture
def ds(clean, running, tmp_path, monkeypatch):
    running.sim.reset()
    running.sim.hourly = 3000
    ds_adapter._tokens.clear()  # tokens are cached per process: start each test afresh
    for k, v in running.sim.env().items():
        monkeypatch.setenv(k, v)

    def provider(attempt: int = 1, **extra):
        return DocuSign(options(running.sim, **extra), Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt,
                                                           tenant="acme-hvac", platform="sign"))

    return SimpleNamespace(sim=running.sim, provider=provider)


def test_registered_as_a_platform_that_takes_the_pdf_and_sends_webhooks():
    assert {"create_invoice", "find_invoice", "attach_pdf", "parse_webhook"} <= DocuSign.capabilities
    assert "payment_link" not in DocuSign.capabilities


def test_create_sends_one_envelope_with_the_pdf_to_the_customer(ds):
    created = ds.provider().create_invoice(make_doc(), KEY)
    [env] = ds.sim.envelopes.values()
    assert created.external_id == env["envelopeId"] and created.number == "ACME-1001"
    assert env["status"] == "sent" and env["transactionId"] == KEY and env["documents"]["1"] == PDF
    [signer] = env["recipients"]["signers"]
    assert signer["email"] == "huong@example.com" and signer["tabs"]["signHereTabs"][0]["pageNumber"] == "1"
    assert created.detail["account_id"] == ds.sim.account_id and created.detail["status"] == "sent"
    [post] = ds.sim.api_calls("POST")
    assert post.path == f"/restapi/v2.1/accounts/{ds.sim.account_id}/envelopes"
    assert post.headers["authorization"].startswith("Bearer eyJ")
    assert base64.b64decode(post.json()["documents"][0]["documentBase64"]) == PDF


def test_the_jwt_grant_and_userinfo_run_once_and_the_token_is_reused(ds):
    ds.provider().create_invoice(make_doc(), KEY)
    ds.provider().create_invoice(make_doc(number="ACME-1002"), "e" * 64)
    assert ds.sim.token_calls == 1
    assert [r.path for r in ds.sim.received if r.path.startswith("/oauth/")] == ["/oauth/token", "/oauth/userinfo"]
    token = ds.sim.received[0].form()
    assert token["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    import jwt

    claims = jwt.decode(token["assertion"][0], ds.sim.public_key, algorithms=["RS256"], audience=ds.sim.url[7:])
    assert claims["scope"] == "signature impersonation" and claims["sub"] == ds.sim.user_id
    assert claims["iss"] == ds.sim.integration_key and claims["exp"] - claims["iat"] == 3600


def test_an_expired_token_is_replaced_once_and_the_call_repeated(ds):
    ds.provider().create_invoice(make_doc(), KEY)
    ds.sim.expire_tokens()
    ds.provider().create_invoice(make_doc(number="ACME-1002"), "e" * 64)
    assert ds.sim.token_calls == 2 and len(ds.sim.envelopes) == 2


def test_dropped_create_then_the_retry_finds_the_envelope_and_makes_no_second(ds):
    ds.sim.fault_on("POST", r".*/envelopes", "drop")
    with pytest.raises(OutcomeUnknown):
        ds.provider().create_invoice(make_doc(), KEY)
    [env] = ds.sim.envelopes.values()  # DocuSign made it; the answer was lost
    found = ds.provider(attempt=2).find_invoice(make_doc(), KEY)
    assert found.external_id == env["envelopeId"] and len(ds.sim.envelopes) == 1
    [lookup] = ds.sim.api_calls("GET")
    assert lookup.query["custom_field"] == [f"invoicer_key={KEY}"] and lookup.query["from_date"]


def test_find_returns_none_when_nothing_was_made_and_ignores_other_invoices(ds):
    ds.provider().create_invoice(make_doc(number="ACME-1002"), "e" * 64)
    assert ds.provider(attempt=2).find_invoice(make_doc(), KEY) is None


def test_the_pipeline_retry_after_a_drop_leaves_one_envelope(ds, tmp_path):
    """What invoicer.pipeline._invoice does on attempt 2: look up first, create only if nothing is there."""
    ds.sim.fault_on("POST", r".*/envelopes", "drop")
    with pytest.raises(OutcomeUnknown):
        ds.provider().create_invoice(make_doc(), KEY)
    provider = ds.provider(attempt=2)
    created = provider.find_invoice(make_doc(), KEY) or provider.create_invoice(make_doc(), KEY)
    assert len(ds.sim.envelopes) == 1 and created.external_id in ds.sim.envelopes


def test_without_consent_the_grant_is_an_auth_failure(ds):
    ds.sim.consented = False
    with pytest.raises(AuthFailed, match="consent_required"):
        ds.provider().create_invoice(make_doc(), KEY)
    assert ds.sim.envelopes == {}


def test_a_wrong_private_key_is_an_auth_failure(ds, monkeypatch):
    other = DocuSignSimulator()
    monkeypatch.setenv("INVOICER_DOCUSIGN_PRIVATE_KEY", other.private_key_pem)
    with pytest.raises(AuthFailed, match="invalid_grant"):
        ds.provider().create_invoice(make_doc(), KEY)


def test_a_missing_integration_key_is_a_mapping_error_naming_the_variable(ds, monkeypatch):
    monkeypatch.delenv("INVOICER_DOCUSIGN_INTEGRATION_KEY")
    with pytest.raises(MappingMissing, match="INVOICER_DOCUSIGN_INTEGRATION_KEY"):
        ds.provider().create_invoice(make_doc(), KEY)


def test_an_account_the_user_lacks_is_a_mapping_error(ds):
    with pytest.raises(MappingMissing, match="account_id"):
        ds.provider(account_id="00000000-0000-0000-0000-000000000000").create_invoice(make_doc(), KEY)


def test_the_hourly_limit_is_rate_limited_until_the_next_hour(ds):
    ds.sim.hourly = 1
    ds.provider().create_invoice(make_doc(), KEY)
    with pytest.raises(RateLimited, match="HOURLY_APIINVOCATION_LIMIT_EXCEEDED") as info:
        ds.provider().create_invoice(make_doc(number="ACME-1002"), "e" * 64)
    assert 0 < info.value.retry_after <= 3600 and len(ds.sim.envelopes) == 1


def test_calls_go_through_the_shared_limiter_per_account(ds, redis_client):
    ds.provider().create_invoice(make_doc(), KEY)
    keys = {k.decode() for k in redis_client.keys(f"invoicer:rl:docusign:{ds.sim.account_id}:*")}
    assert keys == {f"invoicer:rl:docusign:{ds.sim.account_id}:r0", f"invoicer:rl:docusign:{ds.sim.account_id}:r1"}


def test_refused_envelopes_are_rejected_with_docusigns_reason(ds):
    with pytest.raises(Rejected, match="INVALID_EMAIL_ADDRESS_FOR_RECIPIENT"):
        ds.provider().create_invoice(make_doc(customer={"email": "not-an-address"}), KEY)
    with pytest.raises(Rejected, match="no email address"):  # refused before any call
        ds.provider().create_invoice(make_doc(customer={"email": None}), KEY)
    assert ds.sim.envelopes == {} and len(ds.sim.api_calls("POST")) == 1


def test_an_outage_is_retryable(ds):
    ds.sim.fault_on("POST", r".*/envelopes", "500")
    with pytest.raises(Unavailable):
        ds.provider().create_invoice(make_doc(), KEY)
    assert ds.sim.envelopes == {}


def test_check_options():
    assert DocuSign.check_options({"user_id": "u"}, "sign") == []
    problems = DocuSign.check_options({"sign_here": {"page": "one"}, "hourly_limit": 5}, "sign")
    assert any("user_id" in p for p in problems) and any("sign_here" in p for p in problems)
    assert any("hourly_limit" in p for p in problems)
