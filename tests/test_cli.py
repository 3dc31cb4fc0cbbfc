"""The `invoicer` command: the demo on its embedded default, configuration errors, providers, dlq."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import ROOT


def run_cli(*args, env=None, cwd=None, timeout=300):
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICER_")}
    return subprocess.run([sys.executable, "-m", "invoicer.cli", *args], env={**clean_env, **(env or {})},
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout)


def _figures(out: str) -> dict:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1].replace(".", "").isdigit():
            rows[" ".join(parts[:-1])] = parts[-1]
    return rows


@pytest.mark.slow
def test_demo_runs_on_sqlite_and_the_embedded_broker_then_finds_every_event_a_duplicate(tmp_path):
    env = {"INVOICER_BROKER_URL": "filesystem://localhost/"}  # as on a machine with no Redis at all
    first = run_cli("demo", "--count", "40", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "SQLite" in first.stdout and "failures             0" in first.stdout
    fig = _figures(first.stdout)
    assert fig["accepted"] == "40" and fig["duplicates"] == "0"
    pdfs = list((tmp_path / "var" / "invoices").rglob("*.pdf"))
    assert pdfs and int(fig["PDFs"]) == len(pdfs)
    assert (tmp_path / "var" / "outbox" / "sms.jsonl").exists()
    again = run_cli("demo", "--count", "40", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    fig2 = _figures(again.stdout)
    assert fig2["accepted"] == "0" and fig2["duplicates"] == "40"
    assert fig2["PDFs"] == fig["PDFs"] and len(list((tmp_path / "var" / "invoices").rglob("*.pdf"))) == len(pdfs)


def test_a_bad_tenants_file_fails_at_start_naming_the_key(tmp_path):
    bad = tmp_path / "tenants.yaml"
    bad.write_text("tenants:\n  acme:\n    name: Acme\n    platforms: {books: {provider: quickbook}}\n"
                   "    sources: {'*': {unsigned: true}}\n")
    r = run_cli("db", "upgrade", env={"INVOICER_CONFIG": str(bad), "INVOICER_DATABASE_URL": "sqlite:///x.db"},
                cwd=tmp_path)
    r = run_cli("serve", "--port", "1", env={"INVOICER_CONFIG": str(bad)}, cwd=tmp_path)
    assert r.returncode == 2
    assert "tenants.acme.platforms.books.provider" in r.stderr and "quickbook" in r.stderr
    bad.write_text("tenants:\n  acme:\n    name: Acme\n    platforms: {books: {provider: local}}\n"
                   "    sources: {'*': {secret_env: ACME_SECRET}}\n")
    r = run_cli("serve", "--port", "1", env={"INVOICER_CONFIG": str(bad)}, cwd=tmp_path)
    assert r.returncode == 2 and "ACME_SECRET" in r.stderr
    bad.write_text("tenants:\n  acme:\n    name: Acme\n    trigger: sometimes\n    platforms: {b: {provider: local}}\n"
                   "    sources: {'*': {unsigned: true}}\n")
    r = run_cli("serve", "--port", "1", env={"INVOICER_CONFIG": str(bad)}, cwd=tmp_path)
    assert r.returncode == 2 and "tenants.acme.trigger" in r.stderr


def test_a_bad_setting_names_the_variable(tmp_path):
    r = run_cli("serve", env={"INVOICER_VISIBILITY_TIMEOUT": "soon"}, cwd=tmp_path)
    assert r.returncode == 2 and "visibility_timeout" in r.stderr


def test_providers_lists_the_registry():
    r = run_cli("providers")
    assert r.returncode == 0
    first_words = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    assert "local" in first_words and "create_invoice" in r.stdout and "send_sms" in r.stdout


def test_send_reports_an_unreadable_file(tmp_path):
    r = run_cli("send", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_dlq_settle_needs_an_outcome_and_reports_a_delivery_not_in_review(database):
    from .conftest import TEST_ENV

    r = run_cli("dlq", "settle", "1")
    assert r.returncode == 2 and "--outcome sent or --outcome resend" in r.stderr
    r = run_cli("dlq", "settle", "999999", "--outcome", "sent", env=TEST_ENV)
    assert r.returncode == 1 and "999999: not in review" in r.stderr
    r = run_cli("dlq", "review", env=TEST_ENV)
    assert r.returncode == 0 and "no messages waiting for review" in r.stdout


def test_credentials_set_stores_them_encrypted(database, tmp_path):
    from cryptography.fernet import Fernet

    from .conftest import TEST_ENV

    key = Fernet.generate_key().decode()
    env = {**TEST_ENV, "INVOICER_CREDENTIALS_KEY": key}
    r = subprocess.run([sys.executable, "-m", "invoicer.cli", "credentials", "set", "acme-hvac", "books"],
                       input='{"refresh_token": "rt-1"}', env={**os.environ, **env}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "rt-1" not in r.stdout and "refresh_token" in r.stdout
    os.environ["INVOICER_CREDENTIALS_KEY"] = key
    try:
        from invoicer import db
        from invoicer.credentials import Credentials

        assert Credentials(db.engine(), "acme-hvac", "books").get() == {"refresh_token": "rt-1"}
    finally:
        del os.environ["INVOICER_CREDENTIALS_KEY"]
    bad = subprocess.run([sys.executable, "-m", "invoicer.cli", "credentials", "set", "acme-hvac", "nope"],
                         input="{}", env={**os.environ, **env}, capture_output=True, text=True)
    assert bad.returncode == 2 and "no platform named 'nope'" in bad.stderr


@pytest.mark.slow
def test_sandbox_serves_the_simulators_and_prints_a_tenants_file():
    import signal

    import requests
    import yaml

    proc = subprocess.Popen([sys.executable, "-m", "invoicer.cli", "sandbox"], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("tenants:"):
                break
        for line in proc.stdout:
            if not line.strip():
                break
            lines.append(line)
        text = "".join(lines)
        assert "export INVOICER_CREDENTIALS_KEY=" in text
        tenants = yaml.safe_load(text[text.index("tenants:"):])["tenants"]
        stripe_url = tenants["acme-hvac"]["platforms"]["stripe"]["base_url"]
        r = requests.get(f"{stripe_url}/v1/invoices", timeout=5)
        assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
