"""Milliseconds per branded invoice PDF against a bare reportlab table of the same lines, in one run.

    .venv/bin/python bench/pdf.py [--runs 20]

The branded invoice is invoicer.pdf.render (header, logo, parties, sectioned lines, totals, QR code,
notes, page N of M). The bare table is one platypus Table of the same lines as plain strings, in the
same embedded font, header row repeated: the least reportlab does for these lines; "bare+wrap" is the
same table with the descriptions as wrapping Paragraphs, as any invoice needs. Target (issue 4):
the branded invoice within 2x the bare table. The bare table shares the font objects (and so their
per-process subset cache) but not what invoicer does in its own documents (font dictionaries formatted
once, the page deflated at level 1): it stays what reportlab does. A figure printed by a script,
never a timed test.
"""
from __future__ import annotations

import argparse
import io
import itertools
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


def timed(fns: dict, doc, runs: int, clock) -> dict[str, list[float]]:
    """Milliseconds per call of each function, taken in turn within every round so that all of them
    see the same load on a shared machine."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn(doc)  # warm: fonts registered, caches filled
    for _ in range(runs):
        for name, fn in fns.items():
            started = clock()
            fn(doc)
            out[name].append((clock() - started) * 1000)
    return out


def branded(doc: dict, links=itertools.count(1)) -> bytes:
    """The branded invoice with a payment link of its own, as each real invoice has: its QR code is
    encoded anew every time (a per-link cache would only ever hit in a benchmark)."""
    return render({**doc, "pay_url": f"https://pay.example.com/i/ACME-{next(links):06d}"})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--profile", action="store_true",
                   help="instead of timing, profile the one-page branded invoice with pyinstrument")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu: this process's CPU time (what a render costs, steady on a loaded machine); "
                        "wall: elapsed time (adds the waits for a core)")
    args = p.parse_args()
    register_fonts()
    from PIL import Image

    logo = Path(tempfile.mkdtemp()) / "logo.png"
    Image.new("RGB", (480, 120), (11, 95, 255)).save(logo)
    cases = {"one page (6 lines)": 6, "five pages (78 lines)": 78}
    if args.profile:
        from pyinstrument import Profiler

        doc = invoice(lines=[line(f"Pleated filter 16x25x2, MERV 11, pack {i}", "2", "18.50", f"FLT-{i}")
                             for i in range(6)], branding=brand(logo=str(logo)))
        branded(doc)
        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(args.runs * 10):
                branded(doc)
        print(profiler.output_text(color=False, unicode=False))
        return 0
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"{args.clock} ms per PDF, median of {args.runs} rounds [best]; ratio = branded / baseline, "
          "median per round")
    print(f"{'invoice':<22} {'pages':>5} {'branded':>13} {'bare':>11} {'ratio':>6} {'bare+wrap':>13} {'ratio':>6}")
    for name, count in cases.items():
        lines = [line(f"Pleated filter 16x25x2, MERV 11, pack {i}", "2", "18.50", f"FLT-{i}") for i in range(count)]
        doc = invoice(lines=lines, branding=brand(logo=str(logo)))
        t = timed({"branded": branded, "bare": bare, "wrap": lambda d: bare(d, wrap=True)}, doc, args.runs, clock)
        med = {k: statistics.median(v) for k, v in t.items()}
        best = {k: min(v) for k, v in t.items()}
        ratio = {k: statistics.median(b / o for b, o in zip(t["branded"], t[k])) for k in ("bare", "wrap")}
        print(f"{name:<22} {pages(branded(doc)):>5} {med['branded']:>5.1f} [{best['branded']:>4.1f}] "
              f"{med['bare']:>4.1f} [{best['bare']:>3.1f}] {ratio['bare']:>5.2f}x "
              f"{med['wrap']:>6.1f} [{best['wrap']:>4.1f}] {ratio['wrap']:>5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
