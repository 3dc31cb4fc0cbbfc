"""invoicer.pdf: deterministic bytes, page numbering, currency decimals, Latin-script names, wrapping."""
from __future__ import annotations

import copy
import hashlib
import io
import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

pypdf = pytest.importorskip("pypdf")

from invoicer.pdf import render  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LONG = ("Replaced the failed dual run capacitor on the outdoor condensing unit, verified amperage draw on the "
        "compressor and condenser fan motor, cleaned the contactor contacts, tested refrigerant pressures, "
        "superheat and subcooling, cleared the condensate drain line and confirmed proper cycling across three "
        "consecutive thermostat calls before leaving the site with the customer's approval")


def line(description="Hot surface igniter", qty="1", price="64.25", sku="IGN-HSI", kind="material"):
    q, p = D(qty), D(price)
    return {"kind": kind, "description": description, "quantity": q, "unit_price": p, "amount": q * p,
            "taxable": True, "sku": sku}


def invoice(**overrides) -> dict:
    doc = {
        "number": "ACME-001042", "issued_on": date(2026, 11, 2), "due_on": date(2026, 12, 2),
        "currency": "USD", "locale": "en_US",
        "seller": {"name": "Acme Heating & Cooling", "address": ["1200 Lakeview Dr", "Austin, TX 78701"],
                   "tax_id": "74-1234567", "color": "#0B5FFF", "footer": "Thank you for your business!"},
        "customer": {"name": "Łukasz Żółć", "email": "lukasz@example.com", "phone": "+15125550199",
                     "billing_address": {"line1": "ul. Długa 5", "city": "Austin", "region": "TX",
                                         "postal_code": "78702", "country": "US"}},
        "service_address": {"line1": "742 Maple Ave", "city": "Austin", "region": "TX", "postal_code": "78704",
                            "country": "US"},
        "job": {"number": "J-88213", "summary": "AC not cooling: replaced run capacitor.",
                "technician": "Nguyễn Thị Hương", "po_number": "PO-5521",
                "completed_at": datetime(2026, 11, 2, 15, 30, tzinfo=timezone.utc)},
        "lines": [line("Repair labour", "2.5", "110.00", None, "labor"), line()],
        "discounts": [{"description": "Loyalty discount", "amount": D("33.93"), "percent": D("10")}],
        "subtotal": D("339.25"), "discount_total": D("33.93"),
        "tax": {"rate": D("0.0825"), "jurisdiction": "TX", "amount": D("25.19")},
        "total": D("330.51"), "payment_terms_days": 30,
        "signature": {"signed_by": "Jürgen Weiß", "signed_at": datetime(2026, 11, 2, 15, 45, tzinfo=timezone.utc)},
        "pay_url": "https://pay.example.com/i/ACME-001042",
        "created_at": datetime(2026, 11, 2, 16, 0, tzinfo=timezone.utc),
    }
    doc.update(overrides)
    return doc


def pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def text(pdf: bytes) -> str:
    return "\n".join(pages(pdf))


def test_renders_a_pdf_with_the_essentials():
    pdf = render(invoice())
    assert pdf.startswith(b"%PDF-")
    t = text(pdf)
    for expected in ("INVOICE", "ACME-001042", "Acme Heating & Cooling", "Tax ID: 74-1234567", "Nov 2, 2026",
                     "Dec 2, 2026", "742 Maple Ave", "Job J-88213", "PO: PO-5521", "replaced run capacitor",
                     "Description", "Qty", "Unit price", "Amount", "$110.00", "$275.00", "2.5", "SKU IGN-HSI",
                     "Loyalty discount (10%)", "-$33.93", "Subtotal", "$339.25", "Tax TX (8.25%)", "$25.19",
                     "Total", "Amount due", "$330.51", "Net 30", "Signed by Jürgen Weiß",
                     "Pay online: https://pay.example.com/i/ACME-001042", "Thank you for your business!",
                     "Page 1 of 1"):
        assert expected in t, expected


def test_deterministic_bytes():
    assert render(invoice()) == render(invoice())
    big = invoice(lines=[line(f"Part {i}") for i in range(40)])
    assert render(big) == render(copy.deepcopy(big))


def test_deterministic_across_processes():
    code = ("import hashlib, sys; sys.path.insert(0, sys.argv[1]); import test_pdf as t; "
            "print(hashlib.sha256(t.render(t.invoice())).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT), "TZ": "Asia/Tokyo"}
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], cwd=ROOT, check=True,
                         capture_output=True, text=True, env=env)
    assert out.stdout.strip() == hashlib.sha256(render(invoice())).hexdigest()


def test_creation_date_comes_from_the_invoice_not_the_clock():
    pdf = render(invoice())
    meta = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert meta.creation_date == datetime(2026, 11, 2, 16, 0, tzinfo=timezone.utc)
    assert meta.title == "Invoice ACME-001042"
    later = render(invoice(created_at=datetime(2027, 1, 1, 9, 0, tzinfo=timezone.utc)))
    assert later != pdf


def test_long_invoice_spans_pages_each_numbered_with_repeated_header():
    doc = invoice(lines=[line(f"Pleated filter 16x25x2 number {i}", "2", "18.50", f"FLT-{i}") for i in range(120)])
    texts = pages(render(doc))
    assert len(texts) >= 3
    for n, page_text in enumerate(texts, 1):
        assert f"Page {n} of {len(texts)}" in page_text
        assert "Unit price" in page_text  # header row repeats
    everything = "\n".join(texts)
    assert all(f"number {i}\n" in everything or f"number {i} " in everything for i in range(120))
    assert "Amount due" in texts[-1]


def test_jpy_has_no_decimals_and_kwd_has_three():
    jpy = text(render(invoice(currency="JPY", lines=[line("Repair", "1", "12500", None)], subtotal=D("12500"),
                              discounts=[], discount_total=D("0"),
                              tax={"rate": D("0.10"), "jurisdiction": "JP-CT", "amount": D("1250")},
                              total=D("13750"))))
    assert "¥12,500" in jpy and "¥13,750" in jpy
    assert not re.search(r"¥[\d,]+\.\d", jpy)
    kwd = text(render(invoice(currency="KWD", lines=[line("Repair", "1", "12.345", None)], subtotal=D("12.345"),
                              discounts=[], discount_total=D("0"),
                              tax={"rate": D("0"), "jurisdiction": "KW", "amount": D("0")}, total=D("12.345"))))
    assert re.search(r"KWD\s?12\.345", kwd)
    assert re.search(r"KWD\s?0\.000", kwd)
    assert "Tax KW (0%)" in kwd


def test_japanese_locale_uses_a_yen_sign_the_font_has():
    t = text(render(invoice(currency="JPY", locale="ja_JP", lines=[line("Repair", "1", "8000", None)],
                            subtotal=D("8000"), discounts=[], discount_total=D("0"),
                            tax={"rate": D("0.10"), "jurisdiction": "JP-CT", "amount": D("800")}, total=D("8800"))))
    assert "¥8,800" in t and "\uffe5" not in t


@pytest.mark.parametrize("name", ["Łukasz Żółć", "Nguyễn Thị Hương", "Đặng Thảo", "Jürgen Schröder-Weiß"])
def test_latin_script_names_render(name):
    t = text(render(invoice(customer={"name": name, "email": None, "phone": None, "billing_address": None})))
    assert name in t


def test_fonts_are_embedded_noto_sans():
    pdf = render(invoice())
    assert b"NotoSans-Regular" in pdf and b"NotoSans-Bold" in pdf and b"/FontFile2" in pdf


def test_service_address_is_the_bill_to_when_no_billing_address():
    t = text(render(invoice(customer={"name": "Zofia Wójcik", "email": None, "phone": None, "billing_address": None})))
    assert t.count("742 Maple Ave") == 2
    assert "ul. Długa" not in t


def test_long_description_wraps_and_markup_is_escaped():
    doc = invoice(lines=[line(LONG, sku=None), line("Filter <16x25> & coil cleaner", sku="X&Y"),
                         line("Serial " + "A7" * 80, sku=None)])
    t = text(render(doc))
    flat = re.sub(r"\s+", " ", t)
    assert LONG in flat  # every word is there, in order
    # wrapped inside the description column: no single printed line comes close to the whole description
    assert max(len(ln) for ln in t.splitlines()) < 120
    assert sum(1 for ln in t.splitlines() if ln.strip() and ln.strip() in LONG) >= 3
    assert "Filter <16x25> & coil cleaner" in t and "SKU X&Y" in t
    assert "A7A7A7" in t  # an unbreakable word is split rather than lost


def test_optional_parts_and_terms():
    t = text(render(invoice(payment_terms_days=0, signature=None, pay_url=None, discounts=[],
                            discount_total=D("0"), job={**invoice()["job"], "po_number": None},
                            seller={**invoice()["seller"], "color": None, "footer": None, "tax_id": None})))
    assert "Due on receipt" in t
    for absent in ("Net ", "Signed by", "Pay online", "PO:", "Discount", "Tax ID", "Thank you"):
        assert absent not in t, absent
    assert "Page 1 of 1" in t


def test_bad_colour_falls_back():
    assert render(invoice(seller={**invoice()["seller"], "color": "not-a-colour"})).startswith(b"%PDF-")
