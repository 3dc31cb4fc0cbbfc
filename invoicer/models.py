"""Event contract v1 (../shared/events/README.md), validated with pydantic.

Money and quantities are decimal strings; a JSON integer is accepted where it converts exactly,
a JSON number with a fraction never is (it has been through a float somewhere).
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, \
    model_validator

from . import money

_DECIMAL = re.compile(r"^-?\d{1,15}(\.\d{1,10})?$")
# Control characters have no place in a name, an id or an address, and PostgreSQL cannot store NUL at all:
# rejected at the door, naming the field, rather than failing (and being retried) deep in a worker.
# Free text (a summary, a line's description) may still hold tabs and line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_MULTILINE = {"summary", "description"}


def _to_decimal(value):
    if isinstance(value, bool):
        raise ValueError("must be a decimal string such as \"12.50\"")
    if isinstance(value, int):
        if abs(value) >= 10 ** 15:
            raise ValueError("must have at most 15 digits before the decimal point")
        return Decimal(value)
    if isinstance(value, float):
        raise ValueError("must be a decimal string such as \"12.50\", not a JSON number with a fraction "
                         "or an exponent (floats are never used for money)")
    if isinstance(value, str) and _DECIMAL.match(value):
        return Decimal(value)
    raise ValueError("must be a decimal string such as \"12.50\"")


Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
NonNeg = Annotated[Dec, Field(ge=0)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


def _control(value, multiline: bool) -> bool:
    if isinstance(value, str):
        return bool((_CONTROL_IN_TEXT if multiline else _CONTROL).search(value))
    if isinstance(value, dict):
        return any(_control(k, False) or _control(v, False) for k, v in value.items())
    return False


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value, info: ValidationInfo):
        if _control(value, info.field_name in _MULTILINE):
            raise ValueError("must not contain control characters" +
                             (" (tabs and line breaks are allowed)" if info.field_name in _MULTILINE else ""))
        return value


class Technician(_Model):
    id: Text
    name: Text


class Address(_Model):
    line1: Annotated[str, Field(max_length=200)] = ""
    city: Annotated[str, Field(max_length=100)] = ""
    region: Annotated[str, Field(max_length=100)] = ""
    postal_code: Annotated[str, Field(max_length=20)] = ""
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Labor(_Model):
    description: Text
    hours: NonNeg
    rate: NonNeg
    taxable: bool


class Material(_Model):
    sku: Annotated[str, Field(max_length=64)] = ""
    description: Text
    quantity: NonNeg
    unit_price: NonNeg
    taxable: bool


class Fee(_Model):
    description: Text
    amount: NonNeg
    taxable: bool


class Discount(_Model):
    description: Text
    percent: Annotated[Dec, Field(ge=0, le=100)] | None = None
    amount: NonNeg | None = None

    @model_validator(mode="after")
    def _one_of(self):
        if (self.percent is None) == (self.amount is None):
            raise ValueError("a discount has exactly one of percent or amount")
        return self


class Tax(_Model):
    rate: Annotated[Dec, Field(ge=0, le=1)]
    jurisdiction: Annotated[str, Field(max_length=64)] = ""


class Signature(_Model):
    signed_by: Text
    signed_at: AwareDatetime


class Job(_Model):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    number: Annotated[str, Field(min_length=1, max_length=64)]
    completed_at: AwareDatetime
    technician: Technician
    summary: Annotated[str, Field(max_length=4000)]
    service_address: Address
    labor: list[Labor] = Field(default_factory=list, max_length=500)
    materials: list[Material] = Field(default_factory=list, max_length=500)
    fees: list[Fee] = Field(default_factory=list, max_length=500)
    discounts: list[Discount] = Field(default_factory=list, max_length=50)
    tax: Tax
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    payment_terms_days: Annotated[int, Field(ge=0, le=365, strict=True)]
    po_number: Annotated[str, Field(max_length=64)] | None = None
    signature: Signature | None = None

    @model_validator(mode="after")
    def _money_fits_currency(self):
        if not money.is_currency(self.currency):
            raise ValueError(f"currency: {self.currency!r} is not an ISO 4217 currency with a minor unit")
        digits = money.minor_unit(self.currency)
        for name, items, attr in (("fees", self.fees, "amount"), ("discounts", self.discounts, "amount")):
            for i, item in enumerate(items):
                value = getattr(item, attr)
                if value is not None and not money.fits_currency(value, self.currency):
                    raise ValueError(f"{name}.{i}.{attr}: {value} has more decimals than "
                                     f"{self.currency} allows ({digits})")
        if not (self.labor or self.materials or self.fees):
            raise ValueError("a job needs at least one labor, material or fee line")
        too_large = f"is more than an invoice can hold (less than {money.MAX_AMOUNT:,} {self.currency})"
        for name, items, a, b in (("labor", self.labor, "hours", "rate"),
                                  ("materials", self.materials, "quantity", "unit_price")):
            for i, item in enumerate(items):
                if getattr(item, a) * getattr(item, b) >= money.MAX_AMOUNT:
                    raise ValueError(f"{name}.{i}: {a} x {b} {too_large}")
        totals = money.price(self)[2]
        if max(totals.subtotal, totals.total) >= money.MAX_AMOUNT:
            raise ValueError(f"total: {max(totals.subtotal, totals.total)} {too_large}")
        return self


class Customer(_Model):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    name: Text
    email: Annotated[str, Field(max_length=254)] | None = None
    phone: Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$")] | None = None
    billing_address: Address | None = None
    external_ids: dict[str, str] = Field(default_factory=dict)


class Event(_Model):
    type: Literal["job.completed", "job.signed", "job.updated"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    source: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    occurred_at: AwareDatetime
    tenant: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
    job: Job
    customer: Customer

    @model_validator(mode="after")
    def _signed_has_signature(self):
        if self.type == "job.signed" and self.job.signature is None:
            raise ValueError("job.signature: required on a job.signed event")
        return self
