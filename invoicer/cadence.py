"""A tenant's reminder cadence (the `reminders:` entry of the tenants file), checked when it is loaded.

Steps are relative to the invoice's due date (`days: -3` is three days before, `0` the due date, `7` a
week after), each with its channels and template. An `escalate: true` step tells the finance team on
Slack instead of the customer. Cross-checks that need the rest of the tenant (a Slack channel
configured, a template that exists) are in `invoicer.reminders.check_tenant`.
"""
from __future__ import annotations

from datetime import time
from typing import Annotated, Literal
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .timezones import iana_zone

CUSTOMER_CHANNELS = ("email", "sms")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]  # part of the (invoice, step) key
    days: Annotated[int, Field(ge=-90, le=365, strict=True)]  # relative to the due date
    channels: list[Literal["email", "sms", "slack"]] = []  # default: [email], or [slack] for an escalation
    template: str | None = None  # a message kind: reminder (default), escalation, or reminder-*/escalation-*
    escalate: bool = False  # tell the finance team (Slack) instead of the customer

    @model_validator(mode="after")
    def _channels(self):
        if not self.channels:
            self.channels = ["slack"] if self.escalate else ["email"]
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: a channel is named twice")
        if self.escalate and self.channels != ["slack"]:
            raise ValueError("channels: an escalation step alerts finance on Slack: channels must be [slack]")
        if not self.escalate and "slack" in self.channels:
            raise ValueError("channels: slack goes to the finance team: only an escalation step (escalate: true) "
                             "may use it")
        if self.template is None:
            self.template = "escalation" if self.escalate else "reminder"
        return self

    @property
    def role(self) -> str:
        return "finance" if self.escalate else "customer"


class QuietHours(BaseModel):
    """No message over these channels between start and end, in the customer's local time; a message
    due inside the window waits for its end."""
    model_config = ConfigDict(extra="forbid")
    start: time = time(21, 0)
    end: time = time(8, 0)
    channels: list[Literal["email", "sms"]] = ["sms"]

    @model_validator(mode="after")
    def _window(self):
        if self.start == self.end:
            raise ValueError("start and end are the same time: give a window, or channels: [] for none")
        return self

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window spans midnight


class Reminders(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: Annotated[list[Step], Field(min_length=1, max_length=20)]
    send_at: time = time(9, 0)  # local time of day (the customer's zone) a step becomes due
    # beat was down and several steps are due at once: send each missed step once (catch_up), or send
    # only the latest and record the earlier ones as skipped (skip)
    missed: Literal["catch_up", "skip"] = "skip"
    quiet_hours: QuietHours = QuietHours()
    timezone: str | None = None  # the zone when the service address names none we know (default: the tenant's)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v):
        return v if v is None else iana_zone(v)

    @field_validator("steps")
    @classmethod
    def _unique(cls, v):
        names = [s.name for s in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"step names must be unique: {', '.join(twice)} named twice")
        return sorted(v, key=lambda s: (s.days, s.name))
