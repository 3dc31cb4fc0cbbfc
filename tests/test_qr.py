"""invoicer.qr: the fast encoder makes segno's symbol bit for bit (mask choice included), its scoring is
segno's, and the codes read back."""
from __future__ import annotations

import random

import pytest
import segno
from segno.encoder import mask_scores

from invoicer import qr


@pytest.mark.parametrize("version", [1, 2, 6, 7, 10, 14, 21, 32, 40])
def test_the_masks_differ_exactly_on_the_data_region(version):
    """segno's symbols for mask 0 and mask k differ on our data region exactly where the two masks differ,
    and elsewhere only in the format information."""
    url = "pay.example/1"  # fits version 1; segno pads it to the version asked for
    base = segno.make_qr(url, error="m", boost_error=False, version=version, mask=0)
    n = len(base.matrix)
    region = qr.data_region(version)
    fmt = {(8, j) for j in [*range(9), *range(n - 8, n)]} | {(i, 8) for i in [*range(9), *range(n - 7, n)]}
    for k in range(1, 8):
        other = segno.make_qr(url, error="m", boost_error=False, version=version, mask=k)
        for i in range(n):
            for j in range(n):
                differs = bool(base.matrix[i][j]) != bool(other.matrix[i][j])
                if region[i][j]:
                    assert differs == (qr._MASKS[0](i, j) != qr._MASKS[k](i, j)), (version, k, i, j)
                elif differs:
                    assert (i, j) in fmt, (version, k, i, j)


def test_the_penalty_is_segnos():
    rnd = random.Random(4)
    for n in (21, 25, 45, 57):
        for _ in range(5):
            matrix = [bytearray(rnd.random() < 0.5 for _ in range(n)) for _ in range(n)]
            rows = [int("".join(str(b) for b in row), 2) for row in matrix]
            assert qr.penalty(rows, n) == mask_scores(matrix, n, n)


@pytest.mark.parametrize("url", ["https://pay.example.com/i/ACME-001042",
                                 "https://invoice.stripe.com/i/acct_1Nv0FGQ9RKHgCVdK/test_" + "YWNjdF8x" * 20,
                                 "https://squareup.com/pay-invoice/inv:0-ChCz4R" + "9" * 300])
def test_codes_read_back(url):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    count, runs = qr.dark_runs(url)
    scale, quiet = 3, 4
    img = Image.new("L", ((count + 2 * quiet) * scale,) * 2, 255)
    for r, c, n in runs:
        img.paste(0, ((c + quiet) * scale, (r + quiet) * scale, (c + quiet + n) * scale, (r + quiet + 1) * scale))
    assert [b.text for b in zxingcpp.read_barcodes(img)] == [url]


def test_the_symbol_is_segnos_mask_choice_included():
    """Byte-mode links of every length up to version 40: the same version, codewords, mask and format and
    version information as segno's own choice."""
    for i in [*range(0, 400, 13), 700, 1200, 1800, 2290]:
        url = f"https://pay.example.com/i/ACME-{i:06d}" + "q" * i
        n, rows = qr.encode(url)
        ref = segno.make_qr(url, error="m", boost_error=False)
        assert (n, rows) == (len(ref.matrix), qr._rows(ref.matrix)), (url, ref.version, ref.mask)


@pytest.mark.parametrize("url", ["HTTPS://PAY.EXAMPLE/INV-1", "4111111111", "https://pay.example/é", ""])
def test_what_is_not_byte_mode_ascii_is_left_to_segno(url):
    n, rows = qr.encode(url)
    ref = segno.make_qr(url, error="m", boost_error=False)
    assert (n, rows) == (len(ref.matrix), qr._rows(ref.matrix))


def test_the_penalty_is_segnos_on_overlapping_finder_like_patterns():
    """Runs of 1011101 sharing modules, at the edges and beside light areas: segno's greedy count."""
    rnd = random.Random(7)
    frags = ["1011101", "10111011101", "1011101011101", "0000", "1111", "0", "1", "00001011101", "10111010000"]
    for n in (21, 25, 29, 45):
        for _ in range(100):
            matrix = []
            for _ in range(n):
                row = ""
                while len(row) < n:
                    row += rnd.choice(frags)
                matrix.append(bytearray(int(c) for c in row[:n]))
            if rnd.random() < 0.5:
                matrix = [bytearray(col) for col in zip(*matrix)]
            rows = [int("".join(str(b) for b in row), 2) for row in matrix]
            assert qr.penalty(rows, n) == mask_scores(matrix, n, n)


def test_the_block_table_is_the_standards():
    from segno import consts

    for version in range(1, 41):
        ec, blocks1, data1, blocks2 = qr._BLOCKS_M[version - 1]
        want = [(b.num_blocks, b.num_total, b.num_data) for b in consts.ECC[version][consts.ERROR_LEVEL_M]]
        assert want == [(blocks1, data1 + ec, data1), *([(blocks2, data1 + 1 + ec, data1 + 1)] if blocks2 else [])]
