"""Jobber's pure mapping: a Jobber job -> the v1 job and customer, our invoice -> InvoiceCreateInput, and
Jobber's GraphQL answers -> typed errors (THROTTLED waits as long as the cost bucket needs)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from invoicer.errors import AuthFailed, RateLimited, Rejected
from invoicer.models import Event
from invoicer.providers.jobber import transform as t

JOB = {"id": "Sm9i", "jobNumber": 42, "title": "AC repair", "instructions": "Unit not cooling",
       "client": {"id": "Q2xp", "name": "Pat Quinn", "emails": [{"address": "old@example.com", "primary": False},
                                                               {"address": "pat@example.com", "primary": True}],
                  "phones": [{"number": "(407) 555-0142", "primary": True}],
                  "billingAddress": {"street1": "1 Elm", "city": "Toronto", "province": "ON", "country": "Canada"}},
       "property": {"address": {"street1": "12 Palm Way", "street2": "Unit 3", "city": "Orlando", "province": "FL",
                                "postalCode": "32801", "country": "United States"}},
       "lineItems": {"nodes": [
           {"id": "l1", "name": "Labour", "category": "SERVICE", "quantity": Decimal("2"), "unitPrice": Decimal("85.00"),
            "taxable": False},
           {"id": "l2", "name": "Filter", "description": "MERV 13", "category": "PRODUCT", "quantity": Decimal("1"),
            "unitPrice": Decimal("19.99"), "taxable": True},
           {"id": "l3", "name": "Not used", "category": "PRODUCT", "quantity": Decimal("0"), "unitPrice": Decimal("5"),
            "taxable": True}]},
       "visits": {"nodes": [{"id": "v1", "isComplete": True, "completedAt": "2026-11-20T15:00:00Z",
                             "assignedUsers": {"nodes": [{"id": "u1", "name": {"full": "Sam Ortiz"}}]}}]}}


def test_a_jobber_job_becomes_a_valid_v1_event():
    parts = t.event_parts(JOB, JOB["visits"]["nodes"][0], {"tax_rate": "0.065", "currency": "USD"})
    event = Event.model_validate({"type": "job.completed", "id": "e", "source": "jobber", "tenant": "acme-hvac",
                                  "occurred_at": "2026-11-20T15:00:00Z", **parts})
    assert event.job.labor[0].hours == Decimal("2") and event.job.labor[0].rate == Decimal("85.00")
    assert [m.description for m in event.job.materials] == ["Filter: MERV 13"]  # a zero-quantity line is left out
    assert event.job.service_address.line1 == "12 Palm Way Unit 3" and event.job.service_address.country == "US"
    assert event.job.technician.name == "Sam Ortiz" and event.job.number == "42" and event.job.tax.rate == Decimal("0.065")
    assert event.customer.email == "pat@example.com" and event.customer.billing_address.country == "CA"
    assert event.customer.phone is None  # not E.164 as typed: nothing is guessed
    assert event.customer.external_ids == {"jobber": "Q2xp"}


def test_a_job_with_visits_left_is_still_open():
    assert not t.still_open(JOB)
    assert t.still_open({"visits": {"nodes": [{"isComplete": True}, {"isComplete": False}]}})


def test_graphql_errors_become_typed_errors():
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {"requestedQueryCost": 1500, "throttleStatus": {
                     "maximumAvailable": 10000, "currentlyAvailable": 500, "restoreRate": 500}}}}
    with pytest.raises(RateLimited) as caught:
        t.check(throttled)
    assert caught.value.retry_after == 2.0
    with pytest.raises(AuthFailed):
        t.check({"errors": [{"message": "no", "extensions": {"code": "UNAUTHENTICATED"}}]})
    with pytest.raises(Rejected, match="invoiceNumber: Invoice number has already been taken"):
        t.check({"data": {"invoiceCreate": {"invoice": None, "userErrors": [
            {"message": "Invoice number has already been taken", "path": ["invoiceNumber"]}]}}}, "invoiceCreate")


def test_invoice_input_carries_exact_decimals_and_the_job():
    doc = {"number": "ACME-7", "issued_on": __import__("datetime").date(2026, 11, 20), "payment_terms_days": 14,
           "job": {"id": "Sm9i", "number": "42", "summary": "AC repair\nmore"},
           "customer": {"external_ids": {"jobber": "Q2xp"}},
           "lines": [{"kind": "material", "description": "Filter", "quantity": Decimal("1"),
                      "unit_price": Decimal("19.99"), "taxable": True}],
           "tax": {"rate": Decimal("0.065"), "jurisdiction": "FL"}, "discount_total": Decimal("2.00")}
    data = t.invoice_input(doc, {}, "Q2xp")
    assert data["jobIds"] == ["Sm9i"] and data["invoiceNumber"] == "ACME-7" and data["subject"] == "AC repair"
    assert data["tax"]["rate"] == Decimal("6.5") and data["dueDetails"] == {"invoiceNet": 14}
    assert data["lineItems"][0]["unitPrice"] == Decimal("19.99") and data["lineItems"][0]["category"] == "PRODUCT"
    assert data["discount"] == {"discountType": "AMOUNT", "discountRate": Decimal("2.00")} and data["markSent"] is True
