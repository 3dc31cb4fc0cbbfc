"""PDF storage (a local directory by default) and signed links to stored documents.

Layout: <var>/invoices/<tenant>/<yyyy>/<mm>/<number>.pdf. Tenant slugs and invoice numbers are
checked against a strict pattern, so no path can reach another tenant's folder.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from pathlib import Path

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class LocalStorage:
    def __init__(self, root: Path):
        self.root = Path(root)

    def relpath(self, tenant: str, issued, number: str) -> str:
        if not (_SAFE.match(tenant) and _SAFE.match(number)):
            raise ValueError("tenant and invoice number must be plain names")
        return f"{tenant}/{issued:%Y}/{issued:%m}/{number}.pdf"

    def put(self, relpath: str, data: bytes) -> str:
        write_atomic(self.root / relpath, data)
        return hashlib.sha256(data).hexdigest()

    def get(self, relpath: str) -> bytes:
        return (self.root / relpath).read_bytes()


def _mac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_link(base_url: str, secret: str, delivery_id: int, ttl: int = 7 * 86400, now: float | None = None) -> str:
    expires = int((now or time.time()) + ttl)
    sig = _mac(secret, f"{delivery_id}.{expires}")
    return f"{base_url.rstrip('/')}/v1/documents/{delivery_id}?expires={expires}&sig={sig}"


def check_link(secret: str, delivery_id: int, expires: int, sig: str, now: float | None = None) -> bool:
    if expires < (now or time.time()):
        return False
    return hmac.compare_digest(_mac(secret, f"{delivery_id}.{expires}"), sig)
