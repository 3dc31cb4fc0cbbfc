"""ServiceTitan contract: every path the adapter calls is in the v2 definitions in ../shared/vendor-specs, and
the InvoiceUpdateRequest we send validates against its schema (types, and no field it does not declare)."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from invoicer.providers import openapi
from invoicer.providers.jsonmoney import dumps
from invoicer.providers.servicetitan import transform as t

SPECS = openapi.SPECS / "servicetitan"
USED = {("tenant-jpm-v2.yml", "get", "/jpm/v2/tenant/{tenant}/jobs/{id}"),
        ("tenant-crm-v2.yml", "get", "/crm/v2/tenant/{tenant}/customers/{id}"),
        ("tenant-crm-v2.yml", "get", "/crm/v2/tenant/{tenant}/customers/{id}/contacts"),
        ("tenant-crm-v2.yml", "get", "/crm/v2/tenant/{tenant}/locations/{id}"),
        ("tenant-accounting-v2.yml", "get", "/accounting/v2/tenant/{tenant}/invoices"),
        ("tenant-accounting-v2.yml", "patch", "/accounting/v2/tenant/{tenant}/invoices/{id}"),
        ("tenant-accounting-v2.yml", "delete", "/accounting/v2/tenant/{tenant}/invoices/{invoiceId}/items/{itemId}")}


def spec(name: str) -> dict:
    path = SPECS / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared folder sits beside the repository)")
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def test_every_path_we_call_is_in_the_definitions():
    for name, method, path in USED:
        assert method in spec(name)["paths"][path], (name, method, path)
    params = [p["name"] for p in spec("tenant-accounting-v2.yml")["paths"]["/accounting/v2/tenant/{tenant}/invoices"]
              ["get"]["parameters"]]
    assert "jobId" in params


def test_our_invoice_update_request_validates():
    spec("tenant-accounting-v2.yml")
    doc = {"lines": [{"description": "Labour", "quantity": Decimal("2"), "unit_price": Decimal("95.00")},
                     {"description": "Motor", "quantity": Decimal("1"), "unit_price": Decimal("45.50")}],
           "discount_total": Decimal("10.00"), "subtotal": Decimal("235.50"), "tax": {"amount": Decimal("3.64")},
           "job": {"summary": "Replaced blower motor"}}
    body, stale = t.update_request(doc, [{"id": 11, "order": 0}, {"id": 12, "order": 1}, {"id": 13, "order": 2},
                                         {"id": 14, "order": 3}])
    assert [i.get("id") for i in body["items"]] == [11, 12, 13] and stale == [14]
    sent = json.loads(dumps(body), parse_float=Decimal)  # as it goes on the wire: exact numbers
    path, schema = str(SPECS / "tenant-accounting-v2.yml"), "Accounting.V2.InvoiceUpdateRequest"
    assert openapi.errors(openapi.validator(path, schema), sent) == []
    assert openapi.unknown(path, schema, sent) == []
