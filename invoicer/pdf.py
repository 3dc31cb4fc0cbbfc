"""Invoice PDF renderer: one priced invoice dict in, PDF bytes out.

Deterministic: the same dict (and logo file) gives the same bytes. reportlab runs in invariant mode
and the creation date is the invoice's own (doc["created_at"]); nothing reads the clock. The PDF's
SHA-256 is recorded in the audit trail, so it proves what was sent.

Money stays Decimal and is formatted by Babel in the tenant's locale with the currency's own
decimals (JPY none, KWD three). Text is set in Noto Sans (the pymupdf-fonts wheel: Latin with every
Vietnamese and Polish letter, Greek, Cyrillic); characters it lacks (Japanese kana and kanji) fall
back, run by run, to IPAexGothic from the matplotlib-fontja wheel. Both are embedded as subsets.

Layout and wording come from the tenant's `branding:` options (invoicer.branding.Branding). The
page is boxes of invoicer.pdfbox (no markup parsing, no platypus): the lines are rows of boxes,
laid over pages with the header row repeated, and the page count is known before a page is drawn;
the payment link's QR code comes from invoicer.qr. See docs/pdf.md, "Speed".
"""
from __future__ import annotations

import copy
import importlib.util
import io
import re
import threading
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.units import mm
from reportlab.lib.utils import _digester
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import (FF_NONSYMBOLIC, FF_SYMBOLIC, SUBSETN, TTFont, TTFontFace,
                                       makeToUnicodeCMap)
from reportlab.pdfgen.canvas import Canvas

from . import qr
from .branding import Branding
from .pdfbox import Gap, Part, Row, Span, Stack, Text, paginate, rgb

FONT, BOLD, CJK = "InvoicerSans", "InvoicerSans-Bold", "InvoicerCJK"
MARGIN = 18 * mm
RULE = colors.HexColor("#D1D5DB")
KINDS = ("labor", "material", "fee")
_FONT_CHARS: dict[str, frozenset[int]] = {}
_fonts = threading.Lock()  # threads-pool workers: a thread never sees a font half registered

# font subsets kept per font and process: new customer names keep making new ones, each ~40-80 KB with
# its templates (bench/memory.py: 256 let a pool process grow ~16 MB); a miss costs ~1 ms once
SUBSETS_KEPT = 32


# ---------------------------------------------------------------- fonts and text

class _Face(TTFontFace):
    """A font face whose embedded subsets are made and compressed once per process for each set of
    characters (reportlab makes and compresses them again for every document: about 1 ms a font).

    The key is the subset's characters, nothing else, and the bytes are a pure function of it, so a
    cached subset is the same bytes a fresh one would be. An ASCII-only invoice always uses the same
    subset; names with other letters add a subset of their own (a miss, cached for the next)."""

    _cache_lock = threading.Lock()

    def _subset(self, subset) -> tuple[bytes, bytes]:
        key = tuple(subset)
        cache = self.__dict__.setdefault("_subsets", {})
        hit = cache.get(key)
        if hit is None:
            raw = TTFontFace.makeSubset(self, subset)
            hit = (raw, pdfdoc.PDFZCompress.encode(raw))
            with self._cache_lock:
                if len(cache) >= SUBSETS_KEPT:  # bounded: drop the oldest
                    cache.pop(next(iter(cache)))
                cache[key] = hit
        return hit

    def makeSubset(self, subset):
        return self._subset(subset)[0]

    def addSubsetObjects(self, doc, fontname, subset):
        ref = super().addSubsetObjects(doc, fontname, subset)
        stream = doc.idToObject[f"fontFile:{self.filename}({fontname})"]
        if stream.filters == [pdfdoc.PDFZCompress]:  # already compressed: the stream takes it as it is
            stream.content = self._subset(subset)[1]
            stream.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName(pdfdoc.PDFZCompress.pdfname)])
            stream.filters = None
        return ref


class _Raw(pdfdoc.PDFObject):
    """A PDF value already formatted."""

    def __init__(self, data: bytes):
        self.data = data

    def format(self, document) -> bytes:
        return self.data


class _Template(pdfdoc.PDFObject):
    """An object formatted once, but for its references to this document's objects, filled in each time."""

    __RefOnly__ = 1  # an indirect object, as the font dictionaries it stands for

    def __init__(self, template: tuple[list[bytes], list[str]], refs: dict):
        self.pieces, self.refs = template[0], [refs[name] for name in template[1]]

    def format(self, document) -> bytes:
        out = [self.pieces[0]]
        for ref, piece in zip(self.refs, self.pieces[1:]):
            out += (ref.format(document), piece)
        return b"".join(out)


def _template(obj, document) -> tuple[list[bytes], list[str]]:
    """obj formatted, cut at its _Raw(_mark(name)) placeholders: the pieces and the names in order."""
    parts = re.split(rb"\x00ref:(\w+)\x00", obj.format(document))
    return parts[0::2], [p.decode() for p in parts[1::2]]


def _mark(name: str) -> _Raw:
    return _Raw(b"\x00ref:" + name.encode() + b"\x00")


class _Font(TTFont):
    """A font whose subsets' PDF objects are made once per process in invoicer's documents: the font
    dictionary (with its hundred or more widths, which reportlab formats one by one in every document) and
    the font descriptor formatted but for their references, the ToUnicode map compressed. Keyed, like the
    face's subsets, by the subset's number and characters, of which all of it is a pure function. Other
    documents (the benchmark's bare table) are made as reportlab makes them."""

    _cache_lock = threading.Lock()

    def addObjects(self, doc):
        if not (getattr(doc, "invoicer", False) and doc.compression):
            return super().addObjects(doc)
        state = self._assignState(doc)
        state.frozen = 1
        cache = self.__dict__.setdefault("_dicts", {})
        face = self.face
        for n, subset in enumerate(state.subsets):
            internal = self.getSubsetInternalName(n, doc)[1:]
            base = b"".join((SUBSETN(n), b"+", face.name, face.subfontNameX)).decode("pdfdoc")
            key = (n, tuple(subset))
            hit = cache.get(key)
            if hit is None:
                descriptor = pdfdoc.PDFDictionary({
                    "Type": "/FontDescriptor", "Ascent": face.ascent, "CapHeight": face.capHeight,
                    "Descent": face.descent, "Flags": face.flags & ~FF_NONSYMBOLIC | FF_SYMBOLIC,
                    "FontBBox": pdfdoc.PDFArray(face.bbox), "FontName": pdfdoc.PDFName(base),
                    "ItalicAngle": face.italicAngle, "StemV": face.stemV, "FontFile2": _mark("fontfile"),
                    "MissingWidth": face.defaultWidth})
                font = pdfdoc.PDFTrueTypeFont()
                font.Name, font.BaseFont, font.FirstChar, font.LastChar = internal, base, 0, len(subset) - 1
                font.Widths = pdfdoc.PDFArray([face.getCharWidth(c) for c in subset])
                font.FontDescriptor, font.ToUnicode = _mark("descriptor"), _mark("cmap")
                hit = (_template(font, doc), _template(descriptor, doc),
                       pdfdoc.PDFZCompress.encode(makeToUnicodeCMap(base, subset)))
                with self._cache_lock:
                    if len(cache) >= SUBSETS_KEPT:  # bounded: drop the oldest
                        cache.pop(next(iter(cache)))
                    cache[key] = hit
            font_t, descriptor_t, cmap_bytes = hit
            flate = pdfdoc.PDFArray([pdfdoc.PDFName(pdfdoc.PDFZCompress.pdfname)])
            cmap = pdfdoc.PDFStream(content=cmap_bytes)
            cmap.dictionary["Filter"] = flate
            raw, packed = face._subset(subset)
            fontfile = pdfdoc.PDFStream(content=packed)
            fontfile.dictionary["Length1"] = len(raw)
            fontfile.dictionary["Filter"] = flate
            refs = {"cmap": doc.Reference(cmap, "toUnicodeCMap:" + base),
                    "fontfile": doc.Reference(fontfile, f"fontFile:{face.filename}({base})")}
            refs["descriptor"] = doc.Reference(_Template(descriptor_t, refs), "fontDescriptor:" + base)
            font = _Template(font_t, refs)
            doc.Reference(font, internal)
            doc.idToObject["BasicFonts"].dict[internal] = font
        del self.state[doc]


def _font(name: str, source) -> TTFont:
    font = _Font(name, source)
    font.face.__class__ = _Face
    return font


def register_fonts() -> None:
    """Noto Sans regular and bold, once per process (under a lock: the bold face is there with the regular)."""
    with _fonts:
        if FONT in _FONT_CHARS:
            return
        from pymupdf_fonts.NotoSans_Bold import fontbuffer as bold
        from pymupdf_fonts.NotoSans_Regular import fontbuffer as regular

        font = _font(FONT, io.BytesIO(regular))
        pdfmetrics.registerFont(font)
        pdfmetrics.registerFont(_font(BOLD, io.BytesIO(bold)))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)
        _FONT_CHARS[FONT] = frozenset(font.face.charToGlyph)


def cjk_font_path() -> Path | None:
    """IPAexGothic (Japanese, IPA Font License) inside the matplotlib-fontja wheel, found without importing it."""
    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "fonts" / "ipaexg.ttf"
    return path if path.exists() else None


def _cjk_chars() -> frozenset[int]:
    """The fallback font's characters; it is loaded the first time a text needs it."""
    if CJK in _FONT_CHARS:
        return _FONT_CHARS[CJK]
    with _fonts:
        if CJK not in _FONT_CHARS:
            path = cjk_font_path()
            chars: frozenset[int] = frozenset()
            if path is not None:
                font = _font(CJK, str(path))
                pdfmetrics.registerFont(font)
                pdfmetrics.registerFontFamily(CJK, normal=CJK, bold=CJK, italic=CJK, boldItalic=CJK)
                chars = frozenset(font.face.charToGlyph)
            _FONT_CHARS[CJK] = chars
    return _FONT_CHARS[CJK]


def covered(text: str) -> bool:
    """Whether Noto Sans alone can set this text."""
    return text.isascii() or all(ord(ch) in _FONT_CHARS[FONT] or ch in "\n\t" for ch in text)


def _script_runs(text: str) -> list[tuple[str, bool]]:
    """The text as runs (text, set in the fallback font?): each run Noto Sans lacks goes to IPAexGothic."""
    if covered(text):
        return [(text, False)]
    latin, fallback = _FONT_CHARS[FONT], _cjk_chars()
    out: list[tuple[str, bool]] = []
    run, in_cjk = [], False
    for ch in text:
        cjk = ord(ch) not in latin and ord(ch) in fallback
        if cjk != in_cjk and run:
            out.append(("".join(run), in_cjk))
            run = []
        in_cjk = cjk
        run.append(ch)
    if run:
        out.append(("".join(run), in_cjk))
    return out


def spans(text: str, size: float = 9, bold: bool = False, color: colors.Color = colors.black,
          link: str | None = None) -> list[Span]:
    """Plain text as drawing spans, each run in a font that has its characters."""
    font = BOLD if bold else FONT
    return [Span(t, CJK if cjk else font, size, color, link) for t, cjk in _script_runs(text)]


# ---------------------------------------------------------------- formatting

@dataclass
class _Look:
    """Everything one render needs besides the invoice: branding, locale, colours."""
    doc: dict
    brand: Branding
    locale: Locale
    zone: ZoneInfo | timezone
    accent: colors.Color
    ink: colors.Color
    muted: colors.Color
    width: float
    pagesize: tuple[float, float]
    memo: dict = field(default_factory=dict)  # this render's formatted amounts and dates (each repeats)

    def label(self, key: str, **values) -> str:
        text = self.brand.label(key)
        return " ".join(text.format(**values).split()) if values else text

    def text(self, text: str, size=9, bold=False, color=None, align=0, leading=None) -> Text:
        """Plain text (newlines start new lines) in one style, wrapped to the width it is given."""
        color = color or self.ink
        return Text([spans(t, size, bold, color) for t in text.split("\n")], size, leading or size * 1.3, align)

    def money(self, value: Decimal) -> str:
        text = self.memo.get(value)
        if text is None:
            # ja_JP writes the full-width yen sign; the ordinary one means the same and reads the same in any font
            text = format_currency(value, self.doc["currency"], locale=self.locale).replace("\uffe5", "\u00a5")
            self.memo[value] = text
        return text

    def number(self, value: Decimal) -> str:
        return format_decimal(value, locale=self.locale, decimal_quantization=False)

    def percent(self, value: Decimal) -> str:
        return format_percent(value, locale=self.locale, decimal_quantization=False)

    def date(self, value: date) -> str:
        text = self.memo.get(value)  # the due date is printed three times
        if text is None:
            text = self.memo[value] = format_date(value, "medium", locale=self.locale)
        return text

    def datetime(self, value: datetime) -> str:
        value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(self.zone)
        pattern = str(self.locale.datetime_formats["medium"])
        time_text = format_time(value, "short", locale=self.locale)
        return f'{pattern.replace("{1}", self.date(value.date())).replace("{0}", time_text)} {value.tzname()}'


def _on(color: colors.Color) -> colors.Color:
    """Black or white, whichever reads better on this colour."""
    return colors.black if 0.299 * color.red + 0.587 * color.green + 0.114 * color.blue > 0.6 else colors.white


def _tint(color: colors.Color, amount: float) -> colors.Color:
    return colors.Color(*(1 - amount + amount * c for c in (color.red, color.green, color.blue)))


def _address(a: dict | None) -> list[str]:
    if not a:
        return []
    tail = " ".join(p for p in (a.get("region"), a.get("postal_code")) if p)
    city = ", ".join(p for p in (a.get("city"), tail) if p)
    return [p for p in (a.get("line1"), city, a.get("country")) if p]


def _terms(look: _Look) -> str:
    days = look.doc["payment_terms_days"]
    return look.label("due_on_receipt") if days == 0 else look.label("net", days=days)


def template_values(look: _Look) -> dict[str, str]:
    doc = look.doc
    return {"tenant": doc["seller"]["name"], "number": doc["number"], "issued": look.date(doc["issued_on"]),
            "due": look.date(doc["due_on"]), "total": look.money(doc["total"]),
            "amount_due": look.money(doc["total"]), "customer": doc["customer"]["name"],
            "job_number": doc["job"]["number"], "terms": _terms(look), "pay_url": doc.get("pay_url") or ""}


# ---------------------------------------------------------------- the parts of the page

def _block(look: _Look, title: str, lines: list[str], bold_first: bool = False) -> Text:
    """A captioned block of lines (bill to, service address, job)."""
    body = [spans(x, bold=bold_first and i == 0, color=look.ink) for i, x in enumerate(lines)]
    return Text([spans(title.upper(), 7, color=look.muted), *body], 9, 12)


@lru_cache(maxsize=32)
def _logo_image(path: str, stamp: tuple[int, int]) -> pdfdoc.PDFImageXObject:
    """The logo decoded and compressed once per file version (path, mtime, size), not once per invoice."""
    name = _digester(f"{path}None".encode())  # the name canvas.drawImage gives a file
    image = pdfdoc.PDFImageXObject(name, path)
    image.name = name
    return image


class _Logo:
    """The tenant's logo, drawn as canvas.drawImage would draw its file, from the per-process decoded copy."""

    halign = "left"

    def __init__(self, path: str, stamp: tuple[int, int], width: float, height: float):
        self.path, self.stamp, self.width, self.height = path, stamp, width, height

    def measure(self, width: float) -> tuple[float, float]:
        return self.width, self.height

    def paint(self, canv, x: float, top: float) -> None:
        proto = _logo_image(self.path, self.stamp)
        doc = canv._doc
        ref = doc.getXObjectName(proto.name)
        if doc.idToObject.get(ref) is None:
            image = copy.copy(proto)  # a document registers the object it is given: each gets its own
            if getattr(proto, "_smask", None) is None:  # nothing in it refers to another object: format it once
                data = proto.__dict__.get("formatted")
                if data is None:
                    data = proto.formatted = pdfdoc.PDFImageXObject.format(proto, doc)
                image.format = lambda document, data=data: data
            canv._setXObjects(image)
            doc.Reference(image, ref)
            doc.addForm(proto.name, image)
            smask = getattr(proto, "_smask", None)
            if smask is not None:
                del image._smask
                smask = copy.copy(smask)
                canv._setXObjects(smask)
                image.smask = doc.Reference(smask, doc.getXObjectName(smask.name))
        canv._currentPageHasImages = 1
        canv.saveState()
        canv.translate(x, top - self.height)
        canv.scale(self.width, self.height)
        canv._code.append(f"/{ref} Do")
        canv.restoreState()
        canv._formsinuse.append(proto.name)


def _logo(look: _Look):
    path = look.brand.logo
    if not (path and look.brand.show.logo):
        return None
    st = Path(path).stat()
    stamp = (st.st_mtime_ns, st.st_size)
    image = _logo_image(str(path), stamp)
    w = look.brand.logo_width_mm * mm
    h = w * image.height / image.width
    cap = look.brand.logo_max_height_mm * mm
    if h > cap:
        w, h = w * cap / h, cap
    return _Logo(str(path), stamp, w, h)


def _header(look: _Look) -> Row:
    doc, seller, show = look.doc, look.doc["seller"], look.brand.show
    logo = _logo(look)
    lines = [*(seller.get("address") or [])]
    if seller.get("tax_id") and show.tax_id:
        lines.append(f"{look.label('tax_id')}: {seller['tax_id']}")
    left = Stack([logo, Gap(3 * mm) if logo else None, look.text(seller["name"], 14, True, look.accent, leading=17),
                  look.text("\n".join(lines), leading=12.5) if lines else None])

    col = look.width * 0.2
    meta = [Row([look.text(k, color=look.muted, align=2), look.text(v, bold=True, align=2)], [col, col],
                pad=[(1, 6, 1, 6), (1, 0, 1, 6)], halign="right")
            for k, v in ((look.label("number"), doc["number"]), (look.label("issued"), look.date(doc["issued_on"])),
                         (look.label("due"), look.date(doc["due_on"])))]
    on = _on(look.accent)
    due = Row([look.text(look.label("amount_due"), color=on), look.text(look.money(doc["total"]), 12, True, on, 2)],
              [look.width * 0.17, look.width * 0.23], pad=(5, 6, 6, 6), valign="middle", background=look.accent,
              halign="right")
    right = Stack([look.text(look.label("title"), 22, True, look.accent, align=2, leading=26), Gap(2 * mm), *meta,
                   Gap(3 * mm), due])
    return Row([left, right], [look.width * 0.56, look.width * 0.44], pad=(3, 0, 10, 0),
               rule_below=(1.5, look.accent))


def _parties(look: _Look) -> Row:
    doc, show = look.doc, look.brand.show
    customer, job = doc["customer"], doc["job"]
    contact = [x for x in (customer.get("email"), customer.get("phone")) if x] if show.customer_contact else []
    bill_to = [customer["name"], *_address(customer.get("billing_address") or doc["service_address"]), *contact]
    job_lines = [f"{look.label('job_number')} {job['number']}"]
    if show.technician:
        job_lines.append(f"{look.label('technician')}: {job['technician']}")
    if job.get("po_number") and show.po_number:
        job_lines.append(f"{look.label('po_number')}: {job['po_number']}")
    if show.completed_at:
        job_lines.append(f"{look.label('completed')}: {look.datetime(job['completed_at'])}")
    blocks = [_block(look, look.label("bill_to"), bill_to, True)]
    if show.service_address:
        blocks.append(_block(look, look.label("service_address"), _address(doc["service_address"])))
    blocks.append(_block(look, look.label("job"), job_lines))
    return Row(blocks, [look.width / len(blocks)] * len(blocks), pad=(3, 6, 3, 0))


def _items(look: _Look) -> list[Part]:
    """The lines in sections, one Row each; every row after the header row repeats it on a new page."""
    show, on = look.brand.show, _on(look.accent)
    heads = [look.label(k) for k in ("description", "quantity", "unit_price", "amount")]
    widths = [look.width * f for f in (0.52, 0.12, 0.17, 0.19)]
    pad = (4, 6, 5, 6)
    head = Row([look.text(h, bold=True, color=on, align=0 if i == 0 else 2) for i, h in enumerate(heads)], widths,
               pad=pad, background=look.accent)
    band = _tint(look.accent, 0.1)
    rule = (0.25, RULE)
    parts = [Part(head, keep_with_next=True)]
    for kind in KINDS:
        lines = [ln for ln in look.doc["lines"] if ln["kind"] == kind]
        if not lines:
            continue
        section = Row([look.text(look.label(kind), 8, True)], [look.width], pad=(3, 6, 3, 6), background=band,
                      rule_below=rule)
        parts.append(Part(section, keep_with_next=True, head=head))  # never last on a page
        for ln in lines:
            extra = []
            if ln.get("sku") and show.sku:
                extra.append(f"SKU {ln['sku']}")
            if not ln.get("taxable", True) and show.not_taxable:
                extra.append(look.label("not_taxable"))
            desc = Stack([look.text(ln["description"], leading=11.5),
                          look.text(" · ".join(extra), 7, color=look.muted, leading=9) if extra else None])
            if kind == "labor":
                qty = look.label("hours", hours=look.number(ln["quantity"]))
                price = look.label("per_hour", rate=look.money(ln["unit_price"]))
            elif kind == "material":
                qty, price = look.number(ln["quantity"]), look.money(ln["unit_price"])
            else:
                qty = price = ""
            cells = [desc, *(look.text(t, align=2) for t in (qty, price, look.money(ln["amount"])))]
            parts.append(Part(Row(cells, widths, pad=pad, rule_below=rule), head=head))
    last = parts[-1].box
    last.rule_below = (0.75, look.accent)
    return parts


def _totals(look: _Look) -> Stack:
    doc = look.doc
    rows = [(look.label("subtotal"), look.money(doc["subtotal"]))]
    for d in doc.get("discounts") or []:
        pct = "" if d.get("percent") is None else f" ({look.percent(d['percent'] / 100)})"
        rows.append((f"{d['description']}{pct}", look.money(-d["amount"])))
    if len(doc.get("discounts") or []) > 1:
        rows.append((look.label("discount_total"), look.money(-doc["discount_total"])))
    tax = doc["tax"]
    rows.append((look.label("tax", jurisdiction=tax.get("jurisdiction") or "", rate=look.percent(tax["rate"])),
                 look.money(tax["amount"])))
    on = _on(look.accent)
    widths = [look.width * 0.32, look.width * 0.19]
    cells = [Row([look.text(k, align=2), look.text(v, align=2)], widths, pad=(2, 6, 3, 6), valign="middle",
                 halign="right") for k, v in rows]
    cells.append(Row([look.text(look.label("total"), bold=True, align=2),
                      look.text(look.money(doc["total"]), bold=True, align=2)], widths, pad=(2, 6, 3, 6),
                     valign="middle", rule_above=(0.75, RULE), halign="right"))
    cells.append(Row([look.text(look.label("amount_due"), 10, True, on, 2),
                      look.text(look.money(doc["total"]), 10, True, on, 2)], widths, pad=(5, 6, 6, 6),
                     valign="middle", background=look.accent, halign="right"))
    return Stack(cells, halign="right")


class _QR:
    """The payment link as a QR code (invoicer.qr: encoded per invoice, nothing cached), drawn as one path
    of the dark runs, and clickable."""

    QUIET = 4  # modules of white margin the standard asks for
    halign = "left"

    def __init__(self, url: str, size: float, color: colors.Color):
        self.url, self.size, self.color = url, size, color

    def measure(self, width: float) -> tuple[float, float]:
        return self.size, self.size

    def paint(self, canv, x: float, top: float) -> None:
        count, runs = qr.dark_runs(self.url)
        box = self.size / (count + 2 * self.QUIET)
        # in module units (whole numbers, row r's top edge at -r), scaled and placed by one matrix
        path = " ".join([f"{c} {-r} {n} 1 re" for r, c, n in runs])
        origin = f"{x + self.QUIET * box:.3f} {top - (self.QUIET + 1) * box:.3f}"
        canv._code.append(f"q {box:.4f} 0 0 {box:.4f} {origin} cm {rgb(self.color)} {path} f Q")
        canv.linkURL(self.url, (x, top - self.size, x + self.size, top), relative=1)


def _payment(look: _Look) -> Stack:
    """Terms, the pay-online link with its QR code, the signature: the column beside the totals."""
    doc, show, ink = look.doc, look.brand.show, look.ink
    lines = [[*spans(f"{look.label('payment_terms')}:", bold=True, color=ink),
              *spans(f" {_terms(look)} · {look.label('due')} {look.date(doc['due_on'])}", color=ink)]]
    pay_url = doc.get("pay_url") if show.pay_link else None
    if pay_url:
        link = look.accent if _on(look.accent) == colors.white else ink  # pale brands read badly
        lines.append([*spans(f"{look.label('pay_online')}:", bold=True, color=ink),
                      Span(" " + pay_url, FONT, 9, link, pay_url)])
    if doc.get("signature") and show.signature:
        sig = doc["signature"]
        lines.append(spans(look.label("signed", name=sig["signed_by"], time=look.datetime(sig["signed_at"])),
                           color=ink))
    out = [Text(lines, 9, 13)]
    if pay_url and show.qr_code:
        out += [Gap(2 * mm), _QR(pay_url, 24 * mm, ink), look.text(look.label("scan_to_pay"), 7, color=look.muted)]
    return Stack(out)


def _notes(look: _Look) -> list:
    if not (look.brand.notes and look.brand.show.notes):
        return []
    text = look.brand.notes.format(**template_values(look))
    head = Part(look.text(look.label("notes"), 8, True, look.muted), keep_with_next=True)  # no orphan heading
    return [Gap(4 * mm), head, Part(look.text(text, leading=12))]


# ---------------------------------------------------------------- pages

def _decorator(look: _Look):
    doc = look.doc
    footer = look.brand.footer.format(**template_values(look)) if look.brand.footer else ""
    footer_text = look.text(footer, 7, color=look.muted, leading=9) if footer else None
    running = f"{doc['seller']['name']} · {look.label('number')} {doc['number']}"

    def decorate(canvas: Canvas, page: int, pages: int) -> None:
        width, height = canvas._pagesize
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, 14 * mm, width - MARGIN, 14 * mm)
        if footer_text is not None:
            footer_text.measure(width - 2 * MARGIN - 45 * mm)
            footer_text.paint(canvas, MARGIN, 12 * mm)
        tag = look.text(look.label("page", page=page, pages=pages), 7, color=look.muted, align=2)
        tag.measure(45 * mm)
        tag.paint(canvas, width - MARGIN - 45 * mm, 12 * mm)
        if page > 1:  # continuation pages say whose invoice they belong to
            head = look.text(running, 7, color=look.muted, align=2)
            head.measure(width - 2 * MARGIN)
            head.paint(canvas, MARGIN, height - MARGIN + 3 * mm + 9.1)

    return decorate


def _look(doc: dict) -> _Look:
    register_fonts()
    brand = doc.get("branding")
    brand = brand if isinstance(brand, Branding) else Branding.model_validate(brand or {})
    zone = timezone.utc if brand.timezone == "UTC" else ZoneInfo(brand.timezone)
    locale = Locale.parse(doc["locale"])  # once: Babel would parse a locale name on every call
    size = {"A4": A4, "letter": LETTER}.get(brand.page_size)
    if size is None:
        size = LETTER if locale.territory in ("US", "CA") else A4
    look = _Look(doc=doc, brand=brand, locale=locale, zone=zone,
                 accent=colors.HexColor(brand.color or brand.text_color), ink=colors.HexColor(brand.text_color),
                 muted=colors.HexColor(brand.muted_color), width=size[0] - 2 * MARGIN, pagesize=size)
    return look


def _compress(page: pdfdoc.PDFPage) -> None:
    """The page's content stream deflated at level 1, without reportlab's ASCII85 layer on top (a fifth
    larger, for 7-bit transports no PDF goes through now): half the time of level 6, a few hundred bytes
    more in a file of some 30 KB, most of which is the embedded fonts."""
    contents = pdfdoc.PDFStream(content=zlib.compress(page.stream.encode("utf-8"), 1))
    contents.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName(pdfdoc.PDFZCompress.pdfname)])
    page.Contents = contents


def render(doc: dict) -> bytes:
    """The invoice as PDF bytes; identical bytes for an identical dict."""
    look = _look(doc)
    story = [Part(_header(look)), Gap(6 * mm), Part(_parties(look)), Gap(5 * mm)]
    if look.brand.show.summary and doc["job"].get("summary"):
        summary = Text([[*spans(f"{look.label('work_performed')}:", bold=True, color=look.ink),
                         *spans(" " + doc["job"]["summary"], color=look.ink)]], 9, 12)
        story += [Part(summary), Gap(4 * mm)]
    closing = Row([_payment(look), _totals(look)], [look.width * 0.48, look.width * 0.52], pad=(0, 0, 3, 0))
    story += [*_items(look), Gap(4 * mm), Part(closing), *_notes(look)]
    width, height = look.pagesize
    pages = paginate(story, look.width, height - MARGIN, MARGIN + 8 * mm)

    out = io.BytesIO()
    canvas = Canvas(out, pagesize=look.pagesize, invariant=1, initialFontName=FONT)
    canvas._doc.invoicer = True  # its fonts' dictionaries come from _Font's cache
    created = doc["created_at"] if doc["created_at"].tzinfo else doc["created_at"].replace(tzinfo=timezone.utc)
    stamp = created.astimezone(timezone.utc).strftime("D:%Y%m%d%H%M%S+00'00'")
    canvas.setDateFormatter(lambda *_: stamp)
    number, seller = doc["number"], doc["seller"]["name"]
    canvas.setTitle(f"Invoice {number}")
    canvas.setAuthor(seller)
    canvas.setSubject(f"Invoice {number}")
    canvas.setCreator("invoicer")
    decorate = _decorator(look)
    for n, page in enumerate(pages, 1):
        for box, top in page:
            box.paint(canvas, MARGIN, top)
        decorate(canvas, n, len(pages))
        canvas.showPage()
        _compress(canvas._doc.Pages.pages[-1])
    canvas.save()
    return out.getvalue()
