"""The small interface every platform and channel implements, with capability flags."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import AuthFailed, MappingMissing, ProviderError, Unsupported

CAPABILITIES = ("create_invoice", "find_invoice", "send_invoice", "payment_status", "parse_webhook",
                "payment_link", "create_batch", "send_email", "send_sms", "send_chat", "find_message",
                "attach_pdf")  # attach_pdf: gets the invoice after our PDF exists, with doc["pdf"] set


@dataclass(frozen=True)
class Created:
    """What a platform answered for an invoice: its id, number and a link a person can open."""
    external_id: str
    number: str | None = None
    url: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """One outgoing message. `key` is our idempotency key, stable across retries."""
    key: str
    to: str
    subject: str
    text: str
    attachment: tuple[str, bytes] | None = None  # (filename, PDF bytes)
    tenant: str = ""
    html: str | None = None  # the HTML body of an email, beside `text`
    data: dict = field(default_factory=dict)  # the facts behind it (customer, job, total, due, links): Slack blocks
    delivery_id: int | None = None  # our delivery row, carried to the vendor where it can hold it


@dataclass(frozen=True)
class PaymentStatus:
    """What the platform says has been paid. `paid` is True only when nothing is left to pay."""
    amount_paid: Decimal
    amount_due: Decimal
    paid: bool


@dataclass(frozen=True)
class WebhookEvent:
    """One verified vendor event, normalised; the raw payload is kept beside it."""
    # invoice.paid | invoice.payment_partial | invoice.voided | message.<status> | other; or, when the vendor
    # sends ids only: invoice.changed (ask its payment status) | payment.changed (ask which invoices it pays)
    type: str
    external_id: str
    amount_paid: Decimal | None = None
    reference: str | None = None  # our own key when the vendor echoes it (message events: the delivery key)
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    external_id: str
    detail: dict[str, Any] = field(default_factory=dict)


class Provider:
    """Override the capabilities the platform has and list them in `capabilities`.

    `options` is the tenant's platform entry (non-secret settings); `ctx` gives shared resources
    (the database engine for the local platform, the var directory).
    """
    slug: str = ""
    capabilities: frozenset[str] = frozenset()
    shared_webhook_url = False  # True: one webhook URL for all accounts; each entry keeps its own events
    poll_payments = False  # True: payment status is polled even though the platform sends webhooks (best-effort ones)
    # a message channel that cannot look an earlier send up (find_message): True = after an unknown
    # outcome send again anyway (at least once: SMTP, or sends idempotent by themselves); False = stop
    # and mark the delivery for review, so a person decides
    resend_after_unknown = False

    def __init__(self, options: dict[str, Any] | None = None, ctx: Any = None):
        self.options = options or {}
        self.ctx = ctx

    def webhook_account(self) -> str | None:
        """The vendor account this entry stands for, as the vendor's webhooks name it (QuickBooks: the
        realm); None: any."""
        return None

    def env_secret(self, option: str, what: str) -> str:
        """The secret in the environment variable that option `option` names (MappingMissing when the
        option is not set, AuthFailed when the variable is empty)."""
        import os

        name = self.options.get(option)
        if not name:
            raise MappingMissing(f"{self.slug}: option {option} ({what}) is not set")
        value = os.environ.get(name, "").strip()
        if not value:
            raise AuthFailed(f"{self.slug}: environment variable {name} ({what}) is not set")
        return value

    def create_invoice(self, invoice: dict, key: str) -> Created:
        raise Unsupported(f"{self.slug} cannot create invoices")

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        raise Unsupported(f"{self.slug} cannot look invoices up")

    def check_invoice(self, invoice: dict) -> None:
        """Raise Rejected, without calling the platform, for an invoice it could never take."""

    def create_invoices(self, invoices: list[dict], keys: list[str]) -> list["Created | ProviderError"]:
        """Many invoices in few requests (capability create_batch): for each, in order, what the
        platform made or the error that refused that one alone. An error raised instead is the whole
        batch's (rate limited, unavailable, unknown outcome)."""
        raise Unsupported(f"{self.slug} cannot create invoices in batches")

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        raise Unsupported(f"{self.slug} cannot send invoices")

    def payment_status(self, external_id: str) -> "PaymentStatus":
        raise Unsupported(f"{self.slug} cannot report payment status")

    def parse_webhook(self, headers: dict, body: bytes, url: str = "") -> list["WebhookEvent"]:
        raise Unsupported(f"{self.slug} sends no webhooks")

    def send_email(self, message: Message) -> Sent:
        raise Unsupported(f"{self.slug} cannot send email")

    def send_sms(self, message: Message) -> Sent:
        raise Unsupported(f"{self.slug} cannot send SMS")

    def send_chat(self, message: Message) -> Sent:
        raise Unsupported(f"{self.slug} cannot post chat messages")

    def find_message(self, message: Message, kind: str) -> Sent | None:
        """After an unknown outcome: the message an earlier attempt sent, if the vendor can tell."""
        raise Unsupported(f"{self.slug} cannot look messages up")
