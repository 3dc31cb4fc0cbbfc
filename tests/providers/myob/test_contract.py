"""Contract: every sample job, mapped for MYOB, uses only fields of MYOB's own SDK contracts
(myob-oss/AccountRight_Live_API_.Net_SDK, Contracts/Version2: Sale.Sale, Sale.Invoice, Sale.InvoiceLine,
Sale.ServiceInvoiceLine, Sale.SaleEmail, Contact.Customer), and comes to our total by MYOB's arithmetic (the
simulator's: tax per line, half-even), after the adapter's rounding line where per-line tax rounding
differs from ours. MYOB publishes no machine-readable spec (../shared/vendor-specs/myob/SOURCE.txt).
Each job is mapped as if the company file invoiced in its currency with a tax code at its rate."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.providers.myob import transform as t
from invoicer.providers.myob.simulator import GST, MyobSimulator
from tests.providers import corpus_docs
from tests.providers.myob import options

SALE_FIELDS = {"UID", "Number", "Date", "CustomerPurchaseOrderNumber", "Customer", "PromisedDate", "Status",
               "InvoiceType", "ShipToAddress", "Terms", "IsTaxInclusive", "Lines", "Freight", "FreightTaxCode",
               "Salesperson", "Comment", "ShippingMethod", "JournalMemo", "ReferralSource", "InvoiceDeliveryStatus",
               "RowVersion"}
LINE_FIELDS = {"RowID", "Type", "Description", "Total", "Job", "TaxCode", "RowVersion", "Date", "Account"}
EMAIL_FIELDS = {"ResourceType", "LayoutType", "EntityUid", "FormTemplate", "To", "From", "Subject", "Message"}
CUSTOMER_FIELDS = {"UID", "CompanyName", "FirstName", "LastName", "IsIndividual", "DisplayID", "IsActive",
                   "Addresses", "Notes", "SellingDetails", "PaymentDetails", "RowVersion"}


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


def test_every_corpus_invoice_uses_sdk_contract_fields(docs):
    for doc in docs:
        opts = options(currency=doc["currency"])
        t.check(doc, opts)
        body = t.invoice_body(doc, "C", opts, "books")
        assert set(body) <= SALE_FIELDS and all(set(li) <= LINE_FIELDS for li in body["Lines"])
        assert set(t.customer_body(doc["customer"], opts, "books")) <= CUSTOMER_FIELDS
        assert set(t.email_body("U", doc, "a@example.com")) <= EMAIL_FIELDS


def test_myob_arithmetic_gives_our_total_for_every_corpus_invoice(docs):
    sim = MyobSimulator()
    cf = sim.company_file()
    cf.customers["C"] = {"UID": "C"}
    wrong, settled = {}, 0
    for doc in docs:
        cf.tax_codes[GST]["Rate"] = doc["tax"]["rate"] * 100
        opts = options(currency=doc["currency"])

        def sale(rounding=None):
            body = t.invoice_body(doc, "C", opts, "books", rounding)
            return sim._sale(cf, body)

        first = sale()
        assert not hasattr(first, "status"), first.body  # not an error Reply
        diff = t.difference(first, doc)
        final = first
        if diff:
            assert abs(diff) <= Decimal("0.01") * (len(doc["lines"]) + 2), doc["number"]
            final = sale(diff)
            settled += 1
        if final["TotalAmount"] != doc["total"]:
            wrong[doc["number"]] = (str(final["TotalAmount"]), str(doc["total"]))
    assert wrong == {}
    assert settled < len(docs) // 2
