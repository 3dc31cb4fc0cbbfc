"""A small box layout for the fixed parts of the invoice page, drawn straight on the reportlab canvas.

platypus Paragraphs parse their text as markup with an HTML parser and Tables run a general style
engine; for the invoice's header, address blocks, totals, payment column and footer, both cost far
more than the drawing itself (they were most of a one-page render). Here text is given as spans
(text, font, size, colour, link) that need no parsing, wrapped at spaces with the fonts' metrics, and
each box draws itself at a position: `measure(width) -> (width, height)`, then `paint(canvas, x, top)`.
Text is written as PDF operators, each string encoded once into its font subset (reportlab's text
object re-formats every number and font change through its general API). `paginate` lays a story of
boxes down pages: a box that does not fit goes to the next page, a Text splits there line by line, a
table's header row is drawn again on each page it continues onto. Output is a pure function of the
boxes: no clock, no randomness.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from reportlab.lib import colors
from reportlab.lib.rl_accel import escapePDF
from reportlab.pdfbase.pdfmetrics import getFont


# Any white space separates words and is set as one space, as in a platypus Paragraph (Babel's no-break
# spaces too: "3:30 PM" reads and searches as typed). Text with nothing else takes the fast path.
_IRREGULAR_SPACE = re.compile(r"^\s|\s$|\s\s|[^\S ]")


_measures: dict[str, object] = {}


def stringWidth(text: str, font: str, size: float) -> float:
    """pdfmetrics.stringWidth with the font's own measure looked up once (this is called for every word)."""
    measure = _measures.get(font)
    if measure is None:
        measure = _measures[font] = getFont(font).stringWidth
    return measure(text, size)


class Span(NamedTuple):
    text: str
    font: str
    size: float
    color: colors.Color
    link: str | None = None  # a clickable, underlined URL


class _Piece(NamedTuple):
    text: str
    font: str
    size: float
    color: colors.Color
    link: str | None
    width: float


def _words(line: list[Span]) -> list[tuple[bool, list[Span]]]:
    """A line of spans as words: (space before it, its fragments). A word may cross spans (fonts)."""
    words: list[tuple[bool, list[Span]]] = []
    space, current = False, None
    for span in line:
        text, chunk = span.text, ""
        for ch in text:
            if ch.isspace():
                if chunk:
                    current[1].append(span._replace(text=chunk))
                    chunk = ""
                current, space = None, True
                continue
            if current is None:
                current = (space and bool(words), [])
                words.append(current)
                space = False
            chunk += ch
        if chunk:
            current[1].append(span._replace(text=chunk))
    return words


def _width(frags) -> float:
    return sum(stringWidth(f.text, f.font, f.size) for f in frags)


def _break(frags: list[Span], width: float) -> list[list[Span]]:
    """A word wider than the line, cut into pieces that fit (never cut off, never past the edge)."""
    out, line, used = [], [], 0.0
    for f in frags:
        for ch in f.text:
            w = stringWidth(ch, f.font, f.size)
            if line and used + w > width:
                out.append(line)
                line, used = [], 0.0
            if line and line[-1].font == f.font and line[-1].color == f.color and line[-1].link == f.link:
                line[-1] = line[-1]._replace(text=line[-1].text + ch)
            else:
                line.append(f._replace(text=ch))
            used += w
    if line:
        out.append(line)
    return out


class Text:
    """Lines of spans wrapped to the width at spaces; one text object; first baseline `size` below the top."""

    def __init__(self, lines: list[list[Span]], size: float, leading: float, align: int = 0):
        self.lines, self.size, self.leading, self.align = lines, size, leading, align  # align: 0 left, 2 right
        self.halign = "left"
        self._at: float | None = None
        self._wrapped: list[tuple[list[_Piece], float]] = []

    def measure(self, width: float) -> tuple[float, float]:
        if self._at != width:
            self._at, wrapped = width, []
            for line in self.lines:
                if len(line) == 1:  # the usual case: one style, and it fits
                    f = line[0]
                    w = stringWidth(f.text, f.font, f.size)
                    if w <= width and not _IRREGULAR_SPACE.search(f.text):
                        wrapped.append(([_Piece(*f, w)], w) if f.text else ([], 0.0))
                        continue
                wrapped += self._wrap(line, width)
            self._wrapped = wrapped
        return width, len(self._wrapped) * self.leading

    def _wrap(self, line: list[Span], width: float) -> list[tuple[list[_Piece], float]]:
        rows: list[list[Span]] = [[]]
        used = 0.0
        for spaced, frags in _words(line):
            w = _width(frags)
            gap = stringWidth(" ", frags[0].font, frags[0].size) if spaced and rows[-1] else 0.0
            if rows[-1] and used + gap + w > width:
                rows.append([])
                used, gap = 0.0, 0.0
            if w > width:  # an unbreakable word, on lines of its own (the check above began a new one)
                parts = _break(frags, width)
                for part in parts[:-1]:
                    rows[-1] = part
                    rows.append([])
                rows[-1], used = parts[-1], _width(parts[-1])
                continue
            if gap:
                frags = [frags[0]._replace(text=" " + frags[0].text), *frags[1:]]
            rows[-1] += frags
            used += gap + w
        out = []
        for row in rows:
            pieces: list[_Piece] = []
            for f in row:  # neighbours in one style are drawn as one string
                if pieces and (pieces[-1].font, pieces[-1].size, pieces[-1].color, pieces[-1].link) == f[1:]:
                    text = pieces[-1].text + f.text
                    pieces[-1] = _Piece(text, f.font, f.size, f.color, f.link, stringWidth(text, f.font, f.size))
                else:
                    pieces.append(_Piece(*f, stringWidth(f.text, f.font, f.size)))
            out.append((pieces, sum(p.width for p in pieces)))
        return out

    def part(self, start: int, stop: int | None = None) -> Text:
        """Some of the wrapped lines, as a Text of their own (a paragraph split over two pages)."""
        text = Text([], self.size, self.leading, self.align)
        text._at, text._wrapped = self._at, self._wrapped[start:stop]
        return text

    def paint(self, canv, x: float, top: float) -> None:
        """One text object, written as PDF operators: each string encoded once into its font subset."""
        if not self._wrapped:
            return
        # begun at the origin, as reportlab's text objects are: text extractors (pypdf) then take each block
        # apart from its neighbours rather than joining lines of two blocks that share a baseline range
        doc, code, links = canv._doc, ["BT 1 0 0 1 0 0 Tm"], []
        font = color = None
        for i, (pieces, used) in enumerate(self._wrapped):
            y = top - self.size - i * self.leading
            cx = x + (self._at - used if self.align == 2 else (self._at - used) / 2 if self.align == 1 else 0)
            code.append(f"1 0 0 1 {cx:.2f} {y:.2f} Tm")
            for p in pieces:
                if p.color is not color:  # the same colour object: Color.__eq__ is slow Python
                    color = p.color
                    code.append(rgb(color))
                for name, raw in _encoded(p.font, p.text, doc):
                    if (name, p.size) != font:
                        font = name, p.size
                        code.append(f"{name} {p.size:g} Tf")
                    code.append(f"({escapePDF(raw)}) Tj")
                if p.link:
                    lead = len(p.text) - len(p.text.lstrip(" "))
                    skip = stringWidth(" " * lead, p.font, p.size)
                    links.append((cx + skip, y, p.width - skip, p))
                cx += p.width
        code.append("ET")
        canv._code.append(" ".join(code))
        for lx, y, w, p in links:
            canv.setStrokeColor(p.color)
            canv.setLineWidth(0.05 * p.size)
            canv.line(lx, y - 0.125 * p.size, lx + w, y - 0.125 * p.size)
            canv.linkURL(p.link, (lx, y - 0.25 * p.size, lx + w, y + 0.85 * p.size), relative=1)


_direct: dict[str, frozenset[str]] = {}


def _encoded(font: str, text: str, doc) -> list[tuple[str, bytes]]:
    """The text as codes of the font's subsets in this document: (the subset's PDF font name, its codes).
    Printable ASCII the font has is its own code in the first subset (reportlab's "ASCII readable"
    subsets), so it needs no lookup character by character."""
    ttf = getFont(font)
    direct = _direct.get(font)
    if direct is None:
        readable = ttf._asciiReadable
        direct = _direct[font] = frozenset(chr(c) for c in range(32, 128) if readable and c in ttf.face.charToGlyph)
    if text.isascii() and direct.issuperset(text):
        names = doc.__dict__.setdefault("first_subsets", {})  # the font's state is behind a weak dictionary
        name = names.get(font)
        if name is None:
            name = names[font] = ttf.getSubsetInternalName(0, doc)
        return [(name, text.encode("ascii"))]
    return [(ttf.getSubsetInternalName(subset, doc), raw) for subset, raw in ttf.splitString(text, doc)]


_rgb: dict[tuple[float, float, float], str] = {}


def rgb(color: colors.Color) -> str:
    """The PDF operator that sets this fill colour (made once per colour)."""
    key = color.red, color.green, color.blue
    op = _rgb.get(key)
    if op is None:
        op = f"{key[0]:.4g} {key[1]:.4g} {key[2]:.4g} rg"
        if len(_rgb) < 4096:  # bounded: tenants have a few colours each
            _rgb[key] = op
    return op


class Gap:
    def __init__(self, height: float):
        self.height, self.halign = height, "left"

    def measure(self, width: float) -> tuple[float, float]:
        return 0.0, self.height

    def paint(self, canv, x: float, top: float) -> None:
        pass


class Stack:
    """Boxes one under the other; a box whose `halign` is "right" sits against the right edge."""

    def __init__(self, items: list, halign: str = "left"):
        self.items, self.halign = [i for i in items if i is not None], halign
        self._sizes: list[tuple[float, float]] = []
        self._width = 0.0

    def measure(self, width: float) -> tuple[float, float]:
        self._width, self._sizes = width, [item.measure(width) for item in self.items]
        return width, sum(h for _, h in self._sizes)

    def paint(self, canv, x: float, top: float) -> None:
        for item, (w, h) in zip(self.items, self._sizes):
            item.paint(canv, x + (self._width - w if item.halign == "right" else 0), top)
            top -= h


class Row:
    """Cells side by side at fixed widths, with paddings (top, right, bottom, left), an optional
    background, vertical alignment, and optional rules above or below (line width, colour)."""

    def __init__(self, cells: list, widths: list[float], pad=(3, 6, 3, 6), valign: str = "top",
                 background: colors.Color | None = None, rule_above=None, rule_below=None, halign: str = "left"):
        self.cells, self.widths, self.valign, self.halign = cells, widths, valign, halign
        self.pad = [pad] * len(cells) if isinstance(pad[0], (int, float)) else list(pad)
        self.background, self.rule_above, self.rule_below = background, rule_above, rule_below
        self._inner: list[float] = []
        self.height = 0.0

    def measure(self, width: float) -> tuple[float, float]:
        self._inner = []
        for cell, w, (t, r, b, lp) in zip(self.cells, self.widths, self.pad):
            self._inner.append(cell.measure(w - lp - r)[1] if cell is not None else 0.0)
        self.height = max(h + t + b for h, (t, _, b, _) in zip(self._inner, self.pad))
        return sum(self.widths), self.height

    def paint(self, canv, x: float, top: float) -> None:
        total = sum(self.widths)
        if self.background is not None:
            canv.setFillColor(self.background)
            canv.rect(x, top - self.height, total, self.height, stroke=0, fill=1)
        for rule, y in ((self.rule_above, top), (self.rule_below, top - self.height)):
            if rule:
                canv.setStrokeColor(rule[1])
                canv.setLineWidth(rule[0])
                canv.line(x, y, x + total, y)
        cx = x
        for cell, w, h, (t, _, b, lp) in zip(self.cells, self.widths, self._inner, self.pad):
            if cell is not None:
                shift = (self.height - t - b - h) / 2 if self.valign == "middle" else 0.0
                cell.paint(canv, cx + lp, top - t - shift)
            cx += w


class Part(NamedTuple):
    """A box in the story of the pages: kept on one page with the next part, or drawn after `head` (a
    table's header row) on each page it begins."""
    box: object
    keep_with_next: bool = False
    head: object | None = None


def paginate(story: list, width: float, top: float, bottom: float) -> list[list[tuple[object, float]]]:
    """The story (Parts and Gaps) laid down pages between `top` and `bottom`: per page, each box and its top.
    A box goes to the next page when it does not fit, a Text is split there line by line; a Gap is dropped at
    the top of a page."""
    pages: list[list[tuple[object, float]]] = [[]]
    y, empty = top, True
    queue = list(story)
    heights = [item.measure(width)[1] if isinstance(item, Gap) else item.box.measure(width)[1] for item in queue]
    i = 0
    while i < len(queue):
        item, h = queue[i], heights[i]
        if isinstance(item, Gap):
            if not empty:
                y -= h
            i += 1
            continue
        need = h
        if item.keep_with_next and i + 1 < len(queue) and not isinstance(queue[i + 1], Gap):
            after = queue[i + 1].box
            need += after.leading if isinstance(after, Text) else heights[i + 1]
        if y - need < bottom:
            box = item.box
            fit = int((y - bottom) // box.leading) if isinstance(box, Text) and not item.keep_with_next else 0
            if 1 <= fit < len(box._wrapped if isinstance(box, Text) else ()):
                pages[-1].append((box.part(0, fit), y))
                rest = box.part(fit)
                queue[i], heights[i] = Part(rest, item.keep_with_next, item.head), rest.measure(width)[1]
                empty = False
            if not empty:
                pages.append([])
                y, empty = top, True
                if item.head is not None:
                    pages[-1].append((item.head, y))
                    y -= item.head.measure(width)[1]
                continue
        pages[-1].append((item.box, y))
        y, empty = y - h, False
        i += 1
    return pages
