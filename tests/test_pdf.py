"""invoicer.pdf: what a customer reads (text extracted back from the PDF), pagination, scripts and fonts,
currency decimals, branding options, deterministic bytes, and the whole shared event corpus."""
from __future__ import annotations

import copy
import hashlib
import io
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

pypdf = pytest.importorskip("pypdf")

from invoicer import money  # noqa: E402
from invoicer.branding import Branding  # noqa: E402
from invoicer.config import load_tenants  # noqa: E402
from invoicer.models import Event  # noqa: E402
from invoicer.pdf import CJK, FONT, _cjk_chars, _script_runs, register_fonts, render  # noqa: E402
from invoicer.pipeline import document  # noqa: E402

from .conftest import shared_events  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LONG = ("Replaced the failed dual run capacitor on the outdoor condensing unit, verified amperage draw on the "
        "compressor and condenser fan motor, cleaned the contactor contacts, tested refrigerant pressures, "
        "superheat and subcooling, cleared the condensate drain line and confirmed proper cycling across three "
        "consecutive thermostat calls before leaving the site with the customer's approval")


def line(description="Hot surface igniter", qty="1", price="64.25", sku="IGN-HSI", kind="material", taxable=True):
    q, p = D(qty), D(price)
    return {"kind": kind, "description": description, "quantity": q, "unit_price": p, "amount": q * p,
            "taxable": taxable, "sku": sku}


def invoice(**overrides) -> dict:
    doc = {
        "tenant": "acme-hvac", "number": "ACME-001042", "issued_on": date(2026, 11, 2), "due_on": date(2026, 12, 2),
        "currency": "USD", "locale": "en_US",
        "seller": {"name": "Acme Heating & Cooling", "address": ["1200 Lakeview Dr", "Austin, TX 78701"],
                   "tax_id": "74-1234567"},
        "branding": {"color": "#0B5FFF", "footer": "Thank you for your business, {customer}!",
                     "notes": "Please quote {number} with your payment of {amount_due}."},
        "customer": {"name": "Łukasz Żółć", "email": "lukasz@example.com", "phone": "+15125550199",
                     "billing_address": {"line1": "ul. Długa 5", "city": "Austin", "region": "TX",
                                         "postal_code": "78702", "country": "US"}},
        "service_address": {"line1": "742 Maple Ave", "city": "Austin", "region": "TX", "postal_code": "78704",
                            "country": "US"},
        "job": {"number": "J-88213", "summary": "AC not cooling: replaced run capacitor.",
                "technician": "Nguyễn Thị Hương", "po_number": "PO-5521",
                "completed_at": datetime(2026, 11, 2, 15, 30, tzinfo=timezone.utc)},
        "lines": [line("Repair labour", "2.5", "110.00", None, "labor"), line(),
                  line("Trip charge", "1", "12.00", None, "fee", taxable=False)],
        "discounts": [{"description": "Loyalty discount", "amount": D("35.13"), "percent": D("10")}],
        "subtotal": D("351.25"), "discount_total": D("35.13"),
        "tax": {"rate": D("0.0825"), "jurisdiction": "TX", "amount": D("25.19")},
        "total": D("341.31"), "payment_terms_days": 30,
        "signature": {"signed_by": "Jürgen Weiß", "signed_at": datetime(2026, 11, 2, 15, 45, tzinfo=timezone.utc)},
        "pay_url": "https://pay.example.com/i/ACME-001042",
        "created_at": datetime(2026, 11, 2, 16, 0, tzinfo=timezone.utc),
    }
    doc.update(overrides)
    return doc


def brand(**options) -> dict:
    return {**invoice()["branding"], **options}


def pages(pdf: bytes) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def text(pdf: bytes) -> str:
    return "\n".join(pages(pdf))


def fonts_of(pdf: bytes) -> dict[str, str]:
    """Each character drawn -> the base font it was drawn in (from the content streams)."""
    seen: dict[str, str] = {}

    def visit(chunk, cm, tm, font, size):
        if font is not None:
            for ch in chunk:
                seen.setdefault(ch, str(font.get("/BaseFont")))

    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        page.extract_text(visitor_text=visit)
    return seen


def test_every_line_the_totals_and_the_payment_link_are_in_the_text():
    t = text(render(invoice()))
    for expected in ("INVOICE", "Invoice no.", "ACME-001042", "Acme Heating & Cooling", "Tax ID: 74-1234567",
                     "Issued", "Nov 2, 2026", "Due", "Dec 2, 2026", "BILL TO", "ul. Długa 5", "SERVICE ADDRESS",
                     "742 Maple Ave", "Job no. J-88213", "Technician: Nguyễn Thị Hương", "PO: PO-5521",
                     "Completed: Nov 2, 2026, 3:30 PM UTC", "Work performed: AC not cooling: replaced run capacitor.",
                     "Description", "Qty", "Unit price", "Amount",
                     "Labour", "Repair labour", "2.5 h", "$110.00 / h", "$275.00",
                     "Materials", "Hot surface igniter", "SKU IGN-HSI", "$64.25",
                     "Fees", "Trip charge", "not taxable", "$12.00",
                     "Subtotal", "$351.25", "Loyalty discount (10%)", "-$35.13", "Tax TX (8.25%)", "$25.19",
                     "Total", "Amount due", "$341.31", "Payment terms: Net 30 · Due Dec 2, 2026",
                     "Pay online: https://pay.example.com/i/ACME-001042", "Scan to pay",
                     "Signed by Jürgen Weiß at Nov 2, 2026, 3:45 PM UTC",
                     "Notes", "Please quote ACME-001042 with your payment of $341.31.",
                     "Thank you for your business, Łukasz Żółć!", "Page 1 of 1"):
        assert expected in t, expected
    assert t.count("$341.31") == 4  # the amount-due band at the top, the total, the amount due, the notes


def test_totals_come_from_the_money_rules():
    """An event priced by invoicer.money prints exactly the rules' figures."""
    event = Event.model_validate(shared_events()[0])
    tenants = load_tenants(None)
    doc = document(event, event.tenant, tenants[event.tenant], "PA-00001", datetime(2026, 11, 2, tzinfo=timezone.utc),
                   event.job.payment_terms_days)
    lines, discounts, totals = money.price(event.job)
    t = re.sub(r"\s+", " ", text(render(doc)).replace("\u00a0", " "))
    from babel.numbers import format_currency
    for value in (totals.subtotal, totals.tax, totals.total, *(ln.amount for ln in lines),
                  *(-d.amount for d in discounts)):
        assert format_currency(value, event.job.currency, locale="nl_NL").replace("\u00a0", " ") in t, value
    for ln in lines:
        assert ln.description in t


def test_a_link_annotation_points_at_the_payment_page():
    reader = pypdf.PdfReader(io.BytesIO(render(invoice())))
    uris = [a.get_object()["/A"]["/URI"] for a in reader.pages[0].get("/Annots", [])]
    assert "https://pay.example.com/i/ACME-001042" in uris


def test_deterministic_bytes():
    assert render(invoice()) == render(invoice())
    big = invoice(lines=[line(f"Part {i}") for i in range(40)], customer={**invoice()["customer"], "name": "山田太郎"})
    assert render(big) == render(copy.deepcopy(big))


def test_deterministic_across_processes():
    """Another process, another hash seed and time zone: the same bytes (Japanese fallback font included)."""
    code = ("import hashlib, sys; from tests import test_pdf as t; d = t.invoice(); d['customer']['name'] = "
            "'山田太郎'; print(hashlib.sha256(t.render(d)).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT), "TZ": "Asia/Tokyo"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    doc = invoice()
    doc["customer"]["name"] = "山田太郎"
    assert out.stdout.strip() == hashlib.sha256(render(doc)).hexdigest()


def test_creation_date_comes_from_the_invoice_not_the_clock():
    pdf = render(invoice())
    meta = pypdf.PdfReader(io.BytesIO(pdf)).metadata
    assert meta.creation_date == datetime(2026, 11, 2, 16, 0, tzinfo=timezone.utc)
    assert meta.title == "Invoice ACME-001042" and meta.author == "Acme Heating & Cooling"
    assert render(invoice(created_at=datetime(2027, 1, 1, 9, 0, tzinfo=timezone.utc))) != pdf


def test_sixty_lines_paginate_with_the_header_row_repeated_and_page_n_of_m():
    lines = [line(f"Pleated filter 16x25x2 number {i}", "2", "18.50", f"FLT-{i}") for i in range(60)]
    texts = pages(render(invoice(lines=lines)))
    assert len(texts) >= 2
    for n, page_text in enumerate(texts, 1):
        assert f"Page {n} of {len(texts)}" in page_text
        assert re.search(r"Description\s+Qty\s+Unit price\s+Amount", page_text), f"header row on page {n}"
        if n > 1:
            assert "Acme Heating & Cooling · Invoice no. ACME-001042" in page_text  # whose page this is
    everything = "\n".join(texts)
    found = [i for i in range(60) if re.search(rf"number {i}\b", everything)]
    assert found == list(range(60))
    assert "Amount due" in texts[-1] and "Pay online" in texts[-1]


def test_a_long_invoice_keeps_every_line_once():
    lines = [line(f"Item {i:03d} " + LONG[: 40 + i % 120], "1", "1.00", None) for i in range(200)]
    t = text(render(invoice(lines=lines)))
    assert [int(m) for m in re.findall(r"Item (\d{3})", t)] == list(range(200))


def test_zero_decimal_and_three_decimal_currencies():
    no_disc = {"discounts": [], "discount_total": D("0")}
    jpy = text(render(invoice(currency="JPY", lines=[line("Repair", "1.5", "8333", None, "labor")],
                              subtotal=D("12500"), tax={"rate": D("0.10"), "jurisdiction": "JP-CT",
                                                        "amount": D("1250")}, total=D("13750"), **no_disc)))
    assert "¥12,500" in jpy and "¥13,750" in jpy and "¥8,333 / h" in jpy
    assert not re.search(r"¥[\d,]+\.\d", jpy)
    kwd = text(render(invoice(currency="KWD", lines=[line("Repair", "1", "12.345", None)], subtotal=D("12.345"),
                              tax={"rate": D("0"), "jurisdiction": "KW", "amount": D("0")}, total=D("12.345"),
                              **no_disc)))
    assert re.search(r"KWD\s?12\.345", kwd) and re.search(r"KWD\s?0\.000", kwd)
    assert "Tax KW (0%)" in kwd


def test_polish_locale_and_labels_from_the_tenant():
    labels = {"title": "FAKTURA", "number": "Nr faktury", "amount_due": "Do zapłaty", "subtotal": "Suma netto",
              "tax": "VAT {rate}", "page": "Strona {page} z {pages}", "net": "{days} dni"}
    t = text(render(invoice(currency="PLN", locale="pl_PL", branding=brand(labels=labels))))
    for expected in ("FAKTURA", "Nr faktury", "Do zapłaty", "Suma netto", "VAT 8,25%", "Strona 1 z 1", "30 dni",
                     "341,31 zł", "2 lis 2026"):
        assert expected in t.replace("\u00a0", " ").replace("\u202f", " "), expected


@pytest.mark.parametrize("name", ["Łukasz Żółć", "Nguyễn Thị Hương", "Đặng Thảo", "Jürgen Schröder-Weiß",
                                  "山田 太郎", "株式会社さくら空調", "Trần Văn Ánh (高橋)"])
def test_names_in_any_script_come_out_as_text_in_a_font_that_has_them(name):
    pdf = render(invoice(customer={"name": name, "email": None, "phone": None, "billing_address": None}))
    assert name in text(pdf)
    used = fonts_of(pdf)
    register_fonts()
    from reportlab.pdfbase import pdfmetrics
    for ch in set(name) - {" "}:
        base = used[ch]
        family = "IPAexGothic" if "IPAex" in base else "NotoSans"
        assert family in base, (ch, base)
        font = pdfmetrics.getFont(CJK if family == "IPAexGothic" else FONT)
        assert ord(ch) in font.face.charToGlyph, f"{ch!r} would be a box in {base}"


def test_the_fallback_font_is_only_used_for_what_noto_lacks():
    register_fonts()
    assert _script_runs("Zoë & 山田") == [("Zoë & ", False), ("山田", True)]
    assert ord("山") in _cjk_chars()
    pdf = render(invoice())
    assert b"NotoSans-Regular" in pdf and b"NotoSans-Bold" in pdf and b"/FontFile2" in pdf
    assert b"IPAexGothic" not in pdf  # a Latin-only invoice does not carry the Japanese font


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
    assert max(len(ln) for ln in t.splitlines()) < 120  # wrapped inside the description column
    assert sum(1 for ln in t.splitlines() if ln.strip() and ln.strip() in LONG) >= 3
    assert "Filter <16x25> & coil cleaner" in t and "SKU X&Y" in t
    assert "A7A7A7" in t  # an unbreakable word is split rather than lost


def test_optional_parts_and_terms():
    t = text(render(invoice(payment_terms_days=0, signature=None, pay_url=None, discounts=[],
                            discount_total=D("0"), job={**invoice()["job"], "po_number": None},
                            seller={**invoice()["seller"], "tax_id": None}, branding={})))
    assert "Due on receipt" in t
    for absent in ("Net ", "Signed by", "Pay online", "Scan to pay", "PO:", "Discount", "Tax ID", "Thank you",
                   "Notes"):
        assert absent not in t, absent
    assert "Page 1 of 1" in t


def test_show_switches_hide_fields():
    hidden = {k: False for k in ("tax_id", "customer_contact", "service_address", "technician", "po_number",
                                 "completed_at", "summary", "sku", "not_taxable", "pay_link", "signature", "notes")}
    t = text(render(invoice(branding=brand(show=hidden))))
    for absent in ("Tax ID", "lukasz@example.com", "+15125550199", "SERVICE ADDRESS", "Technician", "PO:",
                   "Completed", "Work performed", "SKU", "not taxable", "Pay online", "Signed by", "Please quote"):
        assert absent not in t, absent
    assert "$341.31" in t and "Job no. J-88213" in t


def test_qr_code_can_be_switched_off_on_its_own():
    t = text(render(invoice(branding=brand(show={"qr_code": False}))))
    assert "Pay online: https://pay.example.com/i/ACME-001042" in t and "Scan to pay" not in t


def test_logo_is_embedded_as_an_image(tmp_path):
    from PIL import Image

    path = tmp_path / "logo.png"
    Image.new("RGB", (400, 100), (11, 95, 255)).save(path)
    pdf = render(invoice(branding=brand(logo=str(path))))
    assert render(invoice(branding=brand(logo=str(path)))) == pdf
    images = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images
    assert len(images) == 1 and images[0].image.size == (400, 100)
    assert render(invoice(branding=brand(logo=str(path), show={"logo": False}))).count(b"/Subtype /Image") == 0


def test_times_are_printed_in_the_tenants_time_zone():
    t = text(render(invoice(branding=brand(timezone="America/Chicago"))))
    assert "Completed: Nov 2, 2026, 9:30 AM CST" in t and "at Nov 2, 2026, 9:45 AM CST" in t


def test_page_size_follows_the_locale_unless_set():
    def size(doc):
        box = pypdf.PdfReader(io.BytesIO(render(doc))).pages[0].mediabox
        return round(float(box.width)), round(float(box.height))

    assert size(invoice()) == (612, 792)  # Letter in the US
    assert size(invoice(locale="en_GB")) == (595, 842)  # A4 elsewhere
    assert size(invoice(branding=brand(page_size="A4"))) == (595, 842)


def test_branding_given_as_a_model_or_a_dict_renders_the_same():
    assert render(invoice(branding=Branding.model_validate(brand()))) == render(invoice())


def test_every_shared_event_renders():
    """The whole corpus, with the built-in tenants: each PDF shows its own total and its last line."""
    tenants = load_tenants(None)
    issued = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
    from babel.numbers import format_currency
    for i, raw in enumerate(shared_events()):
        event = Event.model_validate(raw)
        tenant = tenants[event.tenant]
        doc = document(event, event.tenant, tenant, f"T-{i:05d}", issued + timedelta(minutes=i),
                       event.job.payment_terms_days)
        drawn = runs(render(doc))
        assert_nothing_overlaps(drawn)
        t = " ".join(r[-1] for r in drawn)
        total = format_currency(doc["total"], doc["currency"], locale=tenant.locale).replace("\u00a0", " ")
        assert total in t, (raw["id"], total)
        assert doc["lines"][-1]["description"].split()[0] in t


def runs(pdf: bytes) -> list[tuple[int, float, float, float, str]]:
    """(page, baseline, left, right, text) of every run of text drawn, from the content streams."""
    from reportlab.pdfbase import pdfmetrics

    from invoicer.pdf import BOLD

    out = []
    for n, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages):
        def visit(chunk, cm, tm, font, size, n=n):
            if font is None or not chunk.strip():
                return
            base = str(font.get("/BaseFont"))
            name = CJK if "IPAex" in base else BOLD if "Bold" in base else FONT
            x, y = tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]
            width = pdfmetrics.stringWidth(chunk.strip(), name, size) * cm[0] * tm[0]  # pypdf adds spaces
            out.append((n, round(y, 1), x, x + width, chunk.strip()))

        page.extract_text(visitor_text=visit)
    return out


def assert_nothing_overlaps(drawn) -> None:
    """No run of text reaches into the next one on the same baseline (a cell overflowing its column)."""
    by_baseline: dict = {}
    for page, y, left, right, t in drawn:
        by_baseline.setdefault((page, y), []).append((left, right, t))
    for key, row in by_baseline.items():
        row.sort()
        for (l1, r1, t1), (l2, _, t2) in zip(row, row[1:]):
            # runs starting at the same x are one line set in two fonts (pypdf reports the line's start)
            assert r1 <= l2 + 0.5 or l1 == l2, f"{t1!r} runs into {t2!r} on {key}"


def test_big_amounts_and_long_numbers_wrap_instead_of_overlapping():
    big = D("123456789012.345")
    doc = invoice(currency="KWD", number="ACME-2026.11-" + "9" * 30,
                  lines=[line("Chiller plant retrofit " * 6, "1234.5", "99999999.999", "SKU-" + "X" * 60, "labor"),
                         line("Compressor", "1000000", "123456.789", None)],
                  subtotal=big, discount_total=D("0"), discounts=[],
                  tax={"rate": D("0.0825"), "jurisdiction": "KW-" + "LONGJURISDICTION" * 3, "amount": big},
                  total=big * 2)
    pdf = render(doc)
    drawn = runs(pdf)
    right = 612 - 18 * 72 / 25.4 + 0.5  # Letter, less the right margin
    assert drawn and max(r for _, _, _, r, _ in drawn) <= right
    assert min(left for _, _, left, _, _ in drawn) >= 18 * 72 / 25.4 - 0.5
    assert_nothing_overlaps(drawn)
    assert "246,913,578,024.690" in re.sub(r"\s+", "", text(pdf))



def test_notes_and_summary_longer_than_a_page_flow_over_pages():
    notes = "\n".join(f"Note line {i:03d}." for i in range(90))  # under the 2,000 characters allowed
    summary = " ".join(f"step{i:03d}" for i in range(700))
    pdf = render(invoice(job={**invoice()["job"], "summary": summary}, branding=brand(notes=notes)))
    t = text(pdf)
    assert len(pages(pdf)) >= 3
    assert [int(m) for m in re.findall(r"Note line (\d{3})", t)] == list(range(90))
    assert [int(m) for m in re.findall(r"step(\d{3})", t)] == list(range(700))


def test_the_qr_code_drawn_on_the_page_reads_back_as_the_payment_link():
    """The modules as the content stream draws them (one path of rectangles under one matrix), painted
    back into an image and decoded."""
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    url = "https://invoice.stripe.com/i/acct_1Nv0FGQ9RKHgCVdK/test_YWNjdF8xTnYwRkdROVJLSGdDVmRL?s=ap"
    content = pypdf.PdfReader(io.BytesIO(render(invoice(pay_url=url)))).pages[0].get_contents().get_data().decode()
    path = re.search(r"q ([\d.]+) 0 0 [\d.]+ ([\d.]+) ([\d.]+) cm [\d. ]+ rg ((?:-?\d+ -?\d+ \d+ 1 re ?)+) f Q", content)
    assert path, "the QR code is one path"
    rects = [tuple(map(int, r)) for r in re.findall(r"(-?\d+) (-?\d+) (\d+) 1 re", path[4])]
    size = max(c + n for c, _, n in rects)
    scale, quiet = 4, 4
    img = Image.new("L", ((size + 2 * quiet) * scale,) * 2, 255)
    for c, y, n in rects:
        img.paste(0, ((c + quiet) * scale, (-y + quiet) * scale, (c + n + quiet) * scale, (-y + 1 + quiet) * scale))
    assert [b.text for b in zxingcpp.read_barcodes(img)] == [url]
