"""The payment link's QR code, as dark runs to draw: segno encodes it; the mask is chosen here, faster.

A QR encoder tries all eight data masks and keeps the one whose symbol scores the lowest penalty
(ISO/IEC 18004 §7.8.3: long runs, 2x2 blocks, finder-like 1:1:3:1:1 patterns, dark/light balance).
segno scores them module by module in Python: 2.4 ms of its 3 ms for a short link, 5.5 of 7 ms for
a Stripe hosted-invoice link. Here segno encodes the symbol once, with mask 0; the other seven are
derived from it by XOR on the data region (the only place masks differ) and scored with the rows and
columns as strings and integers, so C does the scanning; the winner gets its format information
written in. The result is the symbol segno makes for that mask, bit for bit (tested), and the
scores are segno's own rules (tested against segno.encoder.mask_scores). Only the format areas keep
mask 0's bits while scoring, which can change which of two close masks wins, never whether the code
reads: every mask gives a valid symbol (tests decode them with zxing-cpp).
"""
from __future__ import annotations

import re
from functools import lru_cache

import segno

_MASKS = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)
_RUN = re.compile("0{5,}|1{5,}")
_FINDER = "1011101"


def _alignment_centres(version: int) -> list[int]:
    if version == 1:
        return []
    size = 17 + 4 * version
    count = version // 7 + 2
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (count * 2 - 2) * 2
    return [6] + sorted(size - 7 - k * step for k in range(count - 1))


def data_region(version: int) -> list[list[bool]]:
    """Which modules carry data (and so are masked): all but the finder patterns with their separators
    and format areas, the timing patterns, the alignment patterns and the version areas."""
    n = 17 + 4 * version
    region = [[True] * n for _ in range(n)]
    centres = _alignment_centres(version)
    for i in range(n):
        for j in range(n):
            if (i < 9 and (j < 9 or j >= n - 8)) or (i >= n - 8 and j < 9) or i == 6 or j == 6:
                region[i][j] = False
            elif version >= 7 and ((i < 6 and n - 11 <= j < n - 8) or (j < 6 and n - 11 <= i < n - 8)):
                region[i][j] = False
    for r in centres:
        for c in centres:
            if (r == 6 and c == 6) or (r == 6 and c == centres[-1]) or (r == centres[-1] and c == 6):
                continue  # where a finder pattern is
            for i in range(r - 2, r + 3):
                for j in range(c - 2, c + 3):
                    region[i][j] = False
    return region


@lru_cache(maxsize=40)
def _mask_bits(version: int) -> tuple[tuple[int, ...], ...]:
    """Per mask, per row: the data modules that mask flips, as an integer (column 0 = the highest bit)."""
    region, n = data_region(version), 17 + 4 * version
    return tuple(tuple(sum(1 << (n - 1 - j) for j in range(n) if region[i][j] and mask(i, j)) for i in range(n))
                 for mask in _MASKS)


def _finder_like(lines: str) -> int:
    """N3, as segno counts it: 1011101 with four light modules (or the edge) on either side. The lines
    come joined by "2222", which reads as the edge and is never part of a match."""
    count, idx = 0, lines.find(_FINDER)
    while idx != -1:
        end = idx + 7
        if "1" not in lines[max(idx - 4, 0):idx] or "1" not in lines[end:end + 4]:
            count += 40
        else:
            end = idx + 4
        idx = lines.find(_FINDER, end)
    return count


def penalty(rows: list[int], n: int) -> tuple[int, int, int, int]:
    """The four penalty scores (N1 runs, N2 blocks, N3 finder-like, N4 balance) of a symbol whose rows
    are integers of n bits."""
    text = [format(r, f"0{n}b") for r in rows]
    lines = "2222".join([*text, *("".join(c) for c in zip(*text))])
    n1 = sum(len(m) - 2 for m in _RUN.findall(lines))
    full = (1 << n) - 1
    n2 = 0
    for a, b in zip(rows, rows[1:]):
        same = ~(a ^ b) & full  # the module below is the same colour
        n2 += 3 * (same & (same >> 1) & ~(a ^ (a >> 1)) & (full >> 1)).bit_count()
    dark = sum(r.bit_count() for r in rows)
    n4 = 10 * int(abs(dark / (n * n) * 100 - 50) / 5)
    return n1, n2, _finder_like(lines), n4


def _rows(matrix) -> list[int]:
    return [int("".join("1" if m else "0" for m in row), 2) for row in matrix]


def _format_bits(mask: int) -> int:
    """The 15 format bits for error correction M and this mask: BCH(15, 5), XOR 0101010000010010."""
    data = mask  # level M is 00
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return ((data << 10) | rem) ^ 0x5412


def _format_cells(n: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where format bit i goes, twice: (row, column) in the top-left copy and in the split copy."""
    first = [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)] + [(8, 14 - i) for i in range(9, 15)]
    second = [(8, n - 1 - i) for i in range(8)] + [(n - 15 + i, 8) for i in range(8, 15)]
    return list(zip(first, second))


def encode(url: str) -> tuple[int, list[int]]:
    """The link as a QR code, error correction M, with the mask of least penalty: its size and its rows
    as integers (column 0 = the highest bit)."""
    first = segno.make_qr(url, error="m", boost_error=False, mask=0)
    version, rows, n = first.version, _rows(first.matrix), len(first.matrix)
    bits = _mask_bits(version)
    best = min(range(8), key=lambda k: (sum(penalty([r ^ a ^ b for r, a, b in zip(rows, bits[0], bits[k])], n)), k))
    if best:
        rows = [r ^ a ^ b for r, a, b in zip(rows, bits[0], bits[best])]
        word = _format_bits(best)
        for i, cells in enumerate(_format_cells(n)):
            for r, c in cells:
                bit = 1 << (n - 1 - c)
                rows[r] = rows[r] | bit if word >> i & 1 else rows[r] & ~bit
    return n, rows


def dark_runs(url: str) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """The code's module count and its dark runs (row, first column, length), for drawing."""
    n, rows = encode(url)
    runs = []
    for r, row in enumerate(rows):
        for m in re.finditer("1+", format(row, f"0{n}b")):
            runs.append((r, m.start(), m.end() - m.start()))
    return n, tuple(runs)
