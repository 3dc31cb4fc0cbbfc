"""Money rules of event contract v1: Decimal only, half-up to the currency's minor unit."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache

import iso4217


# Amounts must stay below this: the invoice tables keep money as NUMERIC(20, 6) (db.Money), 14 digits
# before the point. The ingress refuses a job whose lines or total would not fit, rather than accept it
# and fail in a worker.
MAX_AMOUNT = Decimal(10) ** 14


@lru_cache(maxsize=None)
def minor_unit(currency: str) -> int:
    """ISO 4217 minor unit (number of decimals) of a currency.

    ValueError for an unknown code, and for codes ISO gives no minor unit (gold, SDR, test codes):
    nobody invoices a furnace repair in those.
    """
    exponent = iso4217.Currency(currency).exponent  # ValueError for an unknown code
    if exponent is None:
        raise ValueError(f"{currency} has no minor unit")
    return exponent


def is_currency(code: str) -> bool:
    try:
        minor_unit(code)
    except ValueError:
        return False
    return True


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def fits_currency(value: Decimal, currency: str) -> bool:
    """True when the amount has no more decimals than the currency allows."""
    return round_money(value, currency) == value


def to_minor(value: Decimal, currency: str) -> int:
    """An amount in the currency's minor units (cents), for vendors that want integers."""
    return int(round_money(value, currency).scaleb(minor_unit(currency)))


@dataclass(frozen=True)
class Line:
    kind: str  # labor | material | fee
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    taxable: bool
    sku: str | None = None


@dataclass(frozen=True)
class Discount:
    description: str
    amount: Decimal
    percent: Decimal | None = None


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    discount: Decimal
    taxable_base: Decimal  # unrounded, for audit
    tax: Decimal
    total: Decimal


def price(job) -> tuple[list[Line], list[Discount], Totals]:
    """Apply the contract's four rules to a validated job (see ../shared/events/README.md).

    1. every line rounded on its own; subtotal is their sum;
    2. percent discounts rounded each, amount discounts as given, total capped at the subtotal;
    3. the discount spreads over all lines pro rata, unrounded; tax = rate x taxable base, rounded once;
    4. total = subtotal - discounts + tax.
    """
    # Exact arithmetic: at 120 digits every product of contract-valid amounts (15 + 10 digits each) is exact,
    # and so is the tax quotient whenever it is a half-unit tie; the default 28 digits are not enough.
    with localcontext() as ctx:
        ctx.prec = 120
        cur = job.currency
        lines: list[Line] = []
        for item in job.labor:
            lines.append(Line("labor", item.description, item.hours, item.rate,
                              round_money(item.hours * item.rate, cur), item.taxable))
        for item in job.materials:
            lines.append(Line("material", item.description, item.quantity, item.unit_price,
                              round_money(item.quantity * item.unit_price, cur), item.taxable, item.sku))
        for item in job.fees:
            lines.append(Line("fee", item.description, Decimal(1), item.amount,
                              round_money(item.amount, cur), item.taxable))
        subtotal = sum((line.amount for line in lines), Decimal(0))

        discounts: list[Discount] = []
        for d in job.discounts:
            if d.percent is not None:
                discounts.append(Discount(d.description, round_money(subtotal * d.percent / 100, cur), d.percent))
            else:
                discounts.append(Discount(d.description, round_money(d.amount, cur)))
        discount = min(sum((d.amount for d in discounts), Decimal(0)), subtotal)

        taxable = sum((line.amount for line in lines if line.taxable), Decimal(0))
        base = taxable * (subtotal - discount) / subtotal if subtotal else Decimal(0)
        # One division, last: a rounded base (1.00 x 1/12 = 0.0833...) would turn an exact tie such as
        # 0.21 x 21.00 x 13.86 / 22.68 = 2.695 into 2.69499... and round it down.
        tax = round_money(job.tax.rate * taxable * (subtotal - discount) / subtotal, cur) if subtotal else Decimal(0)
        total = subtotal - discount + tax
        return lines, discounts, Totals(subtotal, discount, base, tax, total)


def applied_discounts(doc: dict) -> list[tuple[str, Decimal]]:
    """Each discount of a canonical invoice (pipeline.document) as (label, amount it takes): capped
    together at doc["discount_total"] as `price` caps them, zero ones left out; a percent discount's
    label says its rate ("Member discount (10%)"). For platforms that carry discounts as amounts."""
    out = []
    remaining = Decimal(doc["discount_total"])
    for d in doc["discounts"]:
        amount = min(Decimal(d["amount"]), remaining)
        remaining -= amount
        if amount > 0:
            rate = f" ({format(Decimal(d['percent']).normalize(), 'f')}%)" if d.get("percent") is not None else ""
            out.append((f"{d['description']}{rate}", amount))
    return out


def tax_label(tax: dict) -> str:
    """How an invoice names its tax where a platform carries it as one amount: "Tax (FL 8%)"."""
    rate = f"{format((Decimal(tax['rate']) * 100).normalize(), 'f')}%"
    juris = (tax.get("jurisdiction") or "").strip()
    return f"Tax ({juris} {rate})" if juris else f"Tax ({rate})"


def line_detail(line: dict) -> str:
    """How a line was made, for platforms that carry it as one amount: "2.5 h \u00d7 95.99"."""
    qty = format(Decimal(line["quantity"]).normalize(), "f")
    unit = " h" if line.get("kind") == "labor" else ""
    return f"{qty}{unit} \u00d7 {format(Decimal(line['unit_price']), 'f')}"
