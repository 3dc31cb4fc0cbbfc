"""Tenants are isolated: a source signature made for one tenant (or one source) is never accepted for
another; a signed PDF link opens its own invoice and nothing else, whatever is swapped; job and
dead-letter reads return only the tenant asked for. Real app, real PostgreSQL and Redis; the jobs
run through the pipeline in this process (tests/providers/channels.run_job)."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from invoicer import db, documents
from invoicer.config import settings as current_settings

from ..conftest import ADMIN, make_event, sign
from ..providers.channels import own_tenants_forgotten  # noqa: F401  (autouse)
from ..providers.channels import run_job, use_tenants
from .conftest import footprint

FUZZ = settings(max_examples=20, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SECRETS = {name: "whsec_" + base64.b64encode(f"{name}-secret-for-the-isolation".encode()[:32]).decode()
           for name in ("ISO_SECRET_A", "ISO_SECRET_A_PORTAL", "ISO_SECRET_B")}
# which secret each (tenant, source) is signed with
SIGNER = {("tenant-a", "mobile-app"): "ISO_SECRET_A", ("tenant-a", "portal"): "ISO_SECRET_A_PORTAL",
          ("tenant-b", "mobile-app"): "ISO_SECRET_B", ("tenant-b", "portal"): "ISO_SECRET_B"}


@pytest.fixture
def iso(clean, monkeypatch, tmp_path):
    from invoicer.ingress import create_app

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    email = {"customer": ["email"]}
    use_tenants(monkeypatch, tmp_path, {
        "tenant-a": {"name": "A Co", "numbering": {"prefix": "A-"}, "channels": email,
                     "sources": {"*": {"secret_env": "ISO_SECRET_A"}, "portal": {"secret_env": "ISO_SECRET_A_PORTAL"}}},
        "tenant-b": {"name": "B Co", "numbering": {"prefix": "B-"}, "channels": email,
                     "sources": {"*": {"secret_env": "ISO_SECRET_B"}}},
        "tenant-c": {"name": "C Co", "numbering": {"prefix": "C-"}, "channels": email, "platforms": {
            "books": {"provider": "local", "reject": "customer C-1 does not exist on this platform"}}},
    })
    with TestClient(create_app(), headers=ADMIN) as client:
        yield client


def signed_post(client, tenant: str, source: str, secret_of: tuple[str, str], event_id: str = "evt-1"):
    event = make_event(event_id, tenant=tenant)
    event["source"] = source
    body = json.dumps(event)
    return client.post("/v1/events", content=body.encode(),
                       headers=sign(body, f"m-{event_id}", secret=SECRETS[SIGNER[secret_of]]))


def test_each_tenant_and_source_accepts_its_own_signature(iso):
    for tenant, source in SIGNER:
        assert signed_post(iso, tenant, source, (tenant, source)).status_code == 202, (tenant, source)
    # the same event id from two tenants (or two sources) is two events, not a duplicate of the other
    with db.engine().connect() as conn:
        assert len(conn.execute(db.events.select()).all()) == len(SIGNER)


@FUZZ
@given(claimed=st.sampled_from(sorted(SIGNER)), signer=st.sampled_from(sorted(SIGNER)),
       event_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30))
def test_a_signature_for_one_tenant_or_source_never_opens_another(iso, redis_client, claimed, signer, event_id):
    if SIGNER[claimed] == SIGNER[signer]:
        return  # the same secret: the same sender (tenant-b signs every source with one secret)
    before = footprint(redis_client)
    r = signed_post(iso, *claimed, signer, event_id)
    assert r.status_code == 401 and r.json()["error"] == "bad_signature", r.text
    assert footprint(redis_client) == before


def test_a_signed_request_retargeted_at_another_tenant_is_refused(iso, redis_client):
    """Tenant A's captured request, its body changed to claim tenant B: A's signature no longer fits."""
    body = json.dumps(make_event(tenant="tenant-a"))
    headers = sign(body, "m-1", secret=SECRETS["ISO_SECRET_A"])
    r = iso.post("/v1/events", content=body.replace('"tenant-a"', '"tenant-b"').encode(), headers=headers)
    assert r.status_code == 401
    assert footprint(redis_client)["events"] == 0


@pytest.fixture
def two_invoices(iso):
    """Tenants A and B, each with one job J-1 invoiced and its PDF stored; {tenant: (invoice id, link path)}."""
    out = {}
    for tenant in ("tenant-a", "tenant-b"):
        invoice_id = run_job(tenant)
        status = iso.get(f"/v1/jobs/{tenant}/J-1").json()
        assert status["state"] == "done", status
        url = urlsplit(status["invoices"][0]["pdf"]["url"])
        out[tenant] = (invoice_id, f"{url.path}?{url.query}", status)
    assert out["tenant-a"][0] != out["tenant-b"][0]
    return out


def _link(path: str) -> tuple[int, str, str]:
    url = urlsplit(path)
    q = parse_qs(url.query)
    return int(url.path.rsplit("/", 1)[1].removesuffix(".pdf")), q["expires"][0], q["signature"][0]


def test_signed_pdf_links_open_only_their_own_invoice(iso, two_invoices):
    (a_id, a_path, a_status), (b_id, b_path, b_status) = two_invoices["tenant-a"], two_invoices["tenant-b"]
    pdf_a, pdf_b = iso.get(a_path), iso.get(b_path)
    assert pdf_a.status_code == pdf_b.status_code == 200 and pdf_a.content != pdf_b.content
    assert pdf_a.headers["content-disposition"].startswith('inline; filename="A-')
    assert pdf_b.headers["content-disposition"].startswith('inline; filename="B-')
    _, a_exp, a_sig = _link(a_path)
    _, b_exp, b_sig = _link(b_path)
    for invoice_id, expires, signature in [(a_id, b_exp, b_sig), (b_id, a_exp, a_sig),  # swapped whole
                                           (a_id, a_exp, b_sig), (b_id, b_exp, a_sig),  # signatures swapped
                                           (a_id, str(int(a_exp) + 1), a_sig)]:  # lifetime stretched
        r = iso.get(f"/v1/invoices/{invoice_id}.pdf", params={"expires": expires, "signature": signature})
        assert r.status_code == 403 and r.content != pdf_a.content and r.content != pdf_b.content, \
            (invoice_id, expires, signature)


@FUZZ
@given(invoice_id=st.integers(0, 10 ** 18 - 1))
def test_a_pdf_signature_fits_no_other_invoice_id(iso, two_invoices, invoice_id):
    a_id, a_path, _ = two_invoices["tenant-a"]
    _, expires, signature = _link(a_path)
    r = iso.get(f"/v1/invoices/{invoice_id}.pdf", params={"expires": expires, "signature": signature})
    assert r.status_code == (200 if invoice_id == a_id else 403)


def test_a_link_signed_with_another_key_is_refused(iso, two_invoices):
    a_id, _, _ = two_invoices["tenant-a"]
    other = documents.sign_link("http://x", "not-our-key", a_id, 3600)
    assert current_settings().secret_key != "not-our-key"
    assert iso.get(urlsplit(other).path + "?" + urlsplit(other).query).status_code == 403


def test_job_reads_are_scoped_to_the_tenant_asked_for(iso, two_invoices):
    """Both tenants have a job J-1: each read shows its own tenant's events, invoice and PDF, nothing else."""
    for tenant, prefix in (("tenant-a", "A-"), ("tenant-b", "B-")):
        status = iso.get(f"/v1/jobs/{tenant}/J-1").json()
        assert status["tenant"] == tenant and len(status["events"]) == 1
        assert [i["number"][:2] for i in status["invoices"]] == [prefix]
        pdf_id, _, _ = _link(urlsplit(status["invoices"][0]["pdf"]["url"]).path + "?" +
                             urlsplit(status["invoices"][0]["pdf"]["url"]).query)
        assert pdf_id == two_invoices[tenant][0]
        assert {a["invoice_id"] for a in status["audit"] if a["invoice_id"]} == {two_invoices[tenant][0]}
    assert iso.get("/v1/jobs/tenant-c/J-1").status_code == 404  # no job there
    assert iso.get("/v1/jobs/nobody/J-1").status_code == 404
    assert iso.get("/v1/jobs/tenant-a/J-1", headers={"Authorization": ""}).status_code == 401


def test_dead_letter_reads_are_scoped_to_the_tenant_asked_for(iso):
    run_job("tenant-a")
    run_job("tenant-c")  # its only platform refuses the customer: dead-lettered
    dead = lambda tenant: iso.get("/v1/admin/dlq", params={"tenant": tenant}).json()["dead_letters"]  # noqa: E731
    [c_dead] = dead("tenant-c")
    assert c_dead["tenant"] == "tenant-c" and c_dead["number"].startswith("C-")
    assert dead("tenant-a") == [] and dead("tenant-b") == []
    assert iso.get("/v1/admin/dlq", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_channel_webhook_signed_for_one_tenant_never_touches_anothers_message(clean, monkeypatch, tmp_path):
    """Tenants A and B each on their own Twilio account. A's StatusCallback posted to B's URL does not
    verify; one B really signed, naming A's message, verifies and changes nothing of A's."""
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    from invoicer.ingress import create_app
    from invoicer.providers.simulate import Running
    from invoicer.providers.twilio.simulator import TwilioSimulator

    from ..providers.channels import messages

    with Running(TwilioSimulator()) as run_a, Running(TwilioSimulator()) as run_b:
        sims = {"tenant-a": run_a.sim, "tenant-b": run_b.sim}
        tenants = {}
        for (tenant, sim), running in zip(sims.items(), (run_a, run_b)):
            env = f"ISO_TWILIO_{tenant[-1].upper()}"
            monkeypatch.setenv(env, sim.auth_token)
            tenants[tenant] = {"name": tenant, "channels": {"customer": ["sms"], "sms": sim.channel(
                running.url, auth_token_env=env)}}
        use_tenants(monkeypatch, tmp_path, tenants)
        invoice_a = run_job("tenant-a")
        [sms_a] = messages(invoice_a, "sms")
        base = "http://testserver/v1/webhooks/twilio"
        with TestClient(create_app()) as client:
            # A's signed callback, replayed at B's endpoint
            url, params, headers = sims["tenant-a"].advance(sms_a.external_id, "failed", url=f"{base}/tenant-b")
            r = client.post("/v1/webhooks/twilio/tenant-b", content=urlencode(params), headers=headers)
            assert r.status_code == 401
            # B signs a callback for A's message with its own token: verified as B's, and B has no such message
            signature = RequestValidator(sims["tenant-b"].auth_token).compute_signature(url, params)
            r = client.post("/v1/webhooks/twilio/tenant-b", content=urlencode(params),
                            headers={**headers, "X-Twilio-Signature": signature})
            assert r.status_code == 200 and r.json()["outcomes"] == ["unknown_message"]
            [after] = messages(invoice_a, "sms")
            assert (after.detail or {}).get("status") == (sms_a.detail or {}).get("status") != "failed"
            # control: A's own endpoint takes A's callback
            url, params, headers = sims["tenant-a"].advance(sms_a.external_id, "delivered", url=f"{base}/tenant-a")
            r = client.post("/v1/webhooks/twilio/tenant-a", content=urlencode(params), headers=headers)
            assert r.json()["outcomes"] == ["delivered"]
