"""The pipeline with HubSpot as the tenant's only platform, end to end on real workers and the sandbox's
simulator: the invoice is rendered first, then mirrored into HubSpot (open, our total, line items,
contact) with a note on the contact whose link serves our PDF."""
from __future__ import annotations

import re
from decimal import Decimal

import requests

from invoicer import db
from tests.providers.crm_pipeline import job_on


def test_a_job_reaches_hubspot_after_its_pdf_with_a_note_linking_it(procs, tmp_path, monkeypatch):
    with job_on("hubspot", procs, tmp_path, monkeypatch) as (status, base, sim):
        [invoice] = status["invoices"]
        [inv] = sim.objects["invoices"].values()
        props = sim._view("invoices", inv)["properties"]
        assert props["hs_invoice_status"] == "open" and props["invoicer_reference"] == invoice["number"]
        assert Decimal(props["hs_amount_billed"]) == Decimal(invoice["total"]) == Decimal("251.10")
        assert len(sim.lines_of(inv["id"])) == 4 and len(sim.objects["contacts"]) == 1
        [platform] = invoice["platforms"]
        assert platform["external_id"] == inv["id"]
        assert sim.token_calls == 0  # the seeded OAuth tokens were used

        with db.engine().connect() as conn:  # the PDF was made before HubSpot was called
            rows = {r.kind: r for r in conn.execute(db.deliveries.select())}
        assert rows["pdf"].updated_at <= rows["invoice"].updated_at and rows["invoice"].id > rows["pdf"].id

        [note] = sim.objects["notes"].values()
        link = re.search(r'href="([^"]+)"', note["properties"]["hs_note_body"])[1]
        pdf = requests.get(link.replace("http://127.0.0.1:8000", base), timeout=10)
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
