"""The pipeline with Salesforce as the tenant's only platform, end to end on real workers and the sandbox's
simulator: the invoice is rendered first, then upserted into the org (custom object, lines, account) and
our PDF attached to the record, byte for byte the one the customer was sent."""
from __future__ import annotations

from decimal import Decimal

import requests

from tests.providers.crm_pipeline import job_on


def test_a_job_reaches_salesforce_with_its_pdf_attached(procs, tmp_path, monkeypatch):
    with job_on("salesforce", procs, tmp_path, monkeypatch) as (status, base, sim):
        [invoice] = status["invoices"]
        [record] = sim.records["Invoice__c"].values()
        assert record["Invoicer_Reference__c"] == invoice["number"]
        assert record["Total__c"] == Decimal(invoice["total"]) == Decimal("251.10")
        assert len(sim.children("Invoice_Line__c", "Invoice__c", record["Id"])) == 5
        [platform] = invoice["platforms"]
        assert platform["external_id"] == record["Id"]
        [cv] = sim.records["ContentVersion"].values()
        assert cv["FirstPublishLocationId"] == record["Id"]
        pdf = requests.get(invoice["pdf"]["url"].replace("http://127.0.0.1:8000", base), timeout=10)
        assert pdf.status_code == 200 and sim.files[cv["Id"]] == pdf.content
