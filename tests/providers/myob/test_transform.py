"""MYOB mapping, pure: Service-layout sale, lines by Total, discounts as negative lines, checks before sending."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import MappingMissing, Rejected
from invoicer.providers.myob import transform as t
from invoicer.providers.myob.simulator import ACCOUNTS, FRE, GST
from tests.providers.myob import make_doc, options


def test_invoice_body_lines_tax_codes_and_discount_lines():
    body = t.invoice_body(make_doc(), "CUST", options(), "books")
    assert body["Number"] == "ACME-1001" and body["Date"] == "2026-11-02T00:00:00" and body["IsTaxInclusive"] is False
    assert body["Customer"] == {"UID": "CUST"} and body["InvoiceDeliveryStatus"] == "Nothing"
    assert body["Terms"] == {"PaymentIsDue": "InAGivenNumberOfDays", "BalanceDueDate": 30}
    labor, material, fee, off_taxed, off_untaxed = body["Lines"]
    assert (labor["Total"], labor["Description"], labor["TaxCode"]) == (Decimal("200.00"),
                                                                        "Diagnosis and repair (2 x 100)", {"UID": FRE})
    assert material["TaxCode"] == {"UID": GST} and material["Account"] == {"UID": ACCOUNTS["material"]}
    assert (off_taxed["Total"], off_taxed["TaxCode"]) == (Decimal("-5.00"), {"UID": GST})
    assert (off_untaxed["Total"], off_untaxed["Account"]) == (Decimal("-22.50"), {"UID": ACCOUNTS["discount"]})
    assert sum(li["Total"] for li in body["Lines"]) == Decimal("247.50")


def test_send_true_asks_for_email_delivery():
    assert t.invoice_body(make_doc(), "C", options(send=True), "books")["InvoiceDeliveryStatus"] == "Email"


def test_checks_before_sending():
    with pytest.raises(Rejected, match="13 characters"):
        t.check(make_doc(number="ACME-000001001"), options())
    with pytest.raises(Rejected, match="invoices in AUD"):
        t.check(make_doc(currency="JPY"), options())
    with pytest.raises(MappingMissing, match=r"platforms\.books\.accounts\.discount"):
        t.invoice_body(make_doc(), "C", options(accounts={"labor": "a", "material": "b", "fee": "c"}), "books")


def test_location_and_filters():
    loc = "https://api.myob.com/accountright/cf/Sale/Invoice/Service/3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert t.uid_from_location(loc) == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    with pytest.raises(Rejected):
        t.uid_from_location(None)
    assert t.odata_quote("O'Brien") == "'O''Brien'"


def test_customer_body_and_answers():
    body = t.customer_body(make_doc()["customer"], options(), "books")
    assert body["DisplayID"] == "C-1" and body["SellingDetails"]["TaxCode"] == {"UID": GST}
    assert body["Addresses"] == [{"Location": 1, "Email": "huong@example.com", "Phone1": "+14075550100"}]
    inv = {"UID": "U", "Number": "ACME-1001", "TotalAmount": Decimal("252.00"), "BalanceDueAmount": Decimal("52.00"),
           "Status": "Open"}
    t.check_total(inv, make_doc())
    assert t.payment_status(inv) == t.PaymentStatus(Decimal("200.00"), Decimal("52.00"), False)
    assert t.error_text({"Errors": [{"Name": "ValidationError", "Message": "bad", "ErrorCode": 4100}]}) == \
        "[4100] ValidationError: bad"
