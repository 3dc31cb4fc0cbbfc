"""Helpers for provider tests: the sample corpus as canonical invoices, without a database."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from invoicer.config import load_tenants
from invoicer.models import Event
from invoicer.pipeline import document

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "events" / "jobs-300.jsonl"
SPECS = Path(__file__).resolve().parents[3] / "shared" / "vendor-specs"
TENANTS = Path(__file__).resolve().parents[1] / "tenants.yaml"


def corpus_docs() -> list[dict]:
    """Every sample event's job as the canonical invoice dict the pipeline hands a provider."""
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not here (the shared folder sits beside the repository)")
    tenants = load_tenants(str(TENANTS))
    issued = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)
    docs = []
    for i, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines()):
        event = Event.model_validate(json.loads(line))
        docs.append(document(event, event.tenant, tenants[event.tenant], f"INV-{i + 1:06d}", issued,
                             event.job.payment_terms_days))
    return docs


def spec(*parts: str) -> Path:
    path = SPECS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared folder sits beside the repository)")
    return path


def run_job(procs, env: dict, tenant: str) -> tuple[str, dict]:
    """Ingress and a worker on `env`, one job (conftest.make_event) for `tenant` until it settles:
    (the ingress's base URL, the job's status)."""
    import requests

    from ..conftest import ADMIN, answers, free_port, make_event, wait_for

    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    procs.worker(env=env)
    wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
    base = f"http://127.0.0.1:{port}"
    assert requests.post(f"{base}/v1/events", json=make_event(tenant=tenant), timeout=10).status_code == 202

    def settled():
        s = requests.get(f"{base}/v1/jobs/{tenant}/J-1", headers=ADMIN, timeout=10).json()
        return s if s.get("state") in ("done", "failed") else None

    status = wait_for(settled, 90, what=f"the job of {tenant}")
    assert status["state"] == "done", status
    return base, status


def pdf_text(base: str, invoice: dict) -> str:
    """The text of an invoice's PDF as the ingress serves it (its signed link points at the public URL)."""
    import io

    import requests
    from pypdf import PdfReader

    pdf = requests.get(invoice["pdf"]["url"].replace("http://127.0.0.1:8000", base), timeout=10)
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages).replace("\n", "")
