"""How a priced line is sent to a platform that computes line amounts itself (Zoho Books, FreshBooks, Wave,
MYOB): as quantity x unit price when the platform can only get our rounded line amount from that product,
whichever way it rounds a half (its rounding mode is rarely documented); else as 1 x the amount, with the
quantity and price written into the description so nothing is lost on the page."""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from .. import money


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 2, 1.5, 85."""
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def as_sent(line: dict, currency: str, quantity_places: Decimal,
            price_places: Decimal | None = None) -> tuple[Decimal, Decimal, str]:
    """(quantity, unit price, description) for one canonical line. `quantity_places` / `price_places`: the
    platform's precision (price defaults to the currency's minor unit)."""
    q = price_places or money.quantum(currency)
    qty, unit, text, want = line["quantity"], line["unit_price"], line["description"], line["amount"]
    product = qty * unit
    if unit == unit.quantize(q) and qty == qty.quantize(quantity_places) and \
            all(product.quantize(money.quantum(currency), rounding=r) == want for r in (ROUND_HALF_UP, ROUND_HALF_EVEN)):
        return qty, unit.quantize(q), text
    return Decimal(1), want, f"{text} ({plain(qty)} x {plain(unit)})"


def split(total: Decimal, weights: list[Decimal], quantum: Decimal) -> list[Decimal]:
    """`total` over `weights` pro rata in whole quanta, largest remainder first."""
    whole = sum(weights)
    if not whole:
        return [Decimal(0)] * len(weights)
    raw = [total * w / whole for w in weights]
    shares = [r.quantize(quantum, rounding=ROUND_DOWN) for r in raw]
    left = int((total - sum(shares)) / quantum)
    for i in sorted(range(len(raw)), key=lambda i: (-(raw[i] - shares[i]), i))[:left]:
        shares[i] += quantum
    return shares
