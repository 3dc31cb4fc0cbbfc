"""Helper for the CRM pipeline tests: one job through real workers for a tenant whose only platform is
one sandbox simulator (invoicer.sandbox: the provider's SIMULATOR hook gives the entry, env and tokens)."""
from __future__ import annotations

import json
from contextlib import contextmanager

import requests

from invoicer import db
from tests.conftest import ADMIN, answers, free_port, make_event, wait_for


@contextmanager
def job_on(slug: str, procs, tmp_path, monkeypatch):
    """Yield (the job's final status, the ingress base URL, the simulator) once the job is done."""
    from invoicer import sandbox

    box = sandbox.start([slug])
    try:
        for k, v in box.env.items():
            monkeypatch.setenv(k, v)  # the credentials key, for seeding tokens from this process
        tenant = f"{slug}-co"
        tenants = {tenant: box.tenant(f"{slug} Co", slug, channels={"customer": ["email"], "finance_emails": []})}
        path = tmp_path / "tenants.yaml"
        path.write_text(box.tenants_yaml(tenants))
        box.seed(db.engine(), tenants)
        env = {**box.env, "INVOICER_CONFIG": str(path)}
        port = free_port()
        procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
        procs.worker(env=env)
        procs.start("beat", "--log-level", "warning", env=env)  # the sweep re-drives a step whose message was lost
        wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
        base = f"http://127.0.0.1:{port}"
        r = requests.post(f"{base}/v1/events", json=make_event(tenant=tenant), timeout=10)
        assert r.status_code == 202, r.text

        def done():
            s = requests.get(f"{base}/v1/jobs/{tenant}/J-1", headers=ADMIN, timeout=10).json()
            return s if s.get("state") in ("done", "failed") else None

        try:
            status = wait_for(done, 60, what=f"the job on {slug}")
        except AssertionError as exc:  # say where it stood
            last = requests.get(f"{base}/v1/jobs/{tenant}/J-1", headers=ADMIN, timeout=10).json()
            raise AssertionError(f"{exc}: {json.dumps(last, indent=1)[:3000]}") from None
        assert status["state"] == "done", json.dumps(status, indent=1)
        yield status, base, box[slug].sim
    finally:
        box.stop()
