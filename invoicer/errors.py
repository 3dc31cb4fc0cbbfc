"""Typed errors: their class decides whether a step is retried (see ../shared/STYLE.md)."""
from __future__ import annotations


class ProviderError(Exception):
    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class AuthFailed(ProviderError):
    """Credentials refused; a person must fix them."""


class Rejected(ProviderError):
    """The platform refused the request as invalid (4xx other than 408/409/429). Never retried."""


class MappingMissing(ProviderError):
    """A tenant mapping the platform needs is missing; shown to the tenant, never retried."""


class Unsupported(ProviderError):
    """The provider cannot do this at all."""


class Unavailable(ProviderError):
    """5xx, connection refused, timeout before sending: retried with backoff and jitter."""
    retryable = True


class RateLimited(Unavailable):
    """429 or the vendor's own limit signal; retried after `retry_after` seconds."""


class OutcomeUnknown(Unavailable):
    """The request may have taken effect (timeout after sending): look it up before retrying."""
