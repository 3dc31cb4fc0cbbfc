"""Pure mapping: canonical invoice -> Sage Intacct XML and back (no network, no database)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal as D

import pytest

from invoicer.errors import MappingMissing, Rejected
from invoicer.providers.sage_intacct import transform as t
from tests.providers.sage_intacct import make_doc, options

M = t.Mapping.from_options(options(), "gl")


def test_lines_to_gl_accounts_add_up_to_our_total():
    doc = make_doc()
    el = t.create_invoice(doc, M, "C-1")
    items = el.findall("invoiceitems/lineitem")
    assert [i.findtext("glaccountno") for i in items] == ["4000", "4100", "4200", "4900", "2200"]
    amounts = [D(i.findtext("amount")) for i in items]
    assert amounts == [D("200.00"), D("50.00"), D("25.00"), D("-27.50"), D("3.60")]
    assert sum(amounts) == doc["total"] == D("251.10")
    assert items[0].findtext("memo").endswith("(2.5 x 80.00)") or "x" in items[0].findtext("memo")
    assert [c.tag for c in items[0]] == ["glaccountno", "amount", "memo"]


def test_header_in_the_dtds_order_with_our_reference_and_company_numbering():
    el = t.create_invoice(make_doc(number="ACME-1042"), M, "C-1")
    assert [c.tag for c in el] == ["customerid", "datecreated", "datedue", "ponumber", "description", "invoiceitems"]
    assert el.findtext("ponumber") == "ACME-1042" and el.find("invoiceno") is None
    assert [el.findtext(f"datecreated/{p}") for p in ("year", "month", "day")] == ["2026", "11", "02"]
    ours = t.create_invoice(make_doc(number="ACME-1042"), t.Mapping.from_options(options(use_our_number=True), "gl"),
                            "C-1")
    assert ours.findtext("invoiceno") == "ACME-1042"


def test_text_is_escaped_by_the_xml_library():
    doc = make_doc(customer={"name": "Tom & Jerry <HVAC>"}, summary="Fixed </description><x>")
    request = t.request(sender_id="s", sender_password="p&<", control="c", session_id="sess",
                        functions=[t.function("f", t.create_invoice(doc, M, "C-1")),
                                   t.function("g", t.create_customer(doc, "C-1"))])
    root = ET.fromstring(request)
    assert root.findtext("control/password") == "p&<" and root.findtext("control/uniqueid") == "true"
    assert root.findtext(".//description").endswith("Fixed </description><x>")
    assert root.findtext(".//CUSTOMER/NAME") == "Tom & Jerry <HVAC>"
    assert root.findtext("operation/authentication/sessionid") == "sess"


def test_control_ids_are_stable_per_key_and_purpose():
    assert t.control_id("k1") == t.control_id("k1") != t.control_id("k2")
    assert t.control_id("k1", "customer") != t.control_id("k1")


def test_customer_ids_fit_intacct():
    assert t.customer_id({"id": "C-1"}) == "C-1"
    long = t.customer_id({"id": "customer/with spaces and a very long id"})
    assert len(long) == 20 and long.startswith("C")


def test_missing_gl_account_and_three_decimals_are_refused_before_any_call():
    with pytest.raises(MappingMissing, match=r"platforms\.gl\.gl_accounts\.discount"):
        t.create_invoice(make_doc(), t.Mapping.from_options(options(gl_accounts={"labor": "1", "material": "2",
                                                                                 "fee": "3", "tax": "4"}), "gl"), "C")
    doc = make_doc(currency="KWD", labor=[{"description": "Repair", "hours": "1", "rate": "10.125",
                                           "taxable": False}], materials=[], fees=[], discounts=[],
                   tax={"rate": "0", "jurisdiction": ""})
    with pytest.raises(Rejected, match="at most 2 decimals"):
        t.create_invoice(doc, M, "C")


def test_parse_failure_and_records():
    answer = t.parse(b"""<?xml version="1.0"?><response><control><status>success</status></control>
      <operation><authentication><status>success</status></authentication>
      <result><status>failure</status><function>create_invoice</function><controlid>x</controlid>
      <errormessage><error><errorno>BL01001973</errorno><description></description>
      <description2>Invalid Customer</description2><correction></correction></error></errormessage></result>
      <result><status>success</status><function>readByQuery</function><controlid>y</controlid>
      <data listtype="arinvoice" count="1"><arinvoice><RECORDNO>7</RECORDNO><TOTALENTERED>251.1</TOTALENTERED>
      <TOTALDUE>51.10</TOTALDUE><DOCNUMBER>ACME-1001</DOCNUMBER></arinvoice></data></result></operation></response>""")
    assert answer.control_ok and answer.auth_ok
    bad, good = answer.results
    assert not bad.ok and bad.text() == "[BL01001973] Invalid Customer"
    made = t.created(good.data[0], make_doc())
    assert made.external_id == "7" and made.detail["total"] == "251.1"
    assert t.payment_status(good.data[0]).amount_paid == D("200.00")
    with pytest.raises(Rejected, match="totals 251.1"):
        t.created(good.data[0], make_doc(fees=[]))


def test_hostile_xml_is_not_expanded():
    bomb = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><response>&b;</response>"""
    with pytest.raises(ValueError):
        t.parse(bomb)
