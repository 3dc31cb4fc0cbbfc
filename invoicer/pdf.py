"""Invoice PDF renderer: one priced invoice dict in, PDF bytes out.

Pure and deterministic: the same dict gives the same bytes (reportlab invariant mode, the
creation date taken from doc["created_at"]); no I/O, no clock. Money stays Decimal and is
formatted by Babel with the currency's own decimals. Text is set in Noto Sans, which ships
inside the pymupdf-fonts wheel, so names in any Latin script (Polish, Vietnamese, German) render.
"""
from __future__ import annotations

import io
import threading
from datetime import date, datetime, timezone
from decimal import Decimal
from xml.sax.saxutils import escape

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table

FONT, BOLD = "InvoicerSans", "InvoicerSans-Bold"
INK, MUTED, RULE, ZEBRA = (colors.HexColor(c) for c in ("#1F2937", "#6B7280", "#D1D5DB", "#F3F4F6"))
MARGIN = 18 * mm
_fonts = threading.Lock()


def register_fonts() -> None:
    """Once per process; under a lock, so a thread never sees the regular face without the bold one."""
    with _fonts:
        if FONT in pdfmetrics.getRegisteredFontNames():
            return
        from pymupdf_fonts.NotoSans_Bold import fontbuffer as bold
        from pymupdf_fonts.NotoSans_Regular import fontbuffer as regular
        pdfmetrics.registerFont(TTFont(FONT, io.BytesIO(regular)))
        pdfmetrics.registerFont(TTFont(BOLD, io.BytesIO(bold)))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def _style(size=9, bold=False, color=INK, align=0, leading=None) -> ParagraphStyle:
    return ParagraphStyle("s", fontName=BOLD if bold else FONT, fontSize=size, leading=leading or size * 1.3,
                          textColor=color, alignment=align)


def _accent(value: str | None) -> colors.Color:
    try:
        return colors.HexColor(value) if value else INK
    except (ValueError, TypeError):
        return INK


def _on(accent: colors.Color) -> colors.Color:
    """Black or white, whichever reads better on the accent colour."""
    return colors.black if 0.299 * accent.red + 0.587 * accent.green + 0.114 * accent.blue > 0.6 else colors.white


def _money(value: Decimal, doc: dict) -> str:
    # ja_JP uses the full-width yen sign, which Noto Sans lacks; the ordinary one means the same.
    return format_currency(value, doc["currency"], locale=doc["locale"]).replace("\uffe5", "\u00a5")


def _percent(value: Decimal, locale: str) -> str:
    return format_percent(value, locale=locale, decimal_quantization=False)


def _date(value: date, locale: str) -> str:
    return format_date(value, "medium", locale=locale)


def _datetime(value: datetime, locale: str) -> str:
    pattern = Locale.parse(locale).datetime_formats["medium"]
    return str(pattern).replace("{1}", _date(value, locale)).replace("{0}", format_time(value, "short", locale=locale))


def _address(a: dict | None) -> list[str]:
    if not a:
        return []
    tail = " ".join(p for p in (a.get("region"), a.get("postal_code")) if p)
    city = ", ".join(p for p in (a.get("city"), tail) if p)
    return [p for p in (a.get("line1"), city, a.get("country")) if p]


def _block(title: str, lines: list[str], bold_first: bool = False) -> Paragraph:
    body = [f"<b>{escape(x)}</b>" if bold_first and i == 0 else escape(x) for i, x in enumerate(lines)]
    return Paragraph(f'<font size="7" color="#6B7280">{escape(title.upper())}</font><br/>' + "<br/>".join(body),
                     _style(leading=12))


class _NumberedCanvas(Canvas):
    """Holds every page until save() so each can say 'Page N of M'; dates come from the invoice."""

    def __init__(self, *args, created: datetime, footer: str, **kwargs):
        super().__init__(*args, **kwargs)
        stamp = created if created.tzinfo else created.replace(tzinfo=timezone.utc)
        stamp = stamp.astimezone(timezone.utc).strftime("D:%Y%m%d%H%M%S+00'00'")
        self.setDateFormatter(lambda *_: stamp)
        self._footer, self._pages = footer, []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        for state in self._pages:
            self.__dict__.update(state)
            self._decorate(len(self._pages))
            super().showPage()
        super().save()

    def _decorate(self, total: int) -> None:
        width, _ = self._pagesize
        self.setStrokeColor(RULE)
        self.line(MARGIN, 14 * mm, width - MARGIN, 14 * mm)
        if self._footer:
            para = Paragraph(escape(self._footer), _style(7, color=MUTED))
            _, h = para.wrap(width - 2 * MARGIN - 30 * mm, 12 * mm)
            para.drawOn(self, MARGIN, 14 * mm - 2 * mm - h)
        self.setFont(FONT, 7)
        self.setFillColor(MUTED)
        self.drawRightString(width - MARGIN, 14 * mm - 2 * mm - 7, f"Page {self._pageNumber} of {total}")


def render(doc: dict) -> bytes:
    """The invoice as PDF bytes; identical bytes for an identical dict."""
    register_fonts()
    loc, seller, customer, job = doc["locale"], doc["seller"], doc["customer"], doc["job"]
    accent = _accent(seller.get("color"))
    hexcol = "#" + accent.hexval()[2:]
    money = lambda v: _money(v, doc)  # noqa: E731
    page = LETTER if Locale.parse(loc).territory in ("US", "CA") else A4
    width = page[0] - 2 * MARGIN

    seller_lines = [f'<font name="{BOLD}" size="15" color="{hexcol}">{escape(seller["name"])}</font>']
    seller_lines += [escape(x) for x in seller.get("address") or []]
    if seller.get("tax_id"):
        seller_lines.append(f"Tax ID: {escape(seller['tax_id'])}")
    title = [f'<font name="{BOLD}" size="20">INVOICE</font>', f"<b>No.</b> {escape(doc['number'])}",
             f"<b>Issued</b> {_date(doc['issued_on'], loc)}", f"<b>Due</b> {_date(doc['due_on'], loc)}",
             f"<b>Amount due</b> {escape(money(doc['total']))}"]
    header = Table([[Paragraph("<br/>".join(seller_lines), _style(leading=13)),
                     Paragraph("<br/>".join(title), _style(leading=14, align=2))]],
                   colWidths=[width * 0.6, width * 0.4])
    header.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                     ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("LINEBELOW", (0, 0), (-1, 0), 1.5, accent),
                     ("BOTTOMPADDING", (0, 0), (-1, -1), 8)])

    contact = [x for x in (customer.get("email"), customer.get("phone")) if x]
    bill_to = [customer["name"], *_address(customer.get("billing_address") or doc["service_address"]), *contact]
    job_lines = [f"Job {job['number']}", f"Technician: {job['technician']}"]
    if job.get("po_number"):
        job_lines.append(f"PO: {job['po_number']}")
    job_lines.append(f"Completed: {_datetime(job['completed_at'], loc)}")
    parties = Table([[_block("Bill to", bill_to, True), _block("Service address", _address(doc["service_address"])),
                      _block("Job", job_lines, True)]], colWidths=[width / 3] * 3)
    parties.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])

    cell, num = _style(), _style(align=2)
    rows = [[Paragraph(f"<b>{h}</b>", _style(color=_on(accent), align=2 if i else 0))
             for i, h in enumerate(("Description", "Qty", "Unit price", "Amount"))]]
    for line in doc["lines"]:
        text = escape(line["description"])
        if line.get("sku"):
            text += f'<br/><font size="7" color="#6B7280">SKU {escape(line["sku"])}</font>'
        rows.append([Paragraph(text, cell),
                     Paragraph(format_decimal(line["quantity"], locale=loc, decimal_quantization=False), num),
                     Paragraph(escape(money(line["unit_price"])), num), Paragraph(escape(money(line["amount"])), num)])
    items = Table(rows, colWidths=[width * 0.55, width * 0.1, width * 0.17, width * 0.18], repeatRows=1)
    items.setStyle([("BACKGROUND", (0, 0), (-1, 0), accent), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
                    ("LINEBELOW", (0, -1), (-1, -1), 0.75, RULE), ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4)])

    totals = [("Subtotal", money(doc["subtotal"]))]
    for d in doc.get("discounts") or []:
        pct = "" if d.get("percent") is None else f" ({_percent(d['percent'] / 100, loc)})"
        totals.append((f"{d['description']}{pct}", money(-d["amount"])))
    if doc.get("discounts"):
        totals.append(("Discount total", money(-doc["discount_total"])))
    tax = doc["tax"]
    totals += [(f"Tax {tax['jurisdiction']} ({_percent(tax['rate'], loc)})", money(tax["amount"])),
               ("Total", money(doc["total"])), ("Amount due", money(doc["total"]))]
    styles = [num] * (len(totals) - 2) + [_style(bold=True, align=2), _style(10, True, _on(accent), 2)]
    summary = Table([[Paragraph(escape(k), st), Paragraph(escape(v), st)] for (k, v), st in zip(totals, styles)],
                    colWidths=[width * 0.32, width * 0.18], hAlign="RIGHT")
    summary.setStyle([("LINEABOVE", (0, -2), (-1, -2), 0.75, RULE), ("BACKGROUND", (0, -1), (-1, -1), accent),
                      ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)])

    days = doc["payment_terms_days"]
    notes = [f"<b>Payment terms:</b> {'Due on receipt' if days == 0 else f'Net {days}'}"]
    if doc.get("pay_url"):
        url = escape(doc["pay_url"], {'"': "&quot;"})
        link = hexcol if _on(accent) == colors.white else "#1F2937"  # a pale brand colour is unreadable as text
        notes.append(f'<b>Pay online:</b> <link href="{url}" color="{link}">{url}</link>')
    if doc.get("signature"):
        sig = doc["signature"]
        notes.append(f"Signed by {escape(sig['signed_by'])} at {_datetime(sig['signed_at'], loc)}")

    story = [header, Spacer(1, 6 * mm), parties, Spacer(1, 4 * mm),
             Paragraph(f"<b>Work performed:</b> {escape(job['summary'])}", _style(leading=12)), Spacer(1, 4 * mm),
             items, Spacer(1, 3 * mm), KeepTogether([summary, Spacer(1, 5 * mm)] +
                                                    [Paragraph(n, _style(leading=13)) for n in notes])]
    out = io.BytesIO()
    pad = 6  # the frame's own padding: content starts exactly at MARGIN
    template = SimpleDocTemplate(out, pagesize=page, leftMargin=MARGIN - pad, rightMargin=MARGIN - pad,
                                 topMargin=MARGIN - pad, bottomMargin=MARGIN + 8 * mm - pad, invariant=1,
                                 initialFontName=FONT, title=f"Invoice {doc['number']}", author=seller["name"],
                                 subject=f"Invoice {doc['number']}", creator="invoicer")
    footer = seller.get("footer") or ""
    maker = lambda *a, **kw: _NumberedCanvas(*a, created=doc["created_at"], footer=footer, **kw)  # noqa: E731
    template.build(story, canvasmaker=maker)
    return out.getvalue()
