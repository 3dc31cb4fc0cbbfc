"""Branding and layout options in the tenants file: checked at load with the key named; the preview command."""
from __future__ import annotations

import io
import json

import pytest

from invoicer.config import ConfigError, load_tenants

from .conftest import shared_events
from .test_cli import run_cli

BASE = ("tenants:\n  acme:\n    name: Acme\n    platforms: {{books: {{provider: local}}}}\n"
        "    sources: {{'*': {{unsigned: true}}}}\n{extra}")


def load(tmp_path, extra: str):
    path = tmp_path / "tenants.yaml"
    path.write_text(BASE.format(extra=extra), encoding="utf-8")
    return load_tenants(str(path))


def test_a_full_branding_block_loads_and_the_logo_is_found_beside_the_tenants_file(tmp_path):
    from PIL import Image

    Image.new("RGB", (60, 20), (200, 0, 0)).save(tmp_path / "logo.png")
    tenant = load(tmp_path, "    numbering: {prefix: 'AC-2026.'}\n    branding:\n      color: '#C0392B'\n"
                            "      logo: logo.png\n      footer: 'Questions? Quote {number}.'\n"
                            "      notes: 'Pay {amount_due} by {due}.'\n      timezone: America/New_York\n"
                            "      page_size: A4\n      labels: {title: FAKTURA, tax: 'VAT {rate}'}\n"
                            "      show: {qr_code: false, sku: false}\n")["acme"]
    b = tenant.branding
    assert b.logo == str((tmp_path / "logo.png").resolve()) and b.label("title") == "FAKTURA"
    assert b.show.qr_code is False and b.show.pay_link is True and b.label("total") == "Total"


@pytest.mark.parametrize("extra,names", [
    ("    branding: {color: red}\n", ["tenants.acme.branding.color"]),
    ("    branding: {colour: '#000000'}\n", ["tenants.acme.branding.colour"]),
    ("    branding: {footer: 'Due {due_date}'}\n", ["tenants.acme.branding.footer", "{due_date}", "{due}"]),
    ("    branding: {notes: 'Total {total.__class__}'}\n", ["tenants.acme.branding.notes", "total.__class__"]),
    ("    branding: {notes: 'Total {total:>10}'}\n", ["tenants.acme.branding.notes"]),
    ("    branding: {notes: 'Total {'}\n", ["tenants.acme.branding.notes", "not a valid template"]),
    ("    branding: {labels: {titel: X}}\n", ["tenants.acme.branding.labels", "unknown label 'titel'"]),
    ("    branding: {labels: {tax: 'VAT {percent}'}}\n", ["tenants.acme.branding.labels", "{percent}", "{rate}"]),
    ("    branding: {show: {qr: false}}\n", ["tenants.acme.branding.show.qr"]),
    ("    branding: {timezone: Mars/Olympus}\n", ["tenants.acme.branding.timezone", "IANA"]),
    ("    branding: {page_size: A5}\n", ["tenants.acme.branding.page_size"]),
    ("    branding: {logo: missing.png}\n", ["tenants.acme.branding.logo", "missing.png"]),
    ("    branding: {logo: tenants.yaml}\n", ["tenants.acme.branding.logo", "cannot read"]),
    ("    numbering: {prefix: 'ACME/'}\n", ["tenants.acme.numbering.prefix"]),
    ("    numbering: {prefix: '../'}\n", ["tenants.acme.numbering.prefix"]),
])
def test_bad_branding_fails_at_load_naming_the_key(tmp_path, extra, names):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, extra)
    for name in names:
        assert name in str(err.value), (name, str(err.value))


def test_a_gif_logo_is_refused(tmp_path):
    from PIL import Image

    Image.new("RGB", (10, 10)).save(tmp_path / "logo.gif")
    with pytest.raises(ConfigError, match=r"tenants\.acme\.branding\.logo: .*logo.gif is GIF, not PNG or JPEG"):
        load(tmp_path, "    branding: {logo: logo.gif}\n")


def test_pdf_preview_command(tmp_path):
    import pypdf

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in shared_events()[:5]) + "\n", encoding="utf-8")
    wanted = shared_events()[3]
    out = tmp_path / "out.pdf"
    r = run_cli("pdf", "preview", str(events), "--tenant", "polar-air", "-o", str(out), "--event", wanted["id"],
                "--pay-url", "https://pay.example.com/p/1", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "PA-00001" in r.stdout
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(out.read_bytes())).pages)
    assert "Polar Air Klimatechnik" in text and "PA-00001" in text and wanted["customer"]["name"] in text
    assert "FACTUUR" in text and "Online betalen: https://pay.example.com/p/1" in text  # its Dutch labels
    again = tmp_path / "again.pdf"
    r = run_cli("pdf", "preview", str(events), "--tenant", "polar-air", "-o", str(again), "--event", wanted["id"],
                "--pay-url", "https://pay.example.com/p/1", timeout=120)
    assert again.read_bytes() == out.read_bytes()  # same event, same tenant: the same bytes
    r = run_cli("pdf", "preview", str(events), "--tenant", "nobody", "-o", str(out))
    assert r.returncode == 2 and "no tenant 'nobody'" in r.stderr
    r = run_cli("pdf", "preview", str(events), "--tenant", "polar-air", "-o", str(out), "--event", "nope")
    assert r.returncode == 2 and "no event with id 'nope'" in r.stderr
