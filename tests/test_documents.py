"""invoicer.documents: the storage layout keeps tenants apart (path traversal refused), and signed links
are refused once tampered with or expired."""
from __future__ import annotations

import hashlib
import os
from datetime import date

import pytest

from invoicer import documents
from invoicer.documents import LocalStorage, StorageError, check_link, key, sign_link

DAY = date(2026, 11, 2)


@pytest.fixture
def store(tmp_path):
    return LocalStorage(tmp_path / "invoices")


def test_layout_is_tenant_year_month_number(store):
    k = key("acme-hvac", DAY, "ACME-001042")
    assert k == "acme-hvac/2026/11/ACME-001042.pdf"
    sha = store.put("acme-hvac", k, b"%PDF-1.4 one")
    assert sha == hashlib.sha256(b"%PDF-1.4 one").hexdigest()
    assert (store.root / "acme-hvac" / "2026" / "11" / "ACME-001042.pdf").read_bytes() == b"%PDF-1.4 one"
    assert store.get("acme-hvac", k) == b"%PDF-1.4 one"
    store.put("acme-hvac", k, b"%PDF-1.4 two")  # a retry replaces it atomically, no temporary file left
    assert store.get("acme-hvac", k) == b"%PDF-1.4 two"
    assert [p.name for p in (store.root / "acme-hvac" / "2026" / "11").iterdir()] == ["ACME-001042.pdf"]


@pytest.mark.parametrize("tenant,number", [
    ("../polar-air", "PA-1"), ("acme/../polar-air", "PA-1"), ("", "PA-1"), ("Acme", "PA-1"), ("/etc", "passwd"),
    ("acme", "../polar-air/2026/11/PA-1"), ("acme", ".."), ("acme", "..PA"), ("acme", "a/b"), ("acme", "a\\b"),
    ("acme", ".hidden"), ("acme", "x" * 65), ("acme", "PA-1\x00"), ("acme", "PA 1"),
])
def test_no_tenant_or_number_makes_a_path_outside_the_tenant(tenant, number):
    with pytest.raises(StorageError):
        key(tenant, DAY, number)


@pytest.mark.parametrize("stored", [
    "polar-air/2026/11/PA-1.pdf",  # another tenant's document
    "acme/../polar-air/2026/11/PA-1.pdf", "acme/2026/11/../../../polar-air/2026/11/PA-1.pdf",
    "/abs/acme/2026/11/A.pdf", "acme/2026/11/A.txt", "acme/2026/13/A.pdf", "acme/26/11/A.pdf",
    "acme/2026/11/..pdf", "acme/2026/11/sub/A.pdf", "acme//2026/11/A.pdf",
])
def test_a_stored_key_is_only_read_for_its_own_tenant(store, stored):
    store.put("polar-air", key("polar-air", DAY, "PA-1"), b"%PDF polar")
    with pytest.raises(StorageError):
        store.get("acme", stored)
    with pytest.raises(StorageError):
        store.put("acme", stored, b"x")
    assert store.get("polar-air", "polar-air/2026/11/PA-1.pdf") == b"%PDF polar"


def test_a_symlink_out_of_the_tenants_folder_is_refused(store):
    store.put("polar-air", key("polar-air", DAY, "PA-1"), b"%PDF polar")
    (store.root / "acme" / "2026").mkdir(parents=True)
    os.symlink(store.root / "polar-air" / "2026" / "11", store.root / "acme" / "2026" / "11")
    with pytest.raises(StorageError):
        store.get("acme", "acme/2026/11/PA-1.pdf")
    with pytest.raises(StorageError):
        store.put("acme", "acme/2026/11/PA-1.pdf", b"overwrite")
    assert store.get("polar-air", "polar-air/2026/11/PA-1.pdf") == b"%PDF polar"


def test_storage_comes_from_the_settings(tmp_path):
    from invoicer.config import Settings

    assert documents.storage(Settings(var_dir=tmp_path)).root == tmp_path / "invoices"
    assert documents.storage(Settings(var_dir=tmp_path, pdf_dir=tmp_path / "pdfs")).root == tmp_path / "pdfs"
    assert Settings().pdf_link_ttl == 30 * 86400


def parts(url: str) -> tuple[int, str, str]:
    path, query = url.split("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    return int(path.rsplit("/", 1)[1].removesuffix(".pdf")), params["expires"], params["signature"]


def test_a_signed_link_opens_until_it_expires():
    now = 1_800_000_000
    url = sign_link("https://inv.example.com/", "k1", 42, ttl=30 * 86400, now=now)
    assert url.startswith("https://inv.example.com/v1/invoices/42.pdf?expires=1802592000&signature=")
    iid, expires, sig = parts(url)
    assert check_link("k1", iid, expires, sig, now=now)
    assert check_link("k1", iid, expires, sig, now=now + 30 * 86400)
    assert not check_link("k1", iid, expires, sig, now=now + 30 * 86400 + 1)


def test_a_tampered_link_is_refused():
    now = 1_800_000_000
    iid, expires, sig = parts(sign_link("https://x", "k1", 42, ttl=86400, now=now))
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    for args in [(43, expires, sig), (iid, str(int(expires) + 86400), sig), (iid, expires, flipped),
                 (iid, expires, sig[:-1]), (iid, expires, ""), (iid, None, sig), (iid, "", sig),
                 (iid, "-1", sig), (iid, "1e9", sig), (iid, "²", sig), (iid, "9" * 40, sig), (iid, expires, "é" + sig)]:
        assert not check_link("k1", *args, now=now), args
    assert not check_link("another-key", iid, expires, sig, now=now)
    assert not check_link("", iid, expires, sig, now=now)
