"""Helper for the CRM pipeline tests: one job through real workers for a tenant on one simulated platform."""
from __future__ import annotations

import json

import requests
import yaml

from tests.conftest import answers, free_port, make_event, wait_for


def run_job(procs, tmp_path, tenant: str, name: str, platform: dict, env: dict) -> tuple[dict, str]:
    """Start the ingress and a worker for a tenant whose only platform is `platform`, post one job, wait
    until it is done; (the job's status, the ingress base URL)."""
    tenants = {tenant: {"name": tenant, "platforms": {name: platform},
                        "channels": {"customer": ["email"], "finance_emails": []},
                        "sources": {"*": {"unsigned": True}}}}
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": tenants}))
    env = {**env, "INVOICER_CONFIG": str(path)}
    port = free_port()
    procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
    procs.worker(env=env)
    procs.start("beat", "--log-level", "warning", env=env)  # the sweep re-drives a step whose message was lost
    wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
    base = f"http://127.0.0.1:{port}"
    r = requests.post(f"{base}/v1/events", json=make_event(tenant=tenant), timeout=10)
    assert r.status_code == 202, r.text

    def done():
        s = requests.get(f"{base}/v1/jobs/{tenant}/J-1", timeout=10).json()
        return s if s.get("state") in ("done", "failed") else None

    try:
        status = wait_for(done, 60, what=f"the job on {name}")
    except AssertionError as exc:  # say where it stood
        last = requests.get(f"{base}/v1/jobs/{tenant}/J-1", timeout=10).json()
        raise AssertionError(f"{exc}: {json.dumps(last, indent=1)[:3000]}") from None
    assert status["state"] == "done", json.dumps(status, indent=1)
    return status, base
