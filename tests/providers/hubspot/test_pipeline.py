"""The pipeline with HubSpot as the tenant's only platform, end to end on real workers and the simulator:
the invoice is rendered first, then mirrored into HubSpot (open, our total, line items, contact) with a
note on the contact whose link serves our PDF."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import requests
import yaml
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.credentials import Credentials
from invoicer.providers.hubspot.simulator import HubSpotSimulator
from invoicer.providers.simulate import Running
from tests.conftest import answers, free_port, make_event, wait_for


def test_a_job_reaches_hubspot_after_its_pdf_with_a_note_linking_it(procs, tmp_path, monkeypatch):
    sim = HubSpotSimulator()
    with Running(sim) as hub:
        key = Fernet.generate_key().decode()
        monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", key)
        tenants = {"crm-co": {"name": "CRM Co", "platforms": {"hubspot": sim.platform(hub.url)},
                              "channels": {"customer": ["email"], "finance_emails": []},
                              "sources": {"*": {"unsigned": True}}}}
        path = tmp_path / "tenants.yaml"
        path.write_text(yaml.safe_dump({"tenants": tenants}))
        env = {**sim.env(), "INVOICER_CREDENTIALS_KEY": key, "INVOICER_CONFIG": str(path)}
        Credentials(db.engine(), "crm-co", "hubspot").put(sim.tokens())
        port = free_port()
        procs.start("serve", "--port", str(port), "--log-level", "warning", env=env)
        procs.worker(env=env)
        wait_for(lambda: answers(port, "/readyz"), 30, what="ingress")
        base = f"http://127.0.0.1:{port}"
        r = requests.post(f"{base}/v1/events", json=make_event(tenant="crm-co"), timeout=10)
        assert r.status_code == 202, r.text

        def done():
            s = requests.get(f"{base}/v1/jobs/crm-co/J-1", timeout=10).json()
            return s if s.get("state") in ("done", "failed") else None

        status = wait_for(done, 60, what="the job on HubSpot")
        assert status["state"] == "done", json.dumps(status, indent=1)
        [invoice] = status["invoices"]
        [inv] = sim.objects["invoices"].values()
        props = sim._view("invoices", inv)["properties"]
        assert props["hs_invoice_status"] == "open" and props["invoicer_reference"] == invoice["number"]
        assert Decimal(props["hs_amount_billed"]) == Decimal(invoice["total"]) == Decimal("251.10")
        assert len(sim.lines_of(inv["id"])) == 4 and len(sim.objects["contacts"]) == 1
        [platform] = invoice["platforms"]
        assert platform["external_id"] == inv["id"]

        with db.engine().connect() as conn:  # the PDF was made before HubSpot was called
            rows = {r.kind: r for r in conn.execute(db.deliveries.select())}
        assert rows["pdf"].updated_at <= rows["invoice"].updated_at and rows["invoice"].id > rows["pdf"].id

        [note] = sim.objects["notes"].values()
        link = re.search(r'href="([^"]+)"', note["properties"]["hs_note_body"])[1]
        pdf = requests.get(link.replace("http://127.0.0.1:8000", base), timeout=10)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
