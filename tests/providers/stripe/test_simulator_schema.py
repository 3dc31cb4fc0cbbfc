"""The simulator refuses what Stripe would refuse, judged by the stripe package's own parameter types.

Over real HTTP: a plain `requests.post` of form data (no adapter) against the served StripeSimulator
gets Stripe's 400 body for an unknown parameter and for badly typed values, on every endpoint it serves;
and every request the real adapter makes while creating and sending an invoice passes the same check.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from urllib.parse import urlencode

import pytest
import requests
from cryptography.fernet import Fernet

from invoicer import db
from invoicer.errors import Unavailable
from invoicer.pipeline import Ctx
from invoicer.providers.simulate import Request, Running
from invoicer.providers.stripe import schema
from invoicer.providers.stripe import simulator as simulator_module
from invoicer.providers.stripe.adapter import Stripe
from invoicer.providers.stripe.simulator import StripeSimulator

from . import doc_for

pytest.importorskip("stripe")

KEY = "sk_test_51SimulatedKeyForSchemaTests"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Spy:
    """Wraps the simulator's checker; records (operation, params, problems) of every call."""

    def __init__(self, check):
        self.check = check
        self.calls: list[tuple[str, dict, list]] = []

    def __call__(self, operation, params):
        found = self.check(operation, params)
        self.calls.append((operation, params, list(found)))
        return found


@pytest.fixture(scope="module")
def served():
    with Running(StripeSimulator(api_keys=(KEY,))) as running:
        yield running


@pytest.fixture
def sim(served):
    served.sim.reset()
    served.sim.spec = spy = Spy(schema.validator())
    yield served
    served.sim.spec = spy.check


def post(sim, path: str, data: dict | list) -> requests.Response:
    return requests.post(f"{sim.url}{path}", data=data, headers=AUTH, timeout=5)


def refused(resp: requests.Response, message: str, param: str) -> dict:
    """Stripe's 400 invalid_request_error, naming the parameter."""
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert {k: error.get(k) for k in ("type", "message", "param")} == \
        {"type": "invalid_request_error", "message": message, "param": param}
    assert set(resp.json()) == {"error"} and set(error) <= {"type", "message", "param", "code", "doc_url"}
    return error


def customer(sim) -> str:
    resp = post(sim, "/v1/customers", {"name": "Huong", "email": "huong@example.com"})
    assert resp.status_code == 200, resp.text
    return resp.json()["id"]


def draft(sim, cid: str) -> str:
    resp = post(sim, "/v1/invoices", {"customer": cid, "collection_method": "send_invoice", "days_until_due": "30"})
    assert resp.status_code == 200, resp.text
    return resp.json()["id"]


def test_the_served_simulator_checks_against_the_stripe_package():
    assert StripeSimulator().spec is schema.validator() is not None
    assert StripeSimulator(spec=True).spec is schema.validator()
    assert StripeSimulator(spec=False).spec is None


def test_an_unknown_parameter_is_refused_with_stripes_body(sim):
    cid = customer(sim)
    resp = post(sim, "/v1/invoices", {"customer": cid, "collection_method": "send_invoice", "days_until_due": "30",
                                      "days_due": "30"})
    error = refused(resp, "Received unknown parameter: days_due", "days_due")
    assert error["code"] == "parameter_unknown"
    assert error["doc_url"] == "https://stripe.com/docs/error-codes/parameter-unknown"
    assert sim.sim.invoices == {}  # nothing was created
    assert sim.sim.spec.calls[-1][0] == "invoices.create"
    assert sim.sim.spec.calls[-1][2] == ["Received unknown parameter: days_due"]
    # at any depth, by its bracketed name, where the simulator's own name lists do not look
    nested = post(sim, "/v1/customers", {"name": "A", "address[line1]": "1 Elm", "address[planet]": "Mars"})
    refused(nested, "Received unknown parameter: address[planet]", "address[planet]")
    assert list(sim.sim.customers) == [cid]


def test_a_non_integer_days_until_due_is_refused(sim):
    cid = customer(sim)
    for value in ("ten", "1.5", ""):
        resp = post(sim, "/v1/invoices", {"customer": cid, "collection_method": "send_invoice",
                                          "days_until_due": value})
        error = refused(resp, f"Invalid integer: {value}", "days_until_due")
        assert error["code"] == "parameter_invalid_integer"
        operation, params, found = sim.sim.spec.calls[-1]  # refused by the spec check, before the endpoint
        assert (operation, params["days_until_due"], found) == ("invoices.create", value, [f"Invalid integer: {value}"])
    assert sim.sim.invoices == {}


def test_every_post_the_simulator_serves_is_checked(sim):
    cid = customer(sim)
    iid = draft(sim, cid)
    refused(post(sim, "/v1/customers", {"name": "B", "tax_exempt": "sometimes"}),
            "Invalid tax_exempt: must be one of exempt, none, or reverse", "tax_exempt")
    refused(post(sim, "/v1/invoices", {"customer": cid, "collection_method": "email"}),
            "Invalid collection_method: must be one of charge_automatically or send_invoice", "collection_method")
    refused(post(sim, "/v1/invoices", {"customer": cid, "auto_advance": "yes"}),
            "Invalid boolean: yes", "auto_advance")
    refused(post(sim, "/v1/invoices", {"customer": cid, "custom_fields[0][name]": "PO"}),
            "Missing required param: custom_fields[0][value].", "custom_fields[0][value]")
    refused(post(sim, "/v1/invoiceitems", {"customer": cid, "invoice": iid, "amount": "12.50"}),
            "Invalid integer: 12.50", "amount")
    refused(post(sim, "/v1/invoiceitems", {"customer": cid, "invoice": iid, "unit_amount": "1250"}),
            "Received unknown parameter: unit_amount", "unit_amount")
    refused(post(sim, "/v1/invoiceitems", {"customer": cid, "invoice": iid, "amount": "100", "period[start]": "x",
                                           "period[end]": "1"}),
            "Invalid integer: x", "period[start]")
    assert sim.sim.items == {}
    refused(post(sim, f"/v1/invoices/{iid}/finalize", {"auto_advance": "maybe"}), "Invalid boolean: maybe",
            "auto_advance")
    refused(post(sim, f"/v1/invoices/{iid}/finalize", {"auto_advance": "false", "send": "true"}),
            "Received unknown parameter: send", "send")
    assert sim.sim.invoices[iid]["status"] == "draft"
    refused(post(sim, f"/v1/invoices/{iid}/send", {"expand": "lines"}), "Invalid array", "expand")
    refused(post(sim, f"/v1/invoices/{iid}/send", {"to": "huong@example.com"}), "Received unknown parameter: to", "to")
    # parameters are judged before the object is looked up, as Stripe does
    refused(post(sim, "/v1/invoices/in_missing/send", {"to": "x"}), "Received unknown parameter: to", "to")
    assert {op for op, _, _ in sim.sim.spec.calls} == {"customers.create", "invoices.create", "invoiceitems.create",
                                                       "invoices.finalize_invoice", "invoices.send_invoice"}
    assert sim.sim.sent == []


def test_query_strings_are_checked_too(sim):
    resp = requests.get(f"{sim.url}/v1/invoices", params={"colour": "red"}, headers=AUTH, timeout=5)
    refused(resp, "Received unknown parameter: colour", "colour")
    resp = requests.get(f"{sim.url}/v1/invoices/search", params={"limit": "10"}, headers=AUTH, timeout=5)
    refused(resp, "Missing required param: query.", "query")
    resp = requests.get(f"{sim.url}/v1/invoiceitems", params={"limit": "ten"}, headers=AUTH, timeout=5)
    refused(resp, "Invalid integer: ten", "limit")


def test_a_stripe_parameter_the_simulator_does_not_model_is_called_unsupported(sim):
    resp = post(sim, "/v1/customers", {"name": "A", "balance": "500"})
    refused(resp, "This simulator does not support balance.", "balance")
    assert sim.sim.spec.calls[-1][2] == []  # Stripe takes it: only the simulator's model lacks it


def test_the_simulators_own_parameter_lists_are_stripes_names():
    for operation, names in [("customers.create", simulator_module.CUSTOMER_PARAMS),
                             ("invoices.create", simulator_module.INVOICE_PARAMS),
                             ("invoiceitems.create", simulator_module.ITEM_PARAMS),
                             ("invoices.finalize_invoice", simulator_module.FINALIZE_PARAMS),
                             ("invoices.send_invoice", simulator_module.SEND_PARAMS)]:
        declared = set(schema.params_type(operation).__annotations__)
        assert names <= declared, (operation, names - declared)


def test_without_the_spec_only_the_top_level_names_are_checked():
    sim = StripeSimulator(spec=False)
    sim.rate_limits = False

    def call(form: dict):
        body = urlencode(form).encode()
        headers = {"authorization": "Bearer sk_test_sim", "content-type": "application/x-www-form-urlencoded"}
        return sim.handle(Request("POST", "/v1/customers", {}, headers, body))

    assert call({"name": "A", "address[planet]": "Mars"}).status == 200  # what the spec check catches
    unknown = call({"nickname": "x"})
    assert (unknown.status, unknown.body["error"]["message"], unknown.body["error"]["param"]) == \
        (400, "Received unknown parameter: nickname", "nickname")


def test_the_product_runs_without_the_stripe_package():
    code = textwrap.dedent("""
        import sys
        sys.modules["stripe"] = None  # as if not installed: `import stripe` raises ImportError
        from invoicer.providers.simulate import Request
        from invoicer.providers.stripe import schema
        from invoicer.providers.stripe.simulator import StripeSimulator
        assert schema.validator() is None
        sim = StripeSimulator()
        assert sim.spec is None
        headers = {"authorization": "Bearer sk_test_sim", "content-type": "application/x-www-form-urlencoded"}
        ok = sim.handle(Request("POST", "/v1/customers", {}, headers, b"name=A"))
        bad = sim.handle(Request("POST", "/v1/customers", {}, headers, b"nickname=A"))
        assert ok.status == 200 and bad.status == 400, (ok, bad)
        try:
            StripeSimulator(spec=True)
        except RuntimeError:
            print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# ---------------------------------------------------------------- the adapter's real requests pass

@pytest.fixture
def env(monkeypatch, clean):
    monkeypatch.setenv("INVOICER_CREDENTIALS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY)


def test_the_adapters_requests_are_all_accepted(env, sim, tmp_path):
    ctx = Ctx(engine=db.engine(), var_dir=tmp_path, attempt=1, tenant="acme-hvac", platform="payments")
    adapter = Stripe({"provider": "stripe", "api_key_env": "STRIPE_SECRET_KEY", "base_url": sim.url}, ctx)
    doc = doc_for(po_number="PO-7")
    created = adapter.create_invoice(doc, "s" * 48)
    adapter.send_invoice(created, doc, "s" * 48)
    assert sim.sim.invoices[created.external_id]["status"] == "open" and sim.sim.sent == [created.external_id]
    fresh = [r.path for r in sim.sim.received if r.path.startswith("/v1/invoice")]
    assert "/v1/invoiceitems" not in [r.path for r in sim.sim.received if r.method == "GET"]  # a new draft is empty
    assert len(fresh) == 1 + 5 + 1 + 1 + 1  # draft, 5 items, read back, finalize, send
    # a draft left behind by a failed finalize is completed by the lookup before a retry, which reads its items
    other = doc_for(po_number="PO-8")
    sim.sim.fault_on("POST", r"/v1/invoices/[^/]+/finalize", "500")
    with pytest.raises(Unavailable):
        adapter.create_invoice(other, "t" * 48)
    assert adapter.find_invoice(other, "t" * 48).detail["status"] == "open"

    calls = sim.sim.spec.calls
    api = [r for r in sim.sim.received if r.path.startswith("/v1/")]
    assert len(calls) == len(api) - 1  # every request the adapter made was checked (but the faulted one) ...
    assert [(op, found) for op, _, found in calls if found] == []  # ... and Stripe would take all of them
    assert {op for op, _, _ in calls} == {
        "customers.search", "customers.list", "customers.create", "invoices.create", "invoices.retrieve",
        "invoiceitems.list", "invoiceitems.create", "invoices.finalize_invoice", "invoices.send_invoice",
        "invoices.search"}
    assert sum(op == "invoiceitems.create" for op, _, _ in calls) == 10
    posted = next(params for op, params, _ in calls if op == "invoices.create")
    assert posted["collection_method"] == "send_invoice" and posted["days_until_due"] == "30"
