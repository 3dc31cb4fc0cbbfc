"""Contract, as far as one exists: Salesforce publishes no static spec of an org's objects (each org has
its own; ../shared/vendor-specs/salesforce/SOURCE.txt), so the contract is the setup our docs page asks
an admin to make. Every field the adapter writes to the custom objects is in that table, and the
simulator's org declares exactly those fields."""
from __future__ import annotations

import re
from pathlib import Path

from invoicer.providers.salesforce import transform as t
from invoicer.providers.salesforce.simulator import default_schema

from .. import corpus_docs

DOCS = Path(__file__).resolve().parents[3] / "docs" / "providers" / "salesforce.md"


def documented() -> dict[str, set[str]]:
    """Object -> fields from the docs page's custom object table (`Invoice__c` rows start an object)."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("### The custom object", 1)[1].split("###", 1)[0]
    out: dict[str, set[str]] = {}
    current = None
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) < 2:
            continue
        names = re.findall(r"`([\w.]+)`", cells[0])
        if not names:
            continue
        if "custom object" in cells[1]:  # a row that starts an object
            current = names[0]
            out.setdefault(current, {"Name"})
            continue
        for name in names:
            if "." in name:
                obj, field = name.split(".")
                out.setdefault(obj, set()).add(field)
            elif current:
                out[current].add(name)
    return out


def written() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    layout = t.Layout()
    for doc in corpus_docs()[::10]:
        for u in t.plan({**doc, "pay_url": "https://pay.example/x"}, layout).upserts:
            fields = out.setdefault(u.object, set())
            fields.add(u.field)
            fields.update(k.replace("__r", "__c") for k in u.body)
    return out


def test_every_field_written_to_the_custom_objects_is_on_the_docs_page():
    docs = documented()
    for obj in ("Invoice__c", "Invoice_Line__c"):
        assert written()[obj] <= docs[obj], (obj, written()[obj] - docs[obj])
    assert "Invoicer_Customer_Id__c" in docs["Account"]


def test_the_simulated_org_has_exactly_the_documented_custom_fields():
    docs, schema = documented(), default_schema()
    for obj in ("Invoice__c", "Invoice_Line__c"):
        assert set(schema[obj]) == docs[obj], (obj, set(schema[obj]) ^ docs[obj])


def documented_workorder() -> dict[str, set[str]]:
    """Object -> fields from the docs page's WorkOrder table (`Object.Field` names in the first column)."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("### WorkOrder and WorkOrderLineItem", 1)[1].split("##", 1)[0]
    out: dict[str, set[str]] = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.strip("|").split("|")[0]
        obj = None
        for name in re.findall(r"`([\w.]+)`", first):
            if "." in name:
                obj, name = name.split(".")
            out.setdefault(obj, set()).add(name)
    return out


def test_every_field_written_to_a_work_order_is_documented_and_writable():
    layout = t.Layout.from_options({"object": "workorder", "pricebook_id": "01sX",
                                    "pricebook_entries": {k: "01u" + k for k in t.KINDS}, "multi_currency": True},
                                   "crm")
    docs, schema = documented_workorder(), default_schema()
    seen: dict[str, set[str]] = {}
    for doc in corpus_docs()[::10]:
        for u in t.plan(doc, layout).upserts:
            seen.setdefault(u.object, set()).update({u.field, *u.body})
    for obj in ("WorkOrder", "WorkOrderLineItem"):
        assert seen[obj] <= docs[obj], (obj, seen[obj] - docs[obj])
        relationships = {s["relationship"] for s in schema[obj].values() if s["relationship"]}
        for name in seen[obj] - relationships:
            assert name in schema[obj] and not schema[obj][name]["readonly"], (obj, name)
    # the standard read-only fields Salesforce computes are never written
    assert not seen["WorkOrder"] & {"WorkOrderNumber", "Subtotal", "TotalPrice", "GrandTotal", "Discount", "Tax"}
    assert not seen["WorkOrderLineItem"] & {"LineItemNumber", "Subtotal", "TotalPrice", "ListPrice", "Discount"}
