"""Small pieces several platform packages share (NetSuite, Sage Intacct): secrets named by tenant
options, the startup check of required options, the customer id already known, the decimals a
platform keeps, and a simulator's requests-in-flight limit."""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Callable, Iterator

from .. import money
from ..errors import MappingMissing, Rejected
from .base import Provider


class MappedProvider(Provider):
    """A provider whose tenant options are read once into `self.mapping` (a `mapping_class.from_options`)."""
    mapping_class: type = type(None)

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or self.slug
        self.mapping = self.mapping_class.from_options(self.options, self.platform)


def mapped(values: dict[str, str], kind: str, message: str) -> str:
    """`values[kind]`, else MappingMissing(message)."""
    value = values.get(kind)
    if not value:
        raise MappingMissing(message)
    return value


class SecretsFromEnv:
    """The sandbox hook's env() and tokens() for a simulator whose credentials the adapter reads from the
    environment: `secret_values()` gives {option (`<x>_env`): value}; `secret_options()` the options that
    name the variables, for platform()."""
    sandbox_slug = ""

    def secret_values(self) -> dict[str, str]:
        raise NotImplementedError

    def secret_options(self) -> dict[str, str]:
        return {option: f"INVOICER_SANDBOX_{self.sandbox_slug.upper()}_{option.removesuffix('_env').upper()}"
                for option in self.secret_values()}

    def env(self) -> dict[str, str]:
        names = self.secret_options()
        return {names[option]: value for option, value in self.secret_values().items()}

    def tokens(self) -> dict | None:
        return None  # nothing to store: the adapter reads its credentials from the environment


def env_secrets(slug: str, options: dict, platform: str, names: tuple[tuple[str, str], ...]) -> list[str]:
    """The values of the environment variables the options name (`<option>: VAR`), by default
    INVOICER_<SLUG>_<SUFFIX>; MappingMissing naming the variable and the option when one is unset."""
    out = []
    for option, suffix in names:
        name = options.get(option) or f"INVOICER_{slug.upper()}_{suffix}"
        value = os.environ.get(name)
        if not value:
            raise MappingMissing(f"environment variable {name} (platforms.{platform}.{option}) is not set")
        out.append(value)
    return out


def option_problems(options: dict, name: str, required: dict[str, str], group: str, keys: tuple[str, ...]) -> list[str]:
    """What is missing from a tenant's platform entry: each `required` key (with what it is), and
    `group.<key>` for each of `keys`."""
    problems = [f"platforms.{name}.{key}: {what} is not set" for key, what in required.items() if not options.get(key)]
    mapping = options.get(group) or {}
    problems += [f"platforms.{name}.{group}.{k} is not set" for k in keys
                 if not (mapping.get(k) if isinstance(mapping, dict) else None)]
    return problems


def known_customer(ctx, customer: dict, slug: str, platform: str) -> str | None:
    """The platform's id for our customer if we know it already: remembered, or given by the sender."""
    known = ctx.refs.get("customer", customer["id"])
    if known:
        return known
    ids = customer.get("external_ids") or {}
    return ids.get(slug) or ids.get(platform) or None


def cached_credential(creds, name: str, make: Callable[[dict | None], dict], refused: str | None = None,
                      early: float = 60) -> str:
    """`name` of the tenant's stored credential (a session id, an access token) while it has more than
    `early` seconds left and is not the one the platform has just refused; else `make(current)` is stored
    (under the row lock, so concurrent workers make one) and its `name` returned. `make` returns
    {name: ..., "expires_at": epoch seconds, ...}."""
    def good(c: dict) -> bool:
        return bool(c.get(name)) and c[name] != refused and float(c.get("expires_at") or 0) > time.time() + early

    current = creds.get()
    if current is None:  # nothing stored yet: no row to lock; two first workers may both make one
        fresh = make(None)
        creds.put(fresh)
        return fresh[name]
    if good(current):
        return current[name]
    return creds.refresh(good, make)[name]


def error_text(*keys: str) -> Callable[[Any, str], str]:
    """A vendor's `text(body, fallback)` for http.json_message: a JSON error body's GraphQL-style
    `errors[].message`, else an OAuth `error` with its `error_description`, else the first of `keys` it
    has, else the body's first 300 characters."""
    def text(body, fallback: str) -> str:
        if isinstance(body, dict):
            if isinstance(body.get("errors"), list) and body["errors"]:
                return "; ".join(str(e.get("message")) for e in body["errors"] if isinstance(e, dict))[:300]
            if body.get("error"):
                return " ".join(str(x) for x in (body["error"], body.get("error_description")) if x)[:300]
            for key in keys:
                if body.get(key):
                    return str(body[key])[:300]
        return fallback[:300]

    return text


def check_decimals(doc: dict, vendor: str, places: int) -> None:
    """Rejected for an invoice whose amounts need more decimals than the platform keeps."""
    if money.minor_unit(doc["currency"]) <= places:
        return
    step = Decimal(1).scaleb(-places)
    amounts = [doc["total"], doc["tax"]["amount"], doc["discount_total"], *(l["amount"] for l in doc["lines"])]
    if any(a.quantize(step) != a for a in amounts):
        raise Rejected(f'{vendor} keeps at most {places} decimals; invoice {doc["number"]} in {doc["currency"]} '
                       f'has amounts in thousandths that it would round')


class InFlight:
    """A simulator's limit on requests in flight, with a gate tests close to hold requests inside."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    @contextmanager
    def enter(self, refused: Callable[[], object]) -> Iterator[object | None]:
        """Yields None when admitted (the caller serves the request), else `refused()`."""
        with self._lock:
            if self.count >= self.limit:
                yield refused()
                return
            self.count += 1
        try:
            if self.gate is not None:
                self.gate.wait(30)
            yield None
        finally:
            with self._lock:
                self.count -= 1


def env_value(options: dict, platform: str, option: str, default: str, what: str) -> str:
    """The value of the environment variable option `option` names (else `default`), a PEM key's line breaks
    written as `\\n` restored; MappingMissing naming the variable and the option when it is unset."""
    name = options.get(option) or default
    value = os.environ.get(name, "").strip()
    if not value:
        raise MappingMissing(f"environment variable {name} (platforms.{platform}.{option}, {what}) is not set")
    return value.replace("\\n", "\n")


class ProcessTokens:
    """Access sessions ({access_token, optional expires_at, ...}) cached per process by a key: one is made
    again when it is within `early` seconds of its expiry or is the token the vendor has just refused."""

    def __init__(self):
        self._sessions: dict[tuple, dict] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, make: Callable[[], dict], refused: str | None = None, early: float = 0) -> dict:
        with self._lock:
            cached = self._sessions.get(key)
            if cached and cached["access_token"] != refused \
                    and float(cached.get("expires_at") or float("inf")) > time.time() + early:
                return cached
        fresh = make()
        with self._lock:
            self._sessions[key] = fresh
        return fresh

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
