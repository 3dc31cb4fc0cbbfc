"""Where invoice PDFs are kept (a small storage interface, a local directory by default) and the
signed, expiring links customers open them with.

Layout: <tenant>/<yyyy>/<mm>/<number>.pdf under the storage root. Every read and write names the
tenant it acts for; the key must sit in that tenant's folder, match a strict pattern and resolve
inside it, so no tenant slug, invoice number or stored key can reach another tenant's files.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from datetime import date
from pathlib import Path
from typing import Protocol

_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY = re.compile(r"^(?P<tenant>[^/]+)/(?P<year>\d{4})/(?P<month>\d{2})/(?P<name>[^/]+)\.pdf$")


class StorageError(ValueError):
    """A key that is not one of this tenant's documents."""


def key(tenant: str, issued: date, number: str) -> str:
    """The storage key of an invoice's PDF: tenant/yyyy/mm/number.pdf."""
    if not _TENANT.match(tenant) or not _NAME.match(number) or ".." in number:
        raise StorageError("tenant and invoice number must be plain names")
    return f"{tenant}/{issued:%Y}/{issued:%m}/{number}.pdf"


def check_key(tenant: str, stored: str) -> str:
    """The key if it is one of this tenant's documents; StorageError otherwise."""
    m = _KEY.match(stored)
    if not m or m["tenant"] != tenant or not _TENANT.match(tenant) or not _NAME.match(m["name"]) \
            or ".." in m["name"] or not 1 <= int(m["month"]) <= 12:
        raise StorageError("not a document of this tenant")
    return stored


class Storage(Protocol):
    def put(self, tenant: str, key: str, data: bytes) -> str:
        """Store the bytes under key (atomically, replacing); their SHA-256 in hex."""

    def get(self, tenant: str, key: str) -> bytes:
        """The stored bytes; FileNotFoundError when there are none."""


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LocalStorage:
    """A directory on a local (or mounted) disk."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, tenant: str, stored: str) -> Path:
        check_key(tenant, stored)
        home = (self.root / tenant).resolve()
        path = (self.root / stored).resolve()  # follows symlinks: a link out of the tenant's folder is refused
        if not path.is_relative_to(home):
            raise StorageError("not a document of this tenant")
        return path

    def put(self, tenant: str, key: str, data: bytes) -> str:
        write_atomic(self._path(tenant, key), data)
        return hashlib.sha256(data).hexdigest()

    def get(self, tenant: str, key: str) -> bytes:
        return self._path(tenant, key).read_bytes()


def storage(settings=None) -> Storage:
    """The configured storage (INVOICER_PDF_DIR, default <INVOICER_VAR_DIR>/invoices)."""
    if settings is None:
        from .config import settings as current

        settings = current()
    return LocalStorage(settings.pdf_dir or settings.var_dir / "invoices")


# ---------------------------------------------------------------- signed links

def _mac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _message(invoice_id: int, expires: int) -> str:
    return f"invoice-pdf.v1.{invoice_id}.{expires}"  # the purpose is signed too: no other signature fits


def sign_link(base_url: str, secret: str, invoice_id: int, ttl: int, now: float | None = None) -> str:
    """GET /v1/invoices/{id}.pdf?expires=...&signature=..., valid for ttl seconds."""
    expires = int((time.time() if now is None else now) + ttl)
    sig = _mac(secret, _message(invoice_id, expires))
    return f"{base_url.rstrip('/')}/v1/invoices/{invoice_id}.pdf?expires={expires}&signature={sig}"


def check_link(secret: str, invoice_id: int, expires: str | None, signature: str | None,
               now: float | None = None) -> bool:
    """True only for an unexpired link this secret signed for this invoice (parameters as received)."""
    if not (secret and expires and signature and expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_mac(secret, _message(invoice_id, int(expires))).encode(), signature.encode())
