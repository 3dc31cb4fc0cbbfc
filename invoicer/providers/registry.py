"""Providers by slug: a registry, not an if-chain. Packages register themselves on import."""
from __future__ import annotations

import logging
import pkgutil
from importlib import import_module

from .base import Provider

_PROVIDERS: dict[str, type[Provider]] = {}
_loaded = False
log = logging.getLogger("invoicer.providers")


def register(cls: type[Provider]) -> type[Provider]:
    _PROVIDERS[cls.slug] = cls
    return cls


def _load() -> None:
    """Import every provider package's adapter (each package under invoicer/providers/ is one platform).

    A package that fails to import is logged and left out, so one broken platform cannot take the
    others down; `get` then says it is unknown."""
    global _loaded
    if _loaded:
        return
    from .. import providers

    for info in pkgutil.iter_modules(providers.__path__):
        if info.ispkg:
            try:
                import_module(f"invoicer.providers.{info.name}.adapter")
            except ImportError:
                log.exception("provider package %s could not be imported", info.name)
    _loaded = True


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
