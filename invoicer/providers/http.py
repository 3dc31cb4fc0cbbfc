"""HTTP for every adapter: one pooled session per process, timeouts, and the vendor's answer turned
into a typed error that decides whether the step is retried (see invoicer/errors.py).

Mapping (after ../shared/STYLE.md): connection refused or a connect timeout -> Unavailable (nothing
reached the vendor); a read timeout or a reset after sending -> OutcomeUnknown (look up before
retrying); 429 -> RateLimited with the vendor's Retry-After; 401/403 -> AuthFailed; 408 and 5xx ->
Unavailable; 409 -> Unavailable (a concurrent request with the same key is still running); any
other 4xx -> Rejected, never retried.
"""
from __future__ import annotations

import os
import threading
import time
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Callable

import requests
from requests.adapters import HTTPAdapter

from ..errors import AuthFailed, MappingMissing, OutcomeUnknown, RateLimited, Rejected, Unavailable
from . import jsonmoney

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 30.0
POOL_MAXSIZE = 64  # connections kept per vendor host; a threads-pool worker raises it to its thread count
_session: requests.Session | None = None
_pid = 0
_lock = threading.Lock()


def session() -> requests.Session:
    """The process's pooled session (a fresh one after a fork: sockets are not shared across processes).

    Shared by every thread of a threads-pool worker (urllib3's pools are thread-safe) and by every
    tenant, so it keeps no cookies: one tenant's call must never carry what a vendor set for another."""
    global _session, _pid
    with _lock:
        if _session is None or _pid != os.getpid():
            s = requests.Session()
            s.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            adapter = HTTPAdapter(pool_connections=32, pool_maxsize=POOL_MAXSIZE, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _session, _pid = s, os.getpid()
        return _session


def size_pool(threads: int) -> None:
    """Keep a connection per thread to each vendor host (else urllib3 opens and throws away the extras)."""
    global POOL_MAXSIZE, _session
    with _lock:
        POOL_MAXSIZE = max(POOL_MAXSIZE, threads)
        _session = None


def base_url(slug: str, options: dict, default: str) -> str:
    """Tenant option `base_url`, else INVOICER_<SLUG>_BASE_URL, else the vendor's production URL."""
    return (options.get("base_url") or os.environ.get(f"INVOICER_{slug.upper()}_BASE_URL") or default).rstrip("/")


def env_secret(slug: str, options: dict, option: str, what: str) -> str:
    """The secret in the environment variable a tenant option names: MappingMissing without the
    option, AuthFailed when the variable is empty. Never echoes the value."""
    name = options.get(option)
    if not name:
        raise MappingMissing(f"{slug}: tenant option {option} (the environment variable with {what}) is not set")
    value = os.environ.get(str(name), "").strip()
    if not value:
        raise AuthFailed(f"{slug}: environment variable {name} ({what}) is not set")
    return value


def retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _default_message(resp: requests.Response) -> str:
    return resp.text[:300]


def json_message(text: Callable[[Any, str], str], *, reason: bool = False) -> Callable[[requests.Response], str]:
    """A `message` for call() from a vendor's pure `text(body, fallback)` (its transform's error_text, which
    knows the vendor's field names): the body parsed as JSON with exact decimals, None when it is empty or
    not JSON, and the raw text as the fallback; `reason`: the HTTP reason phrase when that gives nothing."""
    def message(resp: requests.Response) -> str:
        try:
            body = jsonmoney.loads(resp.content) if resp.content else None
        except ValueError:
            body = None
        out = text(body, resp.text)
        return (out or resp.reason or "") if reason else out

    return message


def raise_for(resp: requests.Response, slug: str, message: Callable[[requests.Response], str] = _default_message,
              ) -> requests.Response:
    """The response if it succeeded, else the typed error its status means."""
    status = resp.status_code
    if status < 400:
        return resp
    try:
        text = message(resp)
    except Exception:  # an error body we cannot parse is still an error
        text = resp.text[:300]
    detail = f"{slug} answered {status}: {text}"
    if status == 429:
        raise RateLimited(detail, retry_after=retry_after(resp), status=status)
    if status in (401, 403):
        raise AuthFailed(detail, status=status)
    if status in (408, 409) or status >= 500:
        raise Unavailable(detail, retry_after=retry_after(resp), status=status)
    raise Rejected(detail, status=status)


def call(method: str, url: str, *, slug: str, message: Callable[[requests.Response], str] = _default_message,
         timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs) -> requests.Response:
    """One request; the typed error on failure. Never logs the request (it carries credentials)."""
    try:
        resp = session().request(method, url, timeout=timeout, **kwargs)
    except requests.ConnectTimeout as exc:
        raise Unavailable(f"{slug}: connect timeout") from exc
    except requests.ConnectionError as exc:
        if _before_sending(exc):
            raise Unavailable(f"{slug}: connection refused") from exc
        raise OutcomeUnknown(f"{slug}: connection lost after sending") from exc
    except requests.ReadTimeout as exc:
        raise OutcomeUnknown(f"{slug}: no answer within {timeout[1]} s") from exc
    return raise_for(resp, slug, message)


def _before_sending(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return any(s in text for s in ("NewConnectionError", "Connection refused", "NameResolution", "Max retries"))\
        and "RemoteDisconnected" not in text and "ProtocolError" not in text
