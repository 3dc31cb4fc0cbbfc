"""The Salesforce adapter over real HTTP against SalesforceSimulator, with real PostgreSQL and Redis for
the context; assertions on the org's side (what the simulator stored)."""
from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from invoicer import db
from invoicer.errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.salesforce import adapter as sf_adapter
from invoicer.providers.salesforce.simulator import SalesforceSimulator
from invoicer.providers.simulate import Running

from . import ENTRIES, make_doc, options, order_options, workorder_options

Salesforce = registry.get("salesforce")
KEY = "s" * 48
PDF = b"%PDF-1.7 invoice bytes"


@pytest.fixture(scope="module")
def running():
    with Running(SalesforceSimulator()) as r:
        r.sim.url = r.url
        yield r


@pytest.fixture
def org(clean, running, tmp_path, monkeypatch):
    running.sim.reset()
    sf_adapter._tokens.clear()  # tokens and usage are cached per process: start each test afresh
    sf_adapter._usage.clear()
    for k, v in running.sim.env().items():
        monkeypatch.setenv(k, v)

    def provider(attempt: int = 1, order: bool = False, workorder: bool = False, **extra):
        opts = (order_options(running.url, **extra) if order else
                workorder_options(running.url, **extra) if workorder else options(running.url, **extra))
        return Salesforce(opts, Ctx(engine=db.engine(), var_dir=tmp_path, attempt=attempt, tenant="acme-hvac",
                                    platform="crm"))

    return SimpleNamespace(sim=running.sim, url=running.url, provider=provider)


def doc_with_pdf(**kw):
    doc = make_doc(**kw)
    doc["pdf"] = {"filename": f"{doc['number']}.pdf", "data": PDF, "link": None}
    return doc


def calls(sim, method=None, suffix=""):
    return [r for r in sim.received if r.path.startswith("/services/data/") and (method is None or r.method == method)
            and r.path.endswith(suffix)]


# ---------------------------------------------------------------- the custom object

def test_registered_as_a_crm_that_takes_the_pdf():
    assert {"create_invoice", "find_invoice", "attach_pdf"} <= Salesforce.capabilities
    assert "payment_link" not in Salesforce.capabilities


def test_create_upserts_invoice_lines_and_account_in_one_composite_and_attaches_the_pdf(org):
    created = org.provider().create_invoice(doc_with_pdf(), KEY)
    [inv] = org.sim.records["Invoice__c"].values()
    assert created.external_id == inv["Id"] and created.number == "ACME-1001"
    assert inv["Invoicer_Reference__c"] == "ACME-1001" and inv["Total__c"] == Decimal("251.10")
    assert created.detail["total"] == "251.10" and created.url.endswith(f"/lightning/r/Invoice__c/{inv['Id']}/view")
    [account] = org.sim.records["Account"].values()
    assert inv["Account__c"] == account["Id"] and account["Invoicer_Customer_Id__c"] == "C-1"
    lines = org.sim.children("Invoice_Line__c", "Invoice__c", inv["Id"])
    assert len(lines) == 5 and sum(x["Amount__c"] for x in lines) == inv["Total__c"]
    [cv] = org.sim.records["ContentVersion"].values()
    assert cv["FirstPublishLocationId"] == inv["Id"] and cv["Title"] == "Invoice ACME-1001"
    assert org.sim.files[cv["Id"]] == PDF and created.detail["content_version"] == cv["Id"]
    assert [r.path.rsplit("/", 1)[-1] for r in calls(org.sim)] == ["composite", "query", "ContentVersion"]
    assert created.detail["api_usage"] == "3/15000"
    composite = calls(org.sim, "POST", "/composite")[0]
    assert b"251.10" in composite.body and composite.headers["authorization"].startswith("Bearer 00D")


def test_a_second_run_updates_the_same_records_and_attaches_nothing_again(org):
    first = org.provider().create_invoice(doc_with_pdf(), KEY)
    again = org.provider(attempt=2).create_invoice(doc_with_pdf(), KEY)
    assert again.external_id == first.external_id
    assert len(org.sim.records["Invoice__c"]) == 1 and len(org.sim.records["Invoice_Line__c"]) == 5
    assert len(org.sim.records["ContentVersion"]) == 1 and again.detail["content_version"] == \
        first.detail["content_version"]


def test_dropped_composite_then_the_retry_finds_and_completes_it(org):
    org.sim.fault_on("POST", r".*/composite", "drop")
    with pytest.raises(OutcomeUnknown):
        org.provider().create_invoice(doc_with_pdf(), KEY)
    assert len(org.sim.records["Invoice__c"]) == 1 and org.sim.records["ContentVersion"] == {}
    found = org.provider(attempt=2).find_invoice(doc_with_pdf(), KEY)
    assert found.external_id in org.sim.records["Invoice__c"] and len(org.sim.records["ContentVersion"]) == 1
    assert len(org.sim.records["Invoice_Line__c"]) == 5


def test_dropped_pdf_upload_is_not_uploaded_twice(org):
    org.sim.fault_on("POST", r".*/sobjects/ContentVersion", "drop")
    with pytest.raises(OutcomeUnknown):
        org.provider().create_invoice(doc_with_pdf(), KEY)
    org.provider(attempt=2).find_invoice(doc_with_pdf(), KEY)
    assert len(org.sim.records["ContentVersion"]) == 1


def test_find_returns_none_when_nothing_was_made(org):
    assert org.provider(attempt=2).find_invoice(doc_with_pdf(), KEY) is None
    assert org.sim.records["Invoice__c"] == {}


def test_many_lines_go_in_several_composites(org):
    materials = [{"sku": f"S{i}", "description": f"Part {i}", "quantity": "2", "unit_price": "1.25",
                  "taxable": True} for i in range(30)]
    created = org.provider().create_invoice(make_doc(materials=materials), KEY)
    assert len(calls(org.sim, "POST", "/composite")) == 2
    assert len(org.sim.children("Invoice_Line__c", "Invoice__c", created.external_id)) == 34


def test_a_total_field_too_coarse_for_the_currency_is_refused(org):
    org.sim.schema["Invoice__c"]["Total__c"]["scale"] = 2
    doc = make_doc(currency="KWD", labor=[], materials=[], discounts=[],
                   fees=[{"description": "Visit", "amount": "25.125", "taxable": False}])
    with pytest.raises(Rejected, match="Total__c 25.13 KWD, ours is 25.125"):
        org.provider().create_invoice(doc, KEY)


def test_a_required_field_the_org_added_is_named(org):
    org.sim.schema["Invoice__c"]["Approver__c"] = {"type": "text", "required": True, "scale": None,
                                                   "external": False, "to": None, "relationship": None,
                                                   "readonly": False}
    with pytest.raises(Rejected, match="required field\\(s\\) missing: Approver__c"):
        org.provider().create_invoice(make_doc(), KEY)
    assert org.sim.records["Invoice__c"] == {} and org.sim.records["Account"] == {}  # all or none


def test_an_external_id_matching_two_records_is_rejected(org):
    org.provider().create_invoice(make_doc(), KEY)
    [inv] = org.sim.records["Invoice__c"].values()
    org.sim.records["Invoice__c"]["a0A5jDUPLICATEAAA"] = {**inv, "Id": "a0A5jDUPLICATEAAA"}
    with pytest.raises(Rejected, match="several records|300"):
        org.provider(attempt=2).find_invoice(make_doc(), KEY)


# ---------------------------------------------------------------- Order / OrderItem

def test_order_with_order_items_whose_total_salesforce_computes(org):
    created = org.provider(order=True).create_invoice(doc_with_pdf(), KEY)
    [order] = org.sim.records["Order"].values()
    assert created.external_id == order["Id"] and order["TotalAmount"] == Decimal("251.10")
    assert order["Status"] == "Draft" and order["Pricebook2Id"] == "01sSIMPRICEBOOK"
    items = org.sim.children("OrderItem", "OrderId", order["Id"])
    assert len(items) == 5 and {i["PricebookEntryId"] for i in items} == org.sim.pricebook_entries
    assert len(org.sim.records["ContentVersion"]) == 1


def test_order_with_an_entry_the_price_book_lacks_is_rejected(org):
    with pytest.raises(Rejected, match="FIELD_INTEGRITY_EXCEPTION"):
        org.provider(order=True, pricebook_entries={"labor": "01uNOPE", "material": "x", "fee": "x",
                                                    "discount": "x", "tax": "x"}).create_invoice(make_doc(), KEY)
    assert org.sim.records["Order"] == {}


def test_order_without_its_mapping_fails_before_any_call(org):
    with pytest.raises(MappingMissing, match="pricebook_entries.tax"):
        org.provider(order=True, pricebook_entries={"labor": "a", "material": "b", "fee": "c",
                                                    "discount": "d"}).create_invoice(make_doc(), KEY)
    assert org.sim.received == []


# ---------------------------------------------------------------- WorkOrder / WorkOrderLineItem

def test_workorder_with_line_items_whose_total_salesforce_computes(org):
    created = org.provider(workorder=True).create_invoice(doc_with_pdf(), KEY)
    [wo] = org.sim.records["WorkOrder"].values()
    assert created.external_id == wo["Id"] and wo["Invoicer_Reference__c"] == "ACME-1001"
    assert wo["TotalPrice"] == Decimal("251.10") and created.detail["total"] == "251.10"
    assert created.number == wo["WorkOrderNumber"] and wo["Status"] == "New"  # Salesforce's own number
    assert created.url.endswith(f"/lightning/r/WorkOrder/{wo['Id']}/view") and created.detail["object"] == "WorkOrder"
    [account] = org.sim.records["Account"].values()
    assert wo["AccountId"] == account["Id"] and wo["Pricebook2Id"] == "01sSIMPRICEBOOK"
    items = org.sim.children("WorkOrderLineItem", "WorkOrderId", wo["Id"])
    assert [i["Invoicer_Line_Reference__c"] for i in items] == [f"ACME-1001:{n}" for n in range(1, 6)]
    assert {i["PricebookEntryId"] for i in items} == org.sim.pricebook_entries
    [cv] = org.sim.records["ContentVersion"].values()
    assert cv["FirstPublishLocationId"] == wo["Id"] and org.sim.files[cv["Id"]] == PDF
    assert [r.path.rsplit("/", 1)[-1] for r in calls(org.sim)] == ["composite", "query", "ContentVersion"]


def test_workorder_retries_update_the_same_records(org):
    org.sim.fault_on("POST", r".*/composite", "drop")  # made, but the answer is lost
    with pytest.raises(OutcomeUnknown):
        org.provider(workorder=True).create_invoice(doc_with_pdf(), KEY)
    found = org.provider(attempt=2, workorder=True).find_invoice(doc_with_pdf(), KEY)
    again = org.provider(attempt=3, workorder=True).create_invoice(doc_with_pdf(), KEY)
    assert found.external_id == again.external_id and list(org.sim.records["WorkOrder"]) == [found.external_id]
    assert len(org.sim.records["WorkOrderLineItem"]) == 5 and len(org.sim.records["ContentVersion"]) == 1
    assert org.sim.records["WorkOrder"][found.external_id]["TotalPrice"] == Decimal("251.10")


def test_workorder_with_an_entry_the_price_book_lacks_is_rejected_and_rolled_back(org):
    entries = {"labor": "01uNOPE", "material": "x", "fee": "x", "discount": "x", "tax": "x"}
    with pytest.raises(Rejected, match="FIELD_INTEGRITY_EXCEPTION"):
        org.provider(workorder=True, pricebook_entries=entries).create_invoice(make_doc(), KEY)
    assert org.sim.records["WorkOrder"] == {} and org.sim.records["Account"] == {}


# ---------------------------------------------------------------- auth, limits

def test_an_expired_session_gets_a_new_token_once(org):
    org.provider().create_invoice(make_doc(), KEY)
    assert org.sim.token_calls == 1
    org.sim.expire_sessions()
    org.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)
    assert org.sim.token_calls == 2 and len(org.sim.records["Invoice__c"]) == 2


def test_wrong_client_secret_is_auth_failed(org, monkeypatch):
    monkeypatch.setenv("INVOICER_SALESFORCE_CLIENT_SECRET", "nope")
    with pytest.raises(AuthFailed, match="invalid_client"):
        org.provider().create_invoice(make_doc(), KEY)


def test_missing_client_id_names_the_variable(org, monkeypatch):
    monkeypatch.delenv("INVOICER_SALESFORCE_CLIENT_ID")
    with pytest.raises(MappingMissing, match="INVOICER_SALESFORCE_CLIENT_ID"):
        org.provider().create_invoice(make_doc(), KEY)


def test_jwt_bearer_flow(org, monkeypatch):
    created = org.provider(auth="jwt", username=org.sim.username).create_invoice(make_doc(), KEY)
    assert created.external_id in org.sim.records["Invoice__c"]
    [token] = [r for r in org.sim.received if r.path == "/services/oauth2/token"]
    assert b"jwt-bearer" in token.body and b"client_secret" not in token.body
    sf_adapter._tokens.clear()
    with pytest.raises(AuthFailed, match="invalid_grant"):
        org.provider(auth="jwt", username="someone.else@acme.example").create_invoice(make_doc(), KEY)


def test_request_limit_exceeded_is_rate_limited(org):
    org.sim.fault_on("POST", r".*/composite", "429")  # Salesforce answers with 403 REQUEST_LIMIT_EXCEEDED
    with pytest.raises(RateLimited, match="REQUEST_LIMIT_EXCEEDED") as err:
        org.provider().create_invoice(make_doc(), KEY)
    assert err.value.retry_after == 3600


def test_it_stops_early_near_the_daily_cap(org):
    org.sim.used = 13499  # of 15000: the next answer says 13500/15000, 90 %
    org.provider().create_invoice(make_doc(), KEY)  # one composite, then no PDF to attach
    with pytest.raises(RateLimited, match="13500 of its 15000"):
        org.provider().create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)
    assert org.sim.used == 13500  # nothing more was sent
    assert org.provider(stop_at=0.95).create_invoice(make_doc(number="ACME-1002", job_id="J-2"), "k2" * 24)


def test_check_options_names_the_keys():
    assert Salesforce.check_options({"object": "order", "pricebook_entries": {"labor": "x"}}, "crm")[:2] == [
        "platforms.crm.pricebook_id: the Pricebook2 id for Order is not set",
        "platforms.crm.pricebook_entries.material is not set"]
    assert Salesforce.check_options({"auth": "jwt"}, "crm") == [
        "platforms.crm.username: the user the JWT bearer flow acts as is not set"]
    assert Salesforce.check_options({"object": "workorder", "pricebook_entries": dict(ENTRIES)}, "crm") == [
        "platforms.crm.pricebook_id: the Pricebook2 id for WorkOrder is not set"]
    assert Salesforce.check_options({"object": "case"}, "crm") == [
        "platforms.crm.object: 'custom', 'order' or 'workorder', not 'case'"]
    assert Salesforce.check_options({}, "crm") == []
