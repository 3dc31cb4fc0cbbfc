"""The pipeline with HubSpot as the tenant's only platform, end to end on real workers and the simulator:
the invoice is rendered first, then mirrored into HubSpot (open, our total, line items, contact) with a
note on the contact whose link serves our PDF."""
from __future__ import annotations

import re
from decimal import Decimal

import requests
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.credentials import Credentials
from invoicer.providers.hubspot.simulator import HubSpotSimulator
from invoicer.providers.simulate import Running
from tests.providers.crm_pipeline import run_job


def test_a_job_reaches_hubspot_after_its_pdf_with_a_note_linking_it(procs, tmp_path, monkeypatch):
    sim = HubSpotSimulator()
    with Running(sim) as hub:
        key = Fernet.generate_key().decode()
        monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", key)
        Credentials(db.engine(), "crm-co", "hubspot").put(sim.tokens())
        status, base = run_job(procs, tmp_path, "crm-co", "hubspot", sim.platform(hub.url),
                               {**sim.env(), "INVOICER_CREDENTIALS_KEY": key})
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
