"""Contract: what we send to HubSpot and what the simulator answers, checked against HubSpot's own models.

No HubSpot spec can be kept in ../shared (licence); the oracle is the `hubspot-api-client` package, whose
models are generated from HubSpot's OpenAPI documents. Every request body the adapter sends while
invoicing the sample corpus is rebuilt as the package's request model for its endpoint (unknown JSON
names refused at every depth, types checked, required fields and enums validated by the models
themselves); every simulator answer is rebuilt as the package's response model the same way.
"""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.pipeline import Ctx
from invoicer.providers import registry
from invoicer.providers.hubspot import transform as t
from invoicer.providers.hubspot.simulator import HubSpotSimulator
from invoicer.providers.simulate import Running

from .. import corpus_docs
from . import make_doc, options

hubspot = pytest.importorskip("hubspot")
from hubspot.crm.commerce.invoices import models as invoices_models  # noqa: E402
from hubspot.crm.contacts import models as contacts_models  # noqa: E402
from hubspot.crm.line_items import models as line_items_models  # noqa: E402
from hubspot.crm.objects.notes import models as notes_models  # noqa: E402

try:
    from hubspot.crm.associations.v4 import models as assoc_models
except ImportError:  # pragma: no cover - older package layouts
    assoc_models = None

MODULES = {"invoices": invoices_models, "contacts": contacts_models, "line_items": line_items_models,
           "notes": notes_models}
# (method, path pattern) -> (request model, response model); the object type is the path's {kind}
ENDPOINTS = [
    ("POST", r"/crm/v3/objects/(?P<kind>\w+)", "SimplePublicObjectInputForCreate", "SimplePublicObject"),
    ("POST", r"/crm/v3/objects/(?P<kind>\w+)/batch/create", "BatchInputSimplePublicObjectBatchInputForCreate",
     "BatchResponseSimplePublicObject"),
    ("POST", r"/crm/v3/objects/(?P<kind>\w+)/batch/read", "BatchReadInputSimplePublicObjectId",
     "BatchResponseSimplePublicObject"),
    ("POST", r"/crm/v3/objects/(?P<kind>\w+)/search", "PublicObjectSearchRequest",
     "CollectionResponseWithTotalSimplePublicObjectForwardPaging"),
    ("PATCH", r"/crm/v3/objects/(?P<kind>\w+)/\d+", "SimplePublicObjectInput", "SimplePublicObject"),
    ("GET", r"/crm/v3/objects/(?P<kind>\w+)/\d+", None, "SimplePublicObjectWithAssociations"),
]


def build(type_name: str, value, module, where: str = "$"):
    """`value` (parsed JSON) rebuilt as the package's `type_name`; AssertionError/ValueError naming the path."""
    if value is None:
        return None
    inner = re.fullmatch(r"list\[(.+)\]", type_name)
    if inner:
        assert isinstance(value, list), f"{where}: expected a list"
        return [build(inner[1], v, module, f"{where}[{i}]") for i, v in enumerate(value)]
    inner = re.fullmatch(r"dict\(str, (.+)\)|dict\[str, (.+)\]", type_name)
    if inner:
        assert isinstance(value, dict), f"{where}: expected an object"
        return {k: build(inner[1] or inner[2], v, module, f"{where}.{k}") for k, v in value.items()}
    if type_name == "str":
        assert isinstance(value, str), f"{where}: expected a string, got {value!r}"
        return value
    if type_name == "int":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected an integer"
        return value
    if type_name == "bool":
        assert isinstance(value, bool), f"{where}: expected a boolean"
        return value
    if type_name in ("datetime", "date", "object"):
        return value
    cls = getattr(module, type_name)
    assert isinstance(value, dict), f"{where}: expected an object for {type_name}"
    json_to_attr = {j: a for a, j in cls.attribute_map.items()}
    unknown = set(value) - set(json_to_attr)
    assert not unknown, f"{where}: {type_name} has no {sorted(unknown)}"
    kwargs = {json_to_attr[k]: build(cls.openapi_types[json_to_attr[k]], v, module, f"{where}.{k}")
              for k, v in value.items()}
    return cls(**kwargs)  # the model's own validation: required fields and enums


def endpoint(method: str, path: str):
    for m, pattern, request_model, response_model in ENDPOINTS:
        match = re.fullmatch(pattern, path)
        if m == method and match and match["kind"] in MODULES:
            return MODULES[match["kind"]], request_model, response_model
    return None


@pytest.fixture(scope="module")
def running():
    with Running(HubSpotSimulator(per_10s=190)) as r:
        yield r


@pytest.fixture
def invoiced(clean, running, tmp_path, monkeypatch):
    """The adapter has invoiced a sample of the corpus (and a retried one, and one with a note)."""
    running.sim.reset()
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("HS_TOKEN", "pat-na1-sim-token")
    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, tenant="acme-hvac", platform="crm")
    HubSpot = registry.get("hubspot")
    provider = HubSpot(options(running.url, token_env="HS_TOKEN", note=True, rate_per_10s=190), ctx)
    docs = corpus_docs()[::30]
    for i, doc in enumerate(docs):
        provider.create_invoice({**doc, "pdf": {"link": f"https://x.example/{i}"}}, f"key-{i}")
    retry = HubSpot(options(running.url, token_env="HS_TOKEN", note=True, rate_per_10s=190), Ctx(
        engine=db.engine(), var_dir=tmp_path, attempt=2, tenant="acme-hvac", platform="crm"))
    doc = make_doc(number="RETRY-1", pdf_link="https://x.example/r")
    running.sim.fault_on("PATCH", r"/crm/v3/objects/invoices/\d+", "500")
    with pytest.raises(Exception):
        provider.create_invoice(doc, "key-r")
    retry.find_invoice(doc, "key-r")
    return SimpleNamespace(sim=running.sim, docs=docs)


def test_every_request_is_a_valid_hubspot_request_model_and_every_total_ours(invoiced):
    seen = set()
    for r in invoiced.sim.received:
        found = endpoint(r.method, r.path)
        if r.method == "GET" and "/associations/" in r.path:
            seen.add("associations")
            continue
        assert found, f"{r.method} {r.path} is not an endpoint the contract covers"
        module, request_model, _ = found
        if request_model:
            build(request_model, r.json(), module, f"{r.method} {r.path}")
            seen.add(request_model)
    assert {"SimplePublicObjectInputForCreate", "BatchInputSimplePublicObjectBatchInputForCreate",
            "PublicObjectSearchRequest", "SimplePublicObjectInput", "BatchReadInputSimplePublicObjectId",
            "associations"} <= seen
    # and every sample invoice is open in HubSpot with HubSpot's own total equal to ours
    by_ref = {inv["properties"][t.REFERENCE]: inv for inv in invoiced.sim.objects["invoices"].values()}
    for doc in invoiced.docs:
        view = invoiced.sim._view("invoices", by_ref[doc["number"]])
        assert view["properties"]["hs_invoice_status"] == "open"
        assert t.amount(view["properties"]["hs_amount_billed"]) == doc["total"], doc["number"]


def test_every_simulator_answer_is_a_valid_hubspot_response_model(clean, running, tmp_path, monkeypatch):
    import requests

    running.sim.reset()
    monkeypatch.setenv("HS_TOKEN", "pat-na1-sim-token")
    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, tenant="acme-hvac", platform="crm")
    registry.get("hubspot")(options(running.url, token_env="HS_TOKEN"), ctx).create_invoice(
        make_doc(number="RETRY-1"), "key-1")
    auth = {"Authorization": "Bearer pat-na1-sim-token"}
    invoiced = SimpleNamespace(sim=running.sim)
    inv = next(iter(invoiced.sim.objects["invoices"].values()))
    checks = [("GET", f"/crm/v3/objects/invoices/{inv['id']}", None),
              ("POST", "/crm/v3/objects/invoices/search", t.search_eq(t.REFERENCE, "RETRY-1")),
              ("POST", "/crm/v3/objects/line_items/batch/read",
               {"inputs": [{"id": i} for i in invoiced.sim.associated("invoices", inv["id"], "line_items")],
                "properties": ["price"]}),
              ("POST", "/crm/v3/objects/contacts", t.contact_body({"id": "X", "name": "Ann Lee", "email": "a@x.example"})),
              ("PATCH", f"/crm/v3/objects/invoices/{inv['id']}", {"properties": {"hs_comments": "x"}})]
    for method, path, body in checks:
        resp = requests.request(method, running.url + path, json=body, headers=auth, timeout=5)
        assert resp.status_code < 300, resp.text
        module, _, response_model = endpoint(method, path)
        build(response_model, resp.json(), module, f"answer to {method} {path}")
    if assoc_models is not None:
        resp = requests.get(f"{running.url}/crm/v4/objects/invoices/{inv['id']}/associations/line_items",
                            headers=auth, timeout=5)
        build("CollectionResponseMultiAssociatedObjectWithLabelForwardPaging", resp.json(), assoc_models)


def test_error_bodies_have_hubspots_error_shape(running):
    import requests

    running.sim.reset()
    resp = requests.post(f"{running.url}/crm/v3/objects/invoices", json={"properties": {"nope": "1"}},
                         headers={"Authorization": "Bearer pat-na1-sim-token"}, timeout=5)
    assert resp.status_code == 400
    body = dict(resp.json())
    body.pop("status")  # HubSpot sends "status": "error" beside the documented Error fields
    error = build("Error", body, invoices_models)
    assert error.category == "VALIDATION_ERROR" and error.errors[0].code == "PROPERTY_DOESNT_EXIST"
