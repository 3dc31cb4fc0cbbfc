"""Recipients, templates and SMS segments (pure), the startup check, and message deliveries in the
pipeline (skips with reasons, the status document)."""
from __future__ import annotations

import pytest
from invoicer import notify
from invoicer.config import ConfigError, Tenant, load_tenants

from .providers.channels import own_tenants_forgotten  # noqa: F401  (autouse)
from .providers.channels import messages, run_job, use_tenants

TENANT = Tenant(name="Acme <Heating> & Cooling", platforms={"b": {"provider": "local"}},
                sources={"*": {"unsigned": True}})


def test_emails_are_normalised_or_refused_with_a_reason():
    assert notify.email_address(" Huong@Example.com ") == ("Huong@example.com", None)
    assert notify.email_address(None) == (None, "customer has no email address")
    for bad in ("huong@", "a@b", "two..dots@example.com", "x@mail.test"):
        address, reason = notify.email_address(bad)
        assert address is None and reason.startswith("invalid email address")


def test_phones_become_e164_with_the_customers_region():
    assert notify.phone_number("(407) 555-0100", "US") == ("+14075550100", None)
    assert notify.phone_number("020 7946 0018", "GB") == ("+442079460018", None)
    assert notify.phone_number("+44 20 7946 0018", "US") == ("+442079460018", None)
    assert notify.phone_number("", "US") == (None, "customer has no phone number")
    assert notify.phone_number("12", "US")[1].startswith("invalid phone number")
    assert notify.phone_number("not a number", None)[1].startswith("invalid phone number")


def test_region_comes_from_the_address_then_the_locale():
    doc = notify.sample_doc("acme", TENANT)
    assert notify.region({**doc, "service_address": {"country": "GB"}}, TENANT) == "GB"
    assert notify.region({**doc, "customer": {"billing_address": {"country": "NL"}}}, TENANT) == "NL"
    assert notify.region(doc, Tenant(**{**TENANT.model_dump(), "locale": "en_GB"})) == "GB"


@pytest.mark.parametrize("text, encoding, segments", [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),  # an extension character takes two septets
    ("ł" * 70, "UCS-2", 1), ("ł" * 71, "UCS-2", 2), ("ł" * 134, "UCS-2", 2), ("ł" * 135, "UCS-2", 3),
    ("🙂" * 35, "UCS-2", 1), ("🙂" * 36, "UCS-2", 2),  # outside the BMP: two UTF-16 units each
])
def test_sms_segments(text, encoding, segments):
    got = notify.segments(text)
    assert (got["encoding"], got["segments"]) == (encoding, segments)


def test_defaults_render_and_escape_per_format():
    out = notify.preview("acme", TENANT, "invoice")
    assert out["subject"] == "Invoice INV-000001 from Acme <Heating> & Cooling"
    assert "Acme &lt;Heating&gt; &amp; Cooling" not in out["text"]
    assert "&amp;signature=sample" in out["html"]  # HTML is autoescaped
    assert out["sms"].startswith("Acme <Heating> & Cooling: invoice INV-000001 for $251.10 is due Dec 2, 2026.")
    assert out["sms_segments"] == notify.segments(out["sms"])
    nl = notify.preview("polar", Tenant(**{**TENANT.model_dump(), "locale": "nl_NL"}), "invoice")
    assert "\u00a0" not in nl["sms"] and nl["sms_segments"]["encoding"] == "GSM-7"  # babel's NBSP made plain


def test_tenant_templates_override_fields_and_html_is_escaped():
    tenant = Tenant(**{**TENANT.model_dump(), "templates": {"invoice": {
        "subject": "Your bill {{ invoice.number }}\nBcc: evil@example.com",
        "html": "<b>{{ customer.name }}</b>", "slack": "{{ customer.name }}"}}})
    ctx = notify.context({**notify.sample_doc("acme", tenant), "customer": {"name": "<script>&"}})
    assert notify.render(tenant, "invoice", "subject", ctx) == "Your bill INV-000001 Bcc: evil@example.com"
    assert notify.render(tenant, "invoice", "html", ctx) == "<b>&lt;script&gt;&amp;</b>"
    assert notify.render(tenant, "invoice", "slack", ctx) == "&lt;script&gt;&amp;"
    assert notify.render(tenant, "invoice", "text", ctx).startswith("Hello <script>&,")  # the default, plain


def test_a_template_that_cannot_render_is_a_config_error_at_start(tmp_path, monkeypatch):
    def load(templates, **channels):
        path = tmp_path / "t.yaml"
        import yaml
        path.write_text(yaml.safe_dump({"tenants": {"acme": {
            "name": "Acme", "platforms": {"b": {"provider": "local"}}, "sources": {"*": {"unsigned": True}},
            "templates": templates, "channels": channels}}}))
        return load_tenants(str(path))

    with pytest.raises(ConfigError, match=r"tenants\.acme\.templates\.invoice\.sms: does not render.*UndefinedError"):
        load({"invoice": {"sms": "{{ invoice.nope }}"}})
    with pytest.raises(ConfigError, match=r"templates\.finance\.subject: does not render.*TemplateSyntaxError"):
        load({"finance": {"subject": "{% if %}"}})
    with pytest.raises(ConfigError, match=r"templates\.reminder\.text: does not render.*SecurityError"):
        load({"reminder": {"text": "{{ invoice.__class__.__mro__ }}{{ ''.__class__.__subclasses__() }}"}})
    with pytest.raises(ConfigError, match=r"channels\.finance_emails\.0: not a valid email address"):
        load({}, finance_emails=["finance@"])
    with pytest.raises(ConfigError, match=r"channels\.email\.host: the mail server is not set"):
        load({}, email={"provider": "smtp", "from": "a@acme.example"})
    with pytest.raises(ConfigError, match=r"channels\.slack: no slack channel named 'local'"):
        load({}, slack="local")
    assert load({"invoice": {"sms": "{{ seller.name }} {{ invoice.total }}"}})["acme"].templates["invoice"].sms


def test_plan_validates_contacts_and_records_why_a_channel_is_skipped(clean, monkeypatch, tmp_path):
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "channels": {
        "customer": ["email", "sms"], "finance_emails": ["Finance@Acme.example"]}}})
    invoice = run_job(email="not-an-address", phone="+14075550100")
    rows = {(r.kind, r.target): r for r in messages(invoice)}
    assert rows[("email", "customer")].status == "skipped"
    assert rows[("email", "customer")].detail["reason"].startswith("invalid email address")
    assert rows[("sms", "customer")].status == "done" and rows[("sms", "customer")].recipient == "+14075550100"
    assert rows[("email", "finance")].status == "done" and rows[("email", "finance")].recipient == "Finance@acme.example"

    from invoicer.status import job_status
    status = job_status("acme-hvac", "J-1")
    assert status["state"] == "done"
    notes = {(n["channel"], n["to"]): n for n in status["invoices"][0]["notifications"]}
    assert notes[("email", "customer")]["message_status"] == "skipped"
    assert notes[("sms", "customer")]["message_status"] == "sent"
    assert notes[("sms", "customer")]["recipient"] == "+14***00"


def test_a_number_the_contract_takes_but_no_phone_can_have_is_skipped(clean, monkeypatch, tmp_path):
    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "channels": {"customer": ["sms"]}}})
    [row] = messages(run_job(phone="+10000000"))
    assert row.status == "skipped" and row.detail["reason"].startswith("invalid phone number")


def test_the_tenants_template_is_what_is_sent(clean, monkeypatch, tmp_path):
    import json

    from .conftest import VAR

    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "channels": {"customer": ["sms"]},
                                                      "templates": {"invoice": {"sms": "Pay {{ invoice.total }} by "
                                                                                       "{{ invoice.due }} ({{ job.number }})"}}}})
    [row] = messages(run_job())
    [line] = (VAR / "outbox" / "sms.jsonl").read_text().splitlines()
    sent = json.loads(line)
    assert sent["key"] == row.idempotency_key and sent["body"].startswith("Pay $251.10 by ") and sent["body"].endswith("(1)")


def test_cli_preview_prints_every_field_and_the_segments(capsys, monkeypatch, tmp_path):
    from invoicer.cli import main

    use_tenants(monkeypatch, tmp_path, {"acme-hvac": {"name": "Acme", "locale": "pl_PL",
                                                      "templates": {"invoice": {"sms": "Zażółć {{ invoice.total }}"}}}})
    assert main(["templates", "preview", "acme-hvac", "invoice"]) == 0
    out = capsys.readouterr().out
    assert "--- subject\nInvoice INV-000001 from Acme" in out and "--- sms\nZażółć 251,10 USD" in out
    assert "--- sms segments: 1 (UCS-2," in out
    assert main(["templates", "preview", "nobody"]) == 1
