"""Vendor simulators on local ports, a tenants file that points at them, and seeded credentials.

`invoicer sandbox` runs it until interrupted; tests use it to run the pipeline against QuickBooks,
Xero and Stripe as they would behave, with no network. Not for production.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from cryptography.fernet import Fernet

from .providers.quickbooks.simulator import QuickBooksSimulator
from .providers.simulate import Running
from .providers.stripe.simulator import StripeSimulator
from .providers.xero.simulator import XeroSimulator

XERO_ORG = "00000000-0000-4000-8000-00000000a001"
QBO_REALM = "9341453050000001"


@dataclass
class Sandbox:
    quickbooks: Running
    xero: Running
    stripe: Running
    env: dict[str, str] = field(default_factory=dict)

    def platforms(self) -> dict[str, dict]:
        """Platform entries for a tenants file, by provider slug."""
        return {
            "quickbooks": {"provider": "quickbooks", "realm_id": QBO_REALM, "base_url": self.quickbooks.url,
                           "token_url": f"{self.quickbooks.url}/oauth2/v1/tokens/bearer",
                           "items": {"labor": "1", "material": "2", "fee": "3"}},
            "xero": {"provider": "xero", "tenant_id": XERO_ORG, "base_url": self.xero.url,
                     "token_url": f"{self.xero.url}/connect/token",
                     "accounts": {"labor": "200", "material": "200", "fee": "260"},
                     "tax_types": {"taxable": "OUTPUT", "exempt": "NONE"}},
            "stripe": {"provider": "stripe", "base_url": self.stripe.url, "api_key_env": "INVOICER_SANDBOX_STRIPE_KEY",
                       "webhook_secret_env": "INVOICER_SANDBOX_STRIPE_WEBHOOK_SECRET", "account": "sandbox"},
        }

    def tenant(self, name: str, *slugs: str, **extra) -> dict:
        """A tenant on the given platforms (each named after its provider), unsigned sources."""
        entries = self.platforms()
        return {"name": name, "platforms": {slug: entries[slug] for slug in slugs},
                "sources": {"*": {"unsigned": True}}, **extra}

    def tenants_yaml(self, tenants: dict[str, dict] | None = None) -> str:
        tenants = tenants or {
            "acme-hvac": self.tenant("Acme Heating & Cooling", "quickbooks", "stripe",
                                     channels={"customer": ["email", "sms"],
                                               "finance_emails": ["finance@acme-hvac.example"]}),
            "polar-air": self.tenant("Polar Air Klimatechnik", "xero", locale="nl_NL"),
            "northwind-heating": self.tenant("Northwind Heating Ltd", "stripe", locale="en_GB"),
        }
        return yaml.safe_dump({"tenants": tenants}, sort_keys=False, allow_unicode=True)

    def seed(self, engine, tenants: dict[str, dict]) -> None:
        """Store OAuth tokens for every tenant on QuickBooks or Xero, as the consent flow would have."""
        from .credentials import Credentials

        for slug, tenant in tenants.items():
            for name, platform in tenant["platforms"].items():
                if platform["provider"] == "quickbooks":
                    Credentials(engine, slug, name).put(self.quickbooks.sim.issue_tokens())
                elif platform["provider"] == "xero":
                    Credentials(engine, slug, name).put(self.xero.sim.grant())

    def stop(self) -> None:
        for running in (self.quickbooks, self.xero, self.stripe):
            running.stop()


def start() -> Sandbox:
    qbo, xero, stripe = QuickBooksSimulator(realm_id=QBO_REALM), XeroSimulator((XERO_ORG,)), StripeSimulator()
    box = Sandbox(Running(qbo), Running(xero), Running(stripe))
    box.env = {
        "INVOICER_QUICKBOOKS_CLIENT_ID": qbo.client_id, "INVOICER_QUICKBOOKS_CLIENT_SECRET": qbo.client_secret,
        "INVOICER_XERO_CLIENT_ID": xero.client_id, "INVOICER_XERO_CLIENT_SECRET": xero.client_secret,
        "INVOICER_SANDBOX_STRIPE_KEY": next(iter(stripe.api_keys)),
        "INVOICER_SANDBOX_STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
        "INVOICER_CREDENTIALS_KEY": Fernet.generate_key().decode(),
    }
    return box
