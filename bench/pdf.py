"""Milliseconds per branded invoice PDF against a bare reportlab table of the same lines, in one run.

    .venv/bin/python bench/pdf.py [--runs 20]

The branded invoice is invoicer.pdf.render (header, logo, parties, sectioned lines, totals, QR code,
notes, page N of M). The bare table is one platypus Table of the same lines as plain strings, in the
same embedded font, header row repeated: the least reportlab does for these lines; "bare+wrap" is the
same table with the descriptions as wrapping Paragraphs, as any invoice needs. Target (issue 4):
the branded invoice within 2x the bare table. A figure printed by a script, never a timed test.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reportlab.lib.pagesizes import LETTER  # noqa: E402
from reportlab.lib.styles import ParagraphStyle  # noqa: E402
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table  # noqa: E402

from invoicer.pdf import FONT, register_fonts, render  # noqa: E402
from tests.test_pdf import brand, invoice, line  # noqa: E402


def bare(doc: dict, wrap: bool = False) -> bytes:
    out = io.BytesIO()
    rows = [["Description", "Qty", "Unit price", "Amount"]]
    style = ParagraphStyle("d", fontName=FONT, fontSize=9)
    rows += [[Paragraph(ln["description"], style) if wrap else ln["description"], str(ln["quantity"]),
              f"${ln['unit_price']}", f"${ln['amount']}"] for ln in doc["lines"]]
    table = Table(rows, colWidths=[270, 60, 90, 90] if wrap else None, repeatRows=1)
    table.setStyle([("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 9),
                    ("ALIGN", (1, 0), (-1, -1), "RIGHT")])
    SimpleDocTemplate(out, pagesize=LETTER, invariant=1).build([table])
    return out.getvalue()


def pages(pdf: bytes) -> int:
    return pdf.count(b"/Type /Page\n") or pdf.count(b"/Type /Page ")


def ms(fn, doc, runs: int) -> float:
    fn(doc)  # warm: fonts registered, caches filled
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(doc)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    register_fonts()
    from PIL import Image

    logo = Path(tempfile.mkdtemp()) / "logo.png"
    Image.new("RGB", (480, 120), (11, 95, 255)).save(logo)
    cases = {"one page (6 lines)": 6, "five pages (78 lines)": 78}
    print(f"{'invoice':<24} {'pages':>5} {'branded ms':>11} {'bare ms':>8} {'ratio':>6} {'bare+wrap ms':>13} {'ratio':>6}")
    for name, count in cases.items():
        lines = [line(f"Pleated filter 16x25x2, MERV 11, pack {i}", "2", "18.50", f"FLT-{i}") for i in range(count)]
        doc = invoice(lines=lines, branding=brand(logo=str(logo)))
        branded, plain = ms(render, doc, args.runs), ms(bare, doc, args.runs)
        wrapped = ms(lambda d: bare(d, wrap=True), doc, args.runs)
        print(f"{name:<24} {pages(render(doc)):>5} {branded:>11.1f} {plain:>8.1f} {branded / plain:>5.2f}x "
              f"{wrapped:>13.1f} {branded / wrapped:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
