"""The payment link's QR code, as dark runs to draw: a byte-mode QR encoder built for speed.

A payment link is encoded once per invoice (a link belongs to one invoice, so nothing is cached by
link). segno, module by module in Python, takes 2 ms for a short link and 6 ms for a Stripe
hosted-invoice link, most of it choosing the mask: an encoder tries all eight data masks and keeps
the one whose symbol scores the lowest penalty (ISO/IEC 18004 §7.8.3: long runs, 2x2 blocks,
finder-like 1:1:3:1:1 patterns, dark/light balance). Here everything that depends only on the
version is made once per process (the function patterns, where each data bit goes, the masks, the
format and version information), and a symbol is a big integer of n*n bits (module (0, 0) the
highest): the data bits are placed with one itemgetter, a mask is one XOR, the 2x2 blocks and the
balance are bit operations on the whole symbol, and runs and finder-like patterns are scanned by
the regex engine and str.find over its rows and columns as one string.

The result is segno's symbol for the same link, bit for bit, mask choice included (tested: segno
scores the masks before the format and version information are written, as here). Links that
segno would not encode in byte mode (digits only, or only QR's upper-case alphanumeric characters)
are left to segno itself.
"""
from __future__ import annotations

import re
import threading
from functools import lru_cache
from operator import itemgetter

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
_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

# Error correction level M, versions 1-40 (ISO/IEC 18004 Table 9): error correction codewords per block,
# blocks of the first group, their data codewords, blocks of the second group (one data codeword more).
_BLOCKS_M = (
    (10, 1, 16, 0), (16, 1, 28, 0), (26, 1, 44, 0), (18, 2, 32, 0), (24, 2, 43, 0), (16, 4, 27, 0), (18, 4, 31, 0),
    (22, 2, 38, 2), (22, 3, 36, 2), (26, 4, 43, 1), (30, 1, 50, 4), (22, 6, 36, 2), (22, 8, 37, 1), (24, 4, 40, 5),
    (24, 5, 41, 5), (28, 7, 45, 3), (28, 10, 46, 1), (26, 9, 43, 4), (26, 3, 44, 11), (26, 3, 41, 13),
    (26, 17, 42, 0), (28, 17, 46, 0), (28, 4, 47, 14), (28, 6, 45, 14), (28, 8, 47, 13), (28, 19, 46, 4),
    (28, 22, 45, 3), (28, 3, 45, 23), (28, 21, 45, 7), (28, 19, 47, 10), (28, 2, 46, 29), (28, 10, 46, 23),
    (28, 14, 46, 21), (28, 14, 46, 23), (28, 12, 47, 26), (28, 6, 47, 34), (28, 29, 46, 14), (28, 13, 46, 32),
    (28, 40, 47, 7), (28, 18, 47, 31),
)
_REMAINDER_BITS = {**dict.fromkeys(range(2, 7), 7), **dict.fromkeys((*range(14, 21), *range(28, 35)), 3),
                   **dict.fromkeys(range(21, 28), 4)}


# ---------------------------------------------------------------- Reed-Solomon over GF(256), polynomial 0x11D

_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i], _LOG[_x] = _x, _i
    _x = (_x << 1) ^ (0x11D if _x & 0x80 else 0)
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


_tables = threading.Lock()


@lru_cache(maxsize=16)
def _ec_table(degree: int) -> tuple[int, ...]:
    """For each leading coefficient f: f times the generator's lower terms, as one integer of `degree` bytes."""
    gen = [1]  # (x - a^0)(x - a^1)...: coefficients, highest first
    for i in range(degree):
        gen = [a ^ _mul(b, _EXP[i]) for a, b in zip(gen + [0], [0] + gen)]
    return tuple(int.from_bytes(bytes(_mul(f, g) for g in gen[1:]), "big") for f in range(256))


def _ec_codewords(data: bytes, degree: int) -> bytes:
    """The block's error correction codewords: the remainder of data(x)·x^degree by the generator, as a shift
    register held in one integer."""
    table, top, full, reg = _ec_table(degree), 8 * (degree - 1), (1 << 8 * degree) - 1, 0
    for byte in data:
        reg = ((reg << 8) & full) ^ table[byte ^ (reg >> top)]
    return reg.to_bytes(degree, "big")


# ---------------------------------------------------------------- what depends on the version only

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
            if _overlaps_finder(r, c, centres):
                continue
            for i in range(r - 2, r + 3):
                for j in range(c - 2, c + 3):
                    region[i][j] = False
    return region


def _overlaps_finder(r: int, c: int, centres: list[int]) -> bool:
    return (r == 6 and c == 6) or (r == 6 and c == centres[-1]) or (r == centres[-1] and c == 6)


def _function_patterns(version: int) -> dict[tuple[int, int], int]:
    """The dark modules of the finder, timing and alignment patterns (format and version areas left light)."""
    n = 17 + 4 * version
    dark: dict[tuple[int, int], int] = {}
    for top, left in ((0, 0), (0, n - 7), (n - 7, 0)):
        for i in range(7):
            for j in range(7):
                if i in (0, 6) or j in (0, 6) or (2 <= i <= 4 and 2 <= j <= 4):
                    dark[(top + i, left + j)] = 1
    for k in range(8, n - 8, 2):
        dark[(6, k)] = dark[(k, 6)] = 1
    centres = _alignment_centres(version)
    for r in centres:
        for c in centres:
            if _overlaps_finder(r, c, centres):
                continue
            for i in range(-2, 3):
                for j in range(-2, 3):
                    if max(abs(i), abs(j)) != 1:
                        dark[(r + i, c + j)] = 1
    return dark


def _placement(version: int) -> list[tuple[int, int]]:
    """The data modules in the order the message's bits fill them: two-module columns from the right,
    alternately upwards and downwards, skipping the vertical timing pattern (§7.7.3)."""
    n, region, order = 17 + 4 * version, data_region(version), []
    for right in range(n - 1, 0, -2):
        if right <= 6:
            right -= 1
        upwards = (right & 2) == 0
        if right < 6:
            upwards = not upwards
        for vertical in range(n):
            i = n - 1 - vertical if upwards else vertical
            for j in (right, right - 1):
                if region[i][j]:
                    order.append((i, j))
    return order


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


def _version_bits(version: int) -> int:
    """The 18 version bits: BCH(18, 6) with generator 0x1F25."""
    rem = version
    for _ in range(12):
        rem = (rem << 1) ^ ((rem >> 11) * 0x1F25)
    return version << 12 | rem


class _Version:
    """Everything about one version that does not depend on the message."""

    def __init__(self, version: int):
        n = self.n = 17 + 4 * version
        total = self.total = n * n
        self.ec, blocks1, data1, blocks2 = _BLOCKS_M[version - 1]
        self.blocks = [data1] * blocks1 + [data1 + 1] * blocks2
        self.capacity = sum(self.blocks)  # data codewords
        self.count_bits = 8 if version < 10 else 16
        self.remainder = _REMAINDER_BITS.get(version, 0)

        def bit(i: int, j: int) -> int:
            return 1 << (total - 1 - (i * n + j))

        order = _placement(version)
        assert len(order) == 8 * (self.capacity + self.ec * len(self.blocks)) + self.remainder
        fixed = _function_patterns(version)
        # the message's bits then "0" and "1": module k of the symbol is the character at index[k]
        slot = {pos: k for k, pos in enumerate(order)}
        zero, one = len(order), len(order) + 1
        self.place = itemgetter(*(slot.get((i, j), one if fixed.get((i, j)) else zero)
                                  for i in range(n) for j in range(n)))
        self.masks = tuple(sum(bit(i, j) for i, j in order if mask(i, j)) for mask in _MASKS)
        cells = _format_cells(n)
        self.formats = []
        for k in range(8):
            word = _format_bits(k)
            self.formats.append(bit(n - 8, 8) | sum(bit(*cell) for b, pair in enumerate(cells) if word >> b & 1
                                                    for cell in pair))
        self.info = 0
        if version >= 7:
            word = _version_bits(version)
            for b in range(18):
                if word >> b & 1:
                    a, c = n - 11 + b % 3, b // 3
                    self.info |= bit(a, c) | bit(c, a)
        # the rows then the columns as lines of one integer, each line followed by four light modules (the edge)
        pad = [total] * 4
        self.lines = itemgetter(*[k for i in range(n) for k in [*range(i * n, i * n + n), *pad]],
                                *[k for j in range(n) for k in [*range(j, total, n), *pad]])
        line = ((1 << n - 1) - 1) << 4  # a line's modules but its first, which have a module on their left
        self.pairs = sum(line << (n + 4) * k for k in range(2 * n))
        self.mask_lines = tuple(self.as_lines(m) for m in self.masks)
        self.inner = sum(bit(i, j) for i in range(1, n) for j in range(1, n))  # a 2x2 block's bottom right

    def as_lines(self, symbol: int) -> int:
        return int("".join(self.lines(format(symbol, f"0{self.total}b") + "0")), 2)


@lru_cache(maxsize=40)
def _version(version: int) -> _Version:
    with _tables:
        return _Version(version)


# ---------------------------------------------------------------- penalty and encoding

def _scores(symbol: int, lines: int, ver: _Version) -> tuple[int, int, int, int]:
    """N1 runs, N2 blocks, N3 finder-like, N4 balance, as segno scores them, from the symbol and from its rows
    and columns as lines (`_Version.as_lines`). Bit operations on the whole symbol: `x >> k` holds, at each
    module, the module k to its left (or above, by whole lines), `x << k` the module k to its right."""
    same = ~(lines ^ (lines >> 1)) & ver.pairs  # the same colour as the module on its left
    run = same & (same >> 1) & (same >> 2) & (same >> 3)  # ends five alike: a run of L scores L - 2
    n1 = run.bit_count() + 2 * (run & ~(run >> 1)).bit_count()
    n = ver.n
    across, down = symbol ^ (symbol >> 1), symbol ^ (symbol >> n)
    n2 = 3 * (~(across | (across >> n) | down) & ver.inner).bit_count()
    d = lines  # 1:1:3:1:1 (dark light dark dark dark light dark) from here to the right
    finder = d & ~(d << 1) & (d << 2) & (d << 3) & (d << 4) & ~(d << 5) & (d << 6)
    before = finder & ~((d >> 1) | (d >> 2) | (d >> 3) | (d >> 4))  # four light modules (or the edge) before it
    after = finder & ~((d << 7) | (d << 8) | (d << 9) | (d << 10))  # or after it
    # segno scans left to right and goes on after a counted pattern: one overlapping it (4 or 6 modules on,
    # which it can only be after a pattern counted for the light before it) is not counted
    n3 = 40 * ((before | after) & ~((before >> 4) | (before >> 6))).bit_count()
    n4 = 10 * int(abs(symbol.bit_count() / ver.total * 100 - 50) / 5)
    return n1, n2, n3, n4


def penalty(rows: list[int], n: int) -> tuple[int, int, int, int]:
    """The four penalty scores (N1 runs, N2 blocks, N3 finder-like, N4 balance) of a symbol whose rows
    are integers of n bits."""
    ver = _version((n - 17) // 4)
    symbol = 0
    for r in rows:
        symbol = symbol << n | r
    return _scores(symbol, ver.as_lines(symbol), ver)


def _rows(matrix) -> list[int]:
    return [int("".join("1" if m else "0" for m in row), 2) for row in matrix]


def _byte_mode(url: str) -> bool:
    """Whether segno would write this text as one byte-mode segment (it reads as ASCII and is neither
    all digits nor all QR alphanumeric)."""
    return url.isascii() and not set(url) <= _ALPHANUMERIC


def _codewords(data: bytes) -> tuple[_Version, str]:
    """The smallest version that holds the data at level M, and its final message as a string of bits."""
    for version in range(1, 41):
        ver = _version(version)
        if 4 + ver.count_bits + 8 * len(data) <= 8 * ver.capacity:
            break
    else:
        raise ValueError("a payment link too long for a QR code")
    bits = 4 + ver.count_bits + 8 * len(data)
    value = (0b0100 << ver.count_bits | len(data)) << 8 * len(data) | int.from_bytes(data, "big")
    pad = min(4, 8 * ver.capacity - bits)  # the terminator
    bits += pad
    # then zeros to the next whole byte: 1 to 8 of them, as segno writes it (a whole zero byte when the
    # terminator ended on a boundary, where the standard has a pad codeword: decoders stop at the terminator)
    extra = pad + 8 - bits % 8
    message = (value << extra).to_bytes((bits - pad + extra) // 8, "big")[: ver.capacity]
    message += bytes((0xEC, 0x11) * ver.capacity)[: ver.capacity - len(message)]
    blocks, at = [], 0
    for size in ver.blocks:
        blocks.append(message[at:at + size])
        at += size
    ecs = [_ec_codewords(b, ver.ec) for b in blocks]
    final = bytes(b[k] for k in range(max(ver.blocks)) for b in blocks if k < len(b))
    final += bytes(e[k] for k in range(ver.ec) for e in ecs)
    return ver, format(int.from_bytes(final, "big"), f"0{8 * len(final)}b") + "0" * ver.remainder


def encode(url: str) -> tuple[int, list[int]]:
    """The link as a QR code, error correction M, with the mask of least penalty: its size and its rows
    as integers (column 0 = the highest bit)."""
    if not _byte_mode(url):
        matrix = segno.make_qr(url, error="m", boost_error=False).matrix
        return len(matrix), _rows(matrix)
    ver, message = _codewords(url.encode("ascii"))
    base = int("".join(ver.place(message + "01")), 2)
    lines = ver.as_lines(base)
    best = min(range(8), key=lambda k: (sum(_scores(base ^ ver.masks[k], lines ^ ver.mask_lines[k], ver)), k))
    symbol = base ^ ver.masks[best] | ver.formats[best] | ver.info
    n, full = ver.n, (1 << ver.n) - 1
    return n, [symbol >> (n * (n - 1 - i)) & full for i in range(n)]


_DARK = re.compile("1+")


def dark_runs(url: str) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """The code's module count and its dark runs (row, first column, length), for drawing."""
    n, rows = encode(url)
    text = "0".join([format(row, f"0{n}b") for row in rows])  # a light module between rows ends each run
    w = n + 1
    return n, tuple([(s // w, s % w, e - s) for s, e in map(re.Match.span, _DARK.finditer(text))])
