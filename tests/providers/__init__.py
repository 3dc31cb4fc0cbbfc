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
