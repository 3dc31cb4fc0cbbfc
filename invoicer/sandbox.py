"""Vendor simulators on local ports, a tenants file that points at them, and seeded credentials.

Every provider package whose `simulator.py` names its simulator class `SIMULATOR` takes part. The
class is built with no arguments and answers three questions for the sandbox:
  platform(url) -> dict   the tenants-file entry for a platform on this simulator
  env() -> dict           the environment its adapter reads (API keys, OAuth client id and secret)
  tokens() -> dict|None   OAuth tokens to store for a tenant, as the consent flow would have

`invoicer sandbox` runs it until interrupted; tests use it to run the pipeline against the platforms
as they would behave, with no network. Not for production.
"""
from __future__ import annotations

import pkgutil
from dataclasses import dataclass, field
from importlib import import_module

import yaml
from cryptography.fernet import Fernet

from .providers.simulate import Running


def simulators() -> dict[str, type]:
    """Slug -> simulator class, for every provider package that has one."""
    from . import providers

    found = {}
    for info in pkgutil.iter_modules(providers.__path__):
        if not info.ispkg:
            continue
        try:
            module = import_module(f"invoicer.providers.{info.name}.simulator")
        except ModuleNotFoundError as e:
            if e.name != f"invoicer.providers.{info.name}.simulator":
                raise
            continue
        if getattr(module, "SIMULATOR", None) is not None:
            found[info.name] = module.SIMULATOR
    return dict(sorted(found.items()))


@dataclass
class Sandbox:
    running: dict[str, Running]
    env: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, slug: str) -> Running:
        return self.running[slug]

    def __getattr__(self, slug: str) -> Running:  # box.stripe reads as box["stripe"]
        try:
            return self.__dict__["running"][slug]
        except KeyError:
            raise AttributeError(slug) from None

    def platforms(self) -> dict[str, dict]:
        """Platform entries for a tenants file, by provider slug."""
        return {slug: r.sim.platform(r.url) for slug, r in self.running.items()}

    def tenant(self, name: str, *slugs: str, **extra) -> dict:
        """A tenant on the given platforms (each named after its provider), unsigned sources."""
        entries = self.platforms()
        return {"name": name, "platforms": {slug: entries[slug] for slug in slugs},
                "sources": {"*": {"unsigned": True}}, **extra}

    def tenants_yaml(self, tenants: dict[str, dict] | None = None) -> str:
        if tenants is None:
            tenants = {}
            if {"quickbooks", "stripe"} <= self.running.keys():
                tenants["acme-hvac"] = self.tenant("Acme Heating & Cooling", "quickbooks", "stripe",
                                                   channels={"customer": ["email", "sms"],
                                                             "finance_emails": ["finance@acme-hvac.example"]})
            if "xero" in self.running:
                tenants["polar-air"] = self.tenant("Polar Air Klimatechnik", "xero", locale="nl_NL")
            if "stripe" in self.running:
                tenants["northwind-heating"] = self.tenant("Northwind Heating Ltd", "stripe", locale="en_GB")
            for slug in self.running.keys() - {"quickbooks", "xero", "stripe"}:
                tenants[f"sandbox-{slug.replace('_', '-')}"] = self.tenant(f"Sandbox on {slug}", slug)
        return yaml.safe_dump({"tenants": tenants}, sort_keys=False, allow_unicode=True)

    def seed(self, engine, tenants: dict[str, dict]) -> None:
        """Store OAuth tokens for every tenant platform whose simulator hands them out."""
        from .credentials import Credentials

        for slug, tenant in tenants.items():
            for name, platform in tenant["platforms"].items():
                running = self.running.get(platform["provider"])
                tokens = running.sim.tokens() if running else None
                if tokens:
                    Credentials(engine, slug, name).put(tokens)

    def stop(self) -> None:
        for running in self.running.values():
            running.stop()


def start(slugs: list[str] | None = None) -> Sandbox:
    """Serve the simulators of the given platforms (all of them by default) on free local ports."""
    known = simulators()
    missing = set(slugs or ()) - known.keys()
    if missing:
        raise KeyError(f"no simulator for {', '.join(sorted(missing))}; known: {', '.join(known)}")
    box = Sandbox({slug: Running(known[slug]()) for slug in (slugs or known)})
    box.env = {"INVOICER_CREDENTIALS_KEY": Fernet.generate_key().decode()}
    for running in box.running.values():
        box.env.update(running.sim.env())
    return box
