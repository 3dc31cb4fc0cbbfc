"""Realistic HVAC job events in event contract v1, for demos, tests and load.

Deterministic for a seed; self-contained (carries its own word lists, reads nothing at run time).
"""
from __future__ import annotations

import copy
import json
import random
import unicodedata
from datetime import datetime, timedelta, timezone
from decimal import Decimal

DEFAULT_START = datetime(2026, 11, 2, 13, 0, 0, tzinfo=timezone.utc)
SOURCES = ("mobile-app", "portal", "servicetitan", "jobber", "fieldedge", "custom")

# country, currency, tax jurisdiction, tax rate, labour taxable, phone prefix, [(city, region)]
REGIONS = [
    ("US", "USD", "TX", "0.0825", True, "+1512555", [("Austin", "TX"), ("Houston", "TX")]),
    ("US", "USD", "FL", "0.06", False, "+1407555", [("Orlando", "FL"), ("Tampa", "FL")]),
    ("US", "USD", "OR", "0.0", False, "+1503555", [("Portland", "OR"), ("Salem", "OR")]),
    ("CA", "CAD", "ON-HST", "0.13", True, "+1416555", [("Toronto", "ON"), ("Ottawa", "ON")]),
    ("GB", "GBP", "GB-VAT", "0.20", True, "+44207946", [("London", ""), ("Leeds", "")]),
    ("AU", "AUD", "AU-GST", "0.10", True, "+6125550", [("Sydney", "NSW"), ("Newcastle", "NSW")]),
    ("DE", "EUR", "DE-MWST", "0.19", True, "+49305555", [("Berlin", "BE"), ("Potsdam", "BB")]),
    ("NL", "EUR", "NL-BTW", "0.21", True, "+31205553", [("Amsterdam", ""), ("Utrecht", "")]),
]
RARE_REGIONS = [  # exercise 0- and 3-decimal currencies
    ("JP", "JPY", "JP-CT", "0.10", True, "+8135550", [("Tokyo", "13"), ("Yokohama", "14")]),
    ("KW", "KWD", "KW", "0.0", False, "+9652555", [("Kuwait City", ""), ("Hawalli", "")]),
]
FX = {"USD": "1", "CAD": "1.35", "GBP": "0.8", "AUD": "1.5", "EUR": "0.92", "JPY": "150", "KWD": "0.31"}
DECIMALS = {"JPY": 0, "KWD": 3}

NAMES = {  # locale: (given names, family names)
    "pl": (["Małgorzata", "Łukasz", "Zofia", "Grzegorz", "Agnieszka"], ["Wójcik", "Kowalczyk", "Zieliński", "Woźniak"]),
    "vi": (["Hương", "Minh", "Thảo", "Đức", "Lan"], ["Nguyễn", "Trần", "Phạm", "Lê", "Đặng"]),
    "de": (["Jürgen", "Käthe", "Günther", "Lena", "Björn"], ["Müller", "Schröder", "Weiß", "Köhler", "Groß"]),
    "es": (["Inés", "José", "Begoña", "Íñigo", "María"], ["Muñoz", "Peña", "Ibáñez", "García", "Núñez"]),
    "en": (["Sarah", "Mike", "Priya", "Tom", "Grace"], ["Johnson", "Okafor", "Patel", "O'Brien", "Walsh"]),
}
STREETS = ["Oak St", "Elm St", "Maple Ave", "Lakeview Dr", "High Street", "Bahnhofstraße", "ul. Długa"]

LABOUR = ["Diagnostic", "Repair labour", "Maintenance tune-up", "Duct sealing", "Install labour"]
RATES = ["85", "95", "110", "125", "140"]
PARTS = {  # sku: (description, unit price, sold by the pound)
    "R410A-LB": ("R-410A refrigerant (per lb)", "89.00", True),
    "R454B-LB": ("R-454B refrigerant (per lb)", "95.00", True),
    "CAP-455": ("Dual run capacitor 45/5 uF 440V", "38.00", False),
    "IGN-HSI": ("Hot surface igniter", "64.25", False),
    "FLT-16252": ("Pleated filter 16x25x2", "18.50", False),
    "CONT-40A": ("Contactor 40A 2-pole", "42.00", False),
    "FLM-SNS": ("Flame sensor", "24.75", False),
    "TXV-3T": ("Thermal expansion valve 3 ton", "189.00", False),
    "TSTAT-PRG": ("Programmable thermostat", "149.00", False),
}
SCENARIOS = [  # summary, candidate parts
    ("No heat call: replaced igniter, verified flame sensor.", ["IGN-HSI", "FLM-SNS"]),
    ("Recharged refrigerant after repairing flare leak at service valve.", ["R410A-LB", "R454B-LB"]),
    ("AC not cooling: replaced failed run capacitor and contactor.", ["CAP-455", "CONT-40A"]),
    ("Annual maintenance: cleaned coils, replaced filter, checked charge.", ["FLT-16252", "R410A-LB"]),
    ("Replaced TXV and recharged system.", ["TXV-3T", "R454B-LB"]),
    ("Installed new programmable thermostat and tested all stages.", ["TSTAT-PRG"]),
    ("Sealed leaking supply ducts in attic.", []),
]


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(usd: str, currency: str) -> str:
    places = DECIMALS.get(currency, 2)
    value = (Decimal(usd) * Decimal(FX[currency])).quantize(Decimal(1).scaleb(-places))
    return str(value)


def _name(rng: random.Random) -> str:
    locale = rng.choice(sorted(NAMES))
    given, family = rng.choice(NAMES[locale][0]), rng.choice(NAMES[locale][1])
    return f"{family} {given}" if locale == "vi" else f"{given} {family}"


def _slug(name: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", name.replace("Đ", "D").replace("đ", "d").replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in ascii_.encode("ascii", "ignore").decode().lower() if c.isalnum() or c == " ").replace(" ", ".")


def _address(rng: random.Random, region) -> dict:
    city, state = rng.choice(region[6])
    return {"line1": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}", "city": city, "region": state,
            "postal_code": f"{rng.randint(10000, 99999)}", "country": region[0]}


def _new_job(rng: random.Random, n: int, seed: int, tech: dict, completed_at: datetime) -> tuple[dict, dict]:
    region = rng.choice(RARE_REGIONS) if rng.random() < 0.04 else rng.choice(REGIONS)
    cur, summary_parts = region[1], rng.choice(SCENARIOS)
    rate = rng.choice(RATES)
    labor = [{"description": desc, "hours": str(Decimal(rng.randint(2, 16)) / 4), "rate": _money(rate, cur),
              "taxable": region[4]} for desc in rng.sample(LABOUR, rng.choice((1, 1, 2)))]
    materials = []
    for sku in summary_parts[1]:
        desc, price, by_lb = PARTS[sku]
        qty = str(Decimal(rng.randint(2, 12)) / 2) if by_lb else str(rng.choice((1, 1, 1, 2)))
        materials.append({"sku": sku, "description": desc, "quantity": qty, "unit_price": _money(price, cur), "taxable": True})
    fees = []
    if rng.random() < 0.6:
        fees.append({"description": "Trip charge", "amount": _money(rng.choice(("49", "59", "79")), cur), "taxable": False})
    if any(m["sku"].endswith("-LB") for m in materials):
        fees.append({"description": "Refrigerant recovery & disposal fee", "amount": _money("35", cur), "taxable": False})
        fees.append({"description": "EPA compliance fee", "amount": _money("12.50", cur), "taxable": False})
    discounts = []
    r = rng.random()
    if r < 0.12:
        discounts.append({"description": rng.choice(("Maintenance plan member", "Senior discount")),
                          "percent": rng.choice(("5", "10", "12.5", "15"))})
    elif r < 0.2:
        discounts.append({"description": "Goodwill credit", "amount": _money("25", cur)})
    name = _name(rng)
    company = rng.random() < 0.25
    customer = {
        "id": f"C-{rng.randint(1000, 9999)}",
        "name": f"{rng.choice(NAMES[rng.choice(sorted(NAMES))][1])} Property Management" if company else name,
        "email": None if rng.random() < 0.1 else f"{_slug(name) or 'customer'}.{n}@example.com",
        "phone": None if rng.random() < 0.15 else f"{region[5]}{rng.randint(0, 9999):04d}",
        "billing_address": _address(rng, region) if rng.random() < 0.25 else None,
        "external_ids": {"servicetitan": f"st_{rng.randint(100000, 999999)}"} if rng.random() < 0.1 else {},
    }
    job = {"id": f"J-{seed}-{n:05d}", "number": str(20000 + n), "completed_at": _ts(completed_at), "technician": tech,
           "summary": summary_parts[0], "service_address": _address(rng, region), "labor": labor,
           "materials": materials, "fees": fees, "discounts": discounts,
           "tax": {"rate": region[3], "jurisdiction": region[2]}, "currency": cur,
           "payment_terms_days": rng.choice((0, 15, 30, 30, 45))}
    if rng.random() < 0.3:
        job["po_number"] = f"PO-{rng.randint(10000, 99999)}"
    return job, customer


def _update(rng: random.Random, job: dict) -> dict:
    job = copy.deepcopy(job)
    if job["materials"]:
        line = rng.choice(job["materials"])
        line["quantity"] = str(Decimal(line["quantity"]) + (Decimal("0.5") if line["sku"].endswith("-LB") else 1))
    else:
        job["labor"][0]["hours"] = str(Decimal(job["labor"][0]["hours"]) + Decimal("0.25"))
    return job


def generate(count: int = 300, seed: int = 7, start: datetime | None = None,
             tenants=("acme-hvac", "polar-air", "northwind-heating")) -> list[dict]:
    """`count` events of contract v1 in time order, the same for the same arguments."""
    rng = random.Random(seed)
    now = (start or DEFAULT_START)
    now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    techs = {t: [{"id": f"T-{k}", "name": _name(rng)} for k in range(1, 5)] for t in tenants}
    jobs: dict[str, tuple[str, dict, dict]] = {}  # job id -> (tenant, latest job payload, customer)
    to_sign: list[str] = []
    events: list[dict] = []
    for i in range(count):
        now += timedelta(seconds=rng.randint(30, 900))
        r = rng.random()
        if jobs and r < 0.06:
            kind, job_id = "job.updated", rng.choice(sorted(jobs))
            tenant, job, customer = jobs[job_id]
            job = _update(rng, job)
        elif to_sign and r < 0.28:
            kind, job_id = "job.signed", to_sign.pop(0)
            tenant, job, customer = jobs[job_id]
            job = dict(job, signature={"signed_by": customer["name"] if rng.random() < 0.7 else _name(rng),
                                       "signed_at": _ts(now)})
        else:
            tenant = rng.choice(tenants)
            completed_at = (now - timedelta(minutes=rng.randint(0, 90))).replace(second=0)
            job, customer = _new_job(rng, len(jobs), seed, rng.choice(techs[tenant]), completed_at)
            if rng.random() < 0.7:
                kind = "job.completed"
                if rng.random() < 1 / 3:
                    to_sign.append(job["id"])
            else:
                kind = "job.signed"
                job["signature"] = {"signed_by": customer["name"], "signed_at": _ts(now)}
        jobs[job["id"]] = (tenant, job, customer)
        events.append(copy.deepcopy({"type": kind, "id": f"evt_{seed}_{i:06d}", "source": rng.choice(SOURCES),
                                     "occurred_at": _ts(now), "tenant": tenant, "job": job, "customer": customer}))
    return events


def write_jsonl(events, path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False) + "\n")
