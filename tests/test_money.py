"""invoicer.money against an independent exact oracle of the contract's rules (../shared/events/README.md).

Pure: no database, no broker. The oracle uses fractions.Fraction and its own half-up rounding; it never
calls invoicer.money, so a Decimal precision or rounding-mode slip in money.py shows up as a mismatch.
"""
from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicer.models import Event, Job
from invoicer.money import minor_unit, price, to_minor

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "events" / "jobs-300.jsonl"
# ISO 4217 minor units, written out so that the oracle does not depend on invoicer.money.
MINOR = {"USD": 2, "EUR": 2, "CAD": 2, "GBP": 2, "AUD": 2, "JPY": 0, "ISK": 0, "KWD": 3, "BHD": 3, "CLF": 4}


# ---- the oracle ---------------------------------------------------------------------------------
def half_up(x: Fraction, digits: int) -> Fraction:
    scaled = x * 10**digits
    assert scaled >= 0
    return Fraction((scaled + Fraction(1, 2)).__floor__(), 10**digits)


def oracle(job: dict) -> dict:
    """README "How an event becomes an invoice total", exact rational arithmetic."""
    mu, f = MINOR[job["currency"]], (lambda v: Fraction(str(v)))
    lines = ([(half_up(f(x["hours"]) * f(x["rate"]), mu), x["taxable"]) for x in job.get("labor", [])]
             + [(half_up(f(x["quantity"]) * f(x["unit_price"]), mu), x["taxable"]) for x in job.get("materials", [])]
             + [(half_up(f(x["amount"]), mu), x["taxable"]) for x in job.get("fees", [])])
    subtotal = sum((amount for amount, _ in lines), Fraction(0))
    each = [half_up(subtotal * f(d["percent"]) / 100, mu) if d.get("percent") is not None else f(d["amount"])
            for d in job.get("discounts", [])]
    discount = min(sum(each, Fraction(0)), subtotal)
    taxable = sum((amount for amount, t in lines if t), Fraction(0))
    base = taxable * (1 - discount / subtotal) if subtotal else Fraction(0)
    tax = half_up(f(job["tax"]["rate"]) * base, mu)
    return {"lines": [a for a, _ in lines], "discounts": each, "subtotal": subtotal, "discount": discount,
            "tax": tax, "total": subtotal - discount + tax}


def priced(job: dict | Job) -> dict:
    lines, discounts, t = price(job if isinstance(job, Job) else Job.model_validate(job))
    return {"lines": [Fraction(x.amount) for x in lines], "discounts": [Fraction(d.amount) for d in discounts],
            "subtotal": Fraction(t.subtotal), "discount": Fraction(t.discount), "tax": Fraction(t.tax),
            "total": Fraction(t.total)}


def make_job(currency="USD", rate="0", labor=(), materials=(), fees=(), discounts=()) -> dict:
    return {"id": "J-1", "number": "1", "completed_at": "2026-11-02T13:00:00Z", "summary": "Repair.",
            "technician": {"id": "T-1", "name": "Tech"}, "service_address": {"country": "US"},
            "labor": list(labor), "materials": list(materials), "fees": list(fees), "discounts": list(discounts),
            "tax": {"rate": rate}, "currency": currency, "payment_terms_days": 30}


def L(hours, rate, taxable=True):
    return {"description": "Labour", "hours": hours, "rate": rate, "taxable": taxable}


def M(qty, unit_price, taxable=True):
    return {"description": "Part", "quantity": qty, "unit_price": unit_price, "taxable": taxable}


def F(amount, taxable=False):
    return {"description": "Fee", "amount": amount, "taxable": taxable}


def PCT(percent):
    return {"description": "Percent off", "percent": percent}


def AMT(amount):
    return {"description": "Credit", "amount": amount}


# ---- 1. property: price() == oracle on generated jobs ---------------------------------------------
def dec(max_units: int, decimals: int):
    """Decimal strings in [0, max_units] with 0..decimals decimals, e.g. "3.25", "8333", "0.0825"."""
    def fmt(args):
        n, k = args
        return str(n) if k == 0 else f"{n // 10**k}.{n % 10**k:0{k}d}"
    return st.integers(0, decimals).flatmap(
        lambda k: st.tuples(st.integers(0, max_units * 10**k), st.just(k))).map(fmt)


@st.composite
def jobs(draw):
    cur = draw(st.sampled_from(["USD", "EUR", "JPY", "KWD", "BHD", "CLF", "ISK"]))
    mu, big = MINOR[cur], 200 if MINOR[cur] else 20000
    line = st.one_of(st.builds(L, dec(40, 2), dec(big, 4), st.booleans()),
                     st.builds(M, dec(50, 3), dec(big, 4), st.booleans()),
                     st.builds(F, dec(big, mu), st.booleans()))
    lines = draw(st.lists(line, min_size=1, max_size=6))
    discount = st.one_of(st.builds(PCT, dec(100, 2)), st.builds(AMT, dec(30 * big, mu)))
    rate = draw(st.one_of(st.sampled_from(["0", "0.0825", "0.21", "0.06", "0.07375", "0.15", "1"]), dec(0, 5)))
    return make_job(cur, rate, [x for x in lines if "hours" in x], [x for x in lines if "quantity" in x],
                    [x for x in lines if "amount" in x], draw(st.lists(discount, max_size=3)))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(jobs())
def test_price_matches_exact_oracle(job):
    assert priced(job) == oracle(job)
    mu = MINOR[job["currency"]]
    lines, discounts, t = price(Job.model_validate(job))
    amounts = [x.amount for x in lines] + [d.amount for d in discounts] + [t.subtotal, t.discount, t.tax, t.total]
    assert all(a.as_tuple().exponent >= -mu for a in amounts), amounts  # at most minor_unit decimals
    assert 0 <= t.discount <= t.subtotal
    if t.discount == t.subtotal:
        assert t.taxable_base == 0 and t.tax == 0 and t.total == 0


# ---- 2. worked by hand ---------------------------------------------------------------------------
def test_jpy_zero_decimals():
    # 1.5 h x 8333 = 12499.5 -> 12500; 0.5 x 4005 = 2002.5 -> 2003 (half-even would say 2002); fee 3000.
    # subtotal 17503; 10% = 1750.3 -> 1750; taxable 14503 x 15753/17503 = 13052.95...; x 0.10 = 1305.29... -> 1305
    job = make_job("JPY", "0.10", [L("1.5", "8333")], [M("0.5", "4005")], [F("3000")], [PCT("10")])
    got = priced(job)
    assert got["lines"] == [12500, 2003, 3000]
    assert (got["subtotal"], got["discount"], got["tax"], got["total"]) == (17503, 1750, 1305, 17058)
    assert got == oracle(job)


def test_kwd_three_decimals():
    # 2.5 h x 12.345 = 30.8625 -> 30.863 (half-even: 30.862); 1.25 x 7.1 = 8.875; fee 1.500 -> subtotal 41.238
    # 5% = 2.0619 -> 2.062, plus 1.000 credit = 3.062; base 39.738 x 38.176/41.238 = 36.7873...; x 0.05 -> 1.839
    job = make_job("KWD", "0.05", [L("2.5", "12.345")], [M("1.25", "7.1")], [F("1.500")], [PCT("5"), AMT("1.000")])
    got = priced(job)
    assert got["lines"] == [Fraction("30.863"), Fraction("8.875"), Fraction("1.5")]
    assert got["discounts"] == [Fraction("2.062"), 1]
    assert (got["subtotal"], got["discount"], got["tax"], got["total"]) == tuple(
        Fraction(x) for x in ("41.238", "3.062", "1.839", "40.015"))
    assert got == oracle(job)


def test_half_up_not_bankers():
    assert Decimal("0.125").quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) == Decimal("0.12")
    got = priced(make_job("USD", "0", [L("0.5", "0.25")]))  # 0.125 -> 0.13
    assert got["lines"] == [Fraction("0.13")] and got["total"] == Fraction("0.13")


@pytest.mark.parametrize("cur, rate, taxable, fee, credit, tax", [
    ("EUR", "0.21", "21.00", "1.68", "8.82", "2.70"),  # 0.21 x 21.00 x 13.86/22.68 = 2.695 exactly
    ("USD", "0.24", "0.21", "7.71", "2.42", "0.04"),  # 0.24 x 0.21 x 5.50/7.92 = 0.035 exactly
])
def test_tax_tie_on_a_repeating_taxable_base(cur, rate, taxable, fee, credit, tax):
    # The taxable base repeats (12.8333..., 0.14583...); rounded to 28 digits before the multiplication by
    # the rate it makes the exact half-cent tie 2.694999... and rounds it down. Random jobs hit this ~1 in 10^5.
    job = make_job(cur, rate, [L("1", taxable)], fees=[F(fee)], discounts=[AMT(credit)])
    got = priced(job)
    assert got["tax"] == Fraction(tax) and got == oracle(job)


def test_discount_capped_at_subtotal():
    job = make_job("USD", "0.0825", [L("2", "100.00")], fees=[F("25.00", True)], discounts=[PCT("60"), AMT("500.00")])
    _, discounts, t = price(Job.model_validate(job))
    assert [d.amount for d in discounts] == [Decimal("135.00"), Decimal("500.00")]
    assert t.subtotal == t.discount == Decimal("225.00")
    assert t.taxable_base == 0 and t.tax == 0 and t.total == 0


# ---- 3. the shared corpus -------------------------------------------------------------------------
def test_shared_corpus_matches_oracle():
    if not CORPUS.exists():
        pytest.skip(f"{CORPUS} is not here (the shared data folder sits beside the repository)")
    events = [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert events
    wrong = []
    for raw in events:
        got, want = priced(Event.model_validate(raw).job), oracle(raw["job"])
        if got != want:
            wrong.append((raw["id"], got, want))
    assert not wrong, wrong[:5]


# ---- 4. currency helpers --------------------------------------------------------------------------
@pytest.mark.parametrize("code, digits", [("JPY", 0), ("USD", 2), ("KWD", 3), ("CLF", 4)])
def test_minor_unit(code, digits):
    assert minor_unit(code) == digits


@pytest.mark.parametrize("code", ["XAU", "ZZZ"])
def test_minor_unit_rejects(code):
    with pytest.raises(ValueError):
        minor_unit(code)


@pytest.mark.parametrize("value, code, cents", [
    ("12.34", "USD", 1234), ("12.345", "USD", 1235), ("0.005", "EUR", 1), ("12500", "JPY", 12500),
    ("12499.5", "JPY", 12500), ("1.2345", "KWD", 1235), ("0.0001", "CLF", 1), ("0", "USD", 0)])
def test_to_minor(value, code, cents):
    assert to_minor(Decimal(value), code) == cents
