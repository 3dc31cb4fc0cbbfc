"""Settings from the environment (pydantic-settings) and the tenants file (YAML).

Secrets never live in the tenants file: it names environment variables (`secret_env`).
A bad configuration fails at start with a message that names the key.
"""
from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .branding import Branding, check_logo
from .cadence import Reminders


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICER_", extra="ignore")

    database_url: str = "sqlite:///var/invoicer.sqlite3"
    broker_url: str = "redis://127.0.0.1:6379/0"
    config: str | None = None  # path of the tenants file; None = the built-in demo tenants
    var_dir: Path = Path("var")
    secret_key: str | None = None  # signs document links; required outside the demo
    pdf_link_ttl: int = Field(30 * 86400, gt=0)  # seconds a customer's signed PDF link stays valid
    pdf_dir: Path | None = None  # where PDFs are stored; default <var_dir>/invoices
    public_url: str = "http://127.0.0.1:8000"
    visibility_timeout: int = 600  # seconds; longer than any task's hard limit
    task_time_limit: int = 120
    max_attempts: int = 8
    retry_base: float = 2.0  # seconds; backoff base for retries
    retry_cap: float = 300.0  # no retry waits longer (must stay below visibility_timeout)
    sweep_interval: float = 15.0  # seconds between beat sweeps
    sweep_grace: float = 60.0  # a step idle this long is re-driven by the sweep
    max_body_bytes: int = 256 * 1024
    body_timeout: float = Field(10.0, gt=0)  # seconds a request body may take to arrive; then 408
    task_events: bool = False  # Celery task events; Flower enables them itself while it runs
    api_token: str | None = None  # when set, GET /v1/jobs/... needs "Authorization: Bearer <token>"
    reminder_interval: float = Field(60.0, gt=0)  # seconds between beat's reminder fan-outs
    payment_poll_every: float = Field(300.0, gt=0)  # seconds between beat's payment-status selections
    payment_poll_interval: float = Field(3600.0, gt=0)  # an open invoice is asked about at most this often
    payment_poll_batch: int = Field(50, gt=0)  # invoices asked about per platform per selection


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret_env: str | None = None
    unsigned: bool = False
    # a dispatch system's webhook (POST /v1/hooks/<slug>/<tenant>, invoicer.hooks): the options of its API
    # the job is fetched from, where the tenant has no platform entry for it (FieldEdge), or beside that entry
    fetch: dict = {}

    @model_validator(mode="after")
    def _one(self):
        if bool(self.secret_env) == self.unsigned:
            raise ValueError("give exactly one of secret_env or unsigned: true")
        return self

    def secret(self) -> str | None:
        if self.unsigned:
            return None
        value = os.environ.get(self.secret_env or "")
        if not value:
            raise ConfigError(f"environment variable {self.secret_env} (a webhook secret) is not set")
        return value


class Platform(BaseModel):
    model_config = ConfigDict(extra="allow")
    provider: str  # registry slug


class Numbering(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = Field("INV-", pattern=r"^[A-Za-z0-9._-]{0,32}$")  # also the PDF's file name
    start: int = 1
    width: int = Field(6, ge=1, le=12)


class Channel(BaseModel):
    """One channel's provider and its non-secret options (host, from, base_url, *_env names ...)."""
    model_config = ConfigDict(extra="allow")
    provider: str  # registry slug


def _channel(value):
    return {"provider": value} if isinstance(value, str) else value


class Channels(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: list[Literal["email", "sms"]] = ["email", "sms"]
    finance_emails: list[str] = []
    email: Channel = Channel(provider="local")  # a slug, or {provider: slug, ...options}
    sms: Channel = Channel(provider="local")
    slack: Channel | None = None  # the finance team's Slack channel, if any
    pdf: Literal["attach", "link"] = "attach"  # customer email: the PDF attached, or only its signed link

    _as_channel = field_validator("email", "sms", "slack", mode="before")(_channel)

    def configured(self) -> list[Channel]:
        return [c for c in (self.email, self.sms, self.slack) if c is not None]


class Template(BaseModel):
    """A tenant's own wording for one message kind (Jinja2, sandboxed); a field left out uses the default."""
    model_config = ConfigDict(extra="forbid")
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    sms: str | None = None
    slack: str | None = None


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    address: list[str] = []
    tax_id: str | None = None
    locale: str = "en_US"
    trigger: Literal["first", "signed"] = "first"
    platforms: dict[str, Platform]
    pay_link: str | None = None  # the platform (a name under platforms) whose payment page is the Pay online link
    channels: Channels = Channels()
    # a message kind, or a reminder step's own wording (reminder-*, escalation-*)
    templates: dict[Annotated[str, Field(pattern=r"^(invoice|finance|(reminder|escalation)(-[a-z0-9_-]{1,32})?)$")],
                    Template] = {}
    reminders: Reminders | None = None  # the follow-up cadence (docs/reminders.md); none: no reminders
    numbering: Numbering = Numbering()
    branding: Branding = Branding()
    sources: dict[str, Source]

    @field_validator("platforms")
    @classmethod
    def _some(cls, v):
        if not v:
            raise ValueError("a tenant needs at least one platform")
        return v

    def source(self, name: str) -> Source | None:
        return self.sources.get(name) or self.sources.get("*")


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenants: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")], Tenant]


def _describe(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        parts.append(f"{origin}: {key}: {e['msg']}")
    return "\n".join(parts)


def load_tenants(path: str | None) -> dict[str, Tenant]:
    if path:
        origin = path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"INVOICER_CONFIG: cannot read {path}: {exc.strerror}") from None
    else:
        origin = "built-in tenants.yaml"
        text = resources.files("invoicer").joinpath("tenants.yaml").read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from None
    try:
        tenants = TenantsFile.model_validate(raw).tenants
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
    from .providers import registry

    base = Path(path).resolve().parent if path else Path.cwd()
    for slug, tenant in tenants.items():
        problem = check_logo(tenant.branding, base)
        if problem:
            raise ConfigError(f"{origin}: tenants.{slug}.{problem}")
        for name, platform in tenant.platforms.items():
            if not registry.has(platform.provider, "create_invoice"):
                raise ConfigError(f"{origin}: tenants.{slug}.platforms.{name}.provider: "
                                  f"no invoice platform named {platform.provider!r}")
            check = getattr(registry.get(platform.provider), "check_options", None)
            problems = check(platform.model_dump(), name) if check else []
            if problems:
                raise ConfigError("\n".join(f"{origin}: tenants.{slug}.{p}" for p in problems))
        if tenant.pay_link is not None:
            chosen = tenant.platforms.get(tenant.pay_link)
            if chosen is None or not registry.has(chosen.provider, "payment_link"):
                raise ConfigError(f"{origin}: tenants.{slug}.pay_link: {tenant.pay_link!r} is not one of this "
                                  f"tenant's payment platforms")
        for kind, capability in (("email", "send_email"), ("sms", "send_sms"), ("slack", "send_chat")):
            channel = getattr(tenant.channels, kind)
            if channel is None:
                continue
            if not registry.has(channel.provider, capability):
                raise ConfigError(f"{origin}: tenants.{slug}.channels.{kind}: no {kind} channel named "
                                  f"{channel.provider!r}")
            check = getattr(registry.get(channel.provider), "check_options", None)
            problems = check(channel.model_dump(), f"channels.{kind}") if check else []
            if problems:
                raise ConfigError("\n".join(f"{origin}: tenants.{slug}.{p}" for p in problems))
        from . import notify

        from . import reminders

        problems = notify.check_tenant(tenant) + reminders.check_tenant(tenant)
        if problems:
            raise ConfigError("\n".join(f"{origin}: tenants.{slug}.{p}" for p in problems))
        for name, source in tenant.sources.items():
            if source.secret_env and not os.environ.get(source.secret_env):
                raise ConfigError(f"{origin}: tenants.{slug}.sources.{name}.secret_env: "
                                  f"environment variable {source.secret_env} is not set")
    return tenants


@lru_cache(maxsize=1)
def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "environment (INVOICER_*)")) from None


@lru_cache(maxsize=1)
def tenants() -> dict[str, Tenant]:
    return load_tenants(settings().config)


def reset() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    settings.cache_clear()
    tenants.cache_clear()
