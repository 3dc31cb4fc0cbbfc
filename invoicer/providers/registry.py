"""Providers by slug: a registry, not an if-chain. Packages register themselves on import."""
from __future__ import annotations

import pkgutil
from importlib import import_module

from .base import Provider

_PROVIDERS: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    _PROVIDERS[cls.slug] = cls
    return cls


def _load() -> None:
    """Import every provider package's adapter (each package under invoicer/providers/ is one platform)."""
    if not _PROVIDERS:
        from .. import providers

        for info in pkgutil.iter_modules(providers.__path__):
            if info.ispkg:
                import_module(f"invoicer.providers.{info.name}.adapter")


def get(slug: str) -> type[Provider]:
    _load()
    try:
        return _PROVIDERS[slug]
    except KeyError:
        raise KeyError(f"no provider named {slug!r}; known: {', '.join(sorted(_PROVIDERS))}") from None


def has(slug: str, capability: str) -> bool:
    _load()
    cls = _PROVIDERS.get(slug)
    return cls is not None and capability in cls.capabilities


def all_providers() -> dict[str, type[Provider]]:
    _load()
    return dict(sorted(_PROVIDERS.items()))
