"""A small, faithful stand-in for the parts of Xero invoicer uses (tests and `invoicer sandbox` only).

Endpoints (same paths as Xero): POST /connect/token (identity.xero.com), PUT/GET /api.xro/2.0/Invoices,
GET /api.xro/2.0/Invoices/{InvoiceID}, POST /api.xro/2.0/Invoices/{InvoiceID}/Email,
GET/PUT /api.xro/2.0/Contacts.

What it reproduces, and from where:
- OAuth 2: 30-minute access tokens; refresh tokens ROTATE -- every refresh returns a new pair. Xero keeps
  the previous refresh token usable for a 30-minute grace period (Xero staff, developer community), after
  which it answers 400 {"error": "invalid_grant"}; `refresh_grace` sets it (0 = invalid at once). An
  expired or unknown bearer token gets Xero's 401 problem body ("TokenExpired: token expired at ...").
- Every API call needs `xero-tenant-id` (an organisation the token may use) -- else 403.
- Limits per organisation (developer.xero.com/documentation/guides/oauth2/limits): 60 calls in any
  rolling 60 s, 5,000 a day, 5 in flight. A breach answers 429 with `X-Rate-Limit-Problem: minute|day|
  concurrent` and, for minute and day, `Retry-After` in seconds; every answer carries
  `X-DayLimit-Remaining`, `X-MinLimit-Remaining`, `X-AppMinLimit-Remaining`. Unconfirmed: the exact
  header values' case, whether a concurrent breach sends Retry-After (here: no), the 429 body (here: empty).
- `Idempotency-Key` (<= 128 chars) on PUT/POST: the same key with the same request replays the FIRST
  answer (errors included) for 6 minutes; the same key with a different request answers 400. The
  6-minute window and the error's wording come from third-party notes, not from Xero's own page.
- Invoices: amounts to 2 decimals (UnitAmount to 2, or 4 with `unitdp=4`, silently rounded), line amount
  = Quantity x UnitAmount less DiscountAmount (or DiscountRate %), tax per line from the TaxType's rate
  unless the line carries TaxAmount (an override Xero allows), Total = SubTotal + TotalTax. Xero's
  rounding mode is not documented: this simulator rounds half-even, the less forgiving choice for a
  client that rounds half-up. Unlike Xero (where it is unconfirmed), a LineAmount that disagrees with
  Quantity x UnitAmount - discount is refused rather than recomputed. AUTHORISED ACCREC invoices may not
  reuse an InvoiceNumber ("Invoice # must be unique."); account codes and tax types must exist in the
  organisation; unknown contacts are refused.
- Contacts: names unique among active contacts ("The contact name ... is already assigned to another
  contact. ..."), `where` filters of equality terms joined by AND/OR (case-insensitive, as Xero's are).
- Emailing: only AUTHORISED invoices whose contact has an email; marks SentToContact.
- Request bodies are validated against Xero's official OpenAPI spec
  (../shared/vendor-specs/xero/xero_accounting.yaml, schemas Invoices, Contacts, RequestEmpty; readOnly
  properties refused) ONLY when that file exists -- the product runs without the shared folder, and then
  there is no schema validation. `INVOICER_XERO_SPEC` points at another copy; `spec=False` turns it off.

It stores what it received (`orgs[tenant].invoices`, `.contacts`, `.emails`) so tests assert on Xero's side.
"""
from __future__ import annotations

import base64
import math
import os
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..simulate import Reply, Request, Simulator
from .transform import dumps, loads

API = r"/api\.xro/2\.0"
ACCESS_TTL = 30 * 60
REFRESH_GRACE = 30 * 60
IDEMPOTENCY_TTL = 6 * 60
KEY_MAX = 128
APP_MINUTE_LIMIT = 10_000
DEFAULT_SPEC = Path(__file__).resolve().parents[4] / "shared" / "vendor-specs" / "xero" / "xero_accounting.yaml"


# ---------------------------------------------------------------- the OpenAPI spec, when it is here

def spec_path() -> Path | None:
    path = Path(os.environ.get("INVOICER_XERO_SPEC") or DEFAULT_SPEC)
    return path if path.exists() else None


@lru_cache(maxsize=4)
def _components(path: str) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)["components"]


@lru_cache(maxsize=16)
def spec_validator(schema: str, path: str | None = None):
    """A validator of request bodies (OpenAPI 3.0 write rules) for one schema of Xero's spec, or None
    when the spec file (or openapi-schema-validator) is not here. Decimal counts as a `double`."""
    path = path or (str(spec_path()) if spec_path() else None)
    if not path or not Path(path).exists():
        return None
    try:  # test extras; a production install may lack them, and then there is no validation either
        from jsonschema import FormatChecker
        from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker
    except ImportError:
        return None

    checker = FormatChecker()
    checker.checkers.update(oas30_format_checker.checkers)
    numeric = (lambda v: True, ())
    checker.checkers["double"] = numeric
    checker.checkers["float"] = numeric
    return OAS30WriteValidator({"$ref": f"#/components/schemas/{schema}", "components": _components(path)},
                               format_checker=checker)


def schema_errors(validator, body: Any) -> list[str]:
    if validator is None:
        return []
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"[:300]
            for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]


# ---------------------------------------------------------------- Xero's arithmetic

def _round(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def compute_invoice(inv: dict, tax_rates: dict[str, Decimal], *, unitdp: int = 2,
                    honour_tax_amount: bool = True, accounts: set[str] | None = None) -> tuple[dict, list[str]]:
    """Xero's figures for one invoice as sent: (lines and totals, validation messages)."""
    errors: list[str] = []
    lines = []
    inclusive = inv.get("LineAmountTypes", "Exclusive") == "Inclusive"
    for li in inv.get("LineItems") or []:
        qty, unit, given = _dec(li.get("Quantity")), _dec(li.get("UnitAmount")), _dec(li.get("LineAmount"))
        rate_off, amount_off = _dec(li.get("DiscountRate")), _dec(li.get("DiscountAmount"))
        if not (li.get("Description") or "").strip() and not li.get("ItemCode"):
            errors.append("Description needs to be at least 1 char long")
        if unit is not None:
            unit = _round(unit, unitdp)
        if qty is not None:
            qty = _round(qty, 4)
        if qty is not None and unit is not None:
            gross = qty * unit
            if rate_off:
                line_amount = _round(gross * (100 - rate_off) / 100)
            elif amount_off:
                line_amount = _round(gross) - _round(amount_off)
            else:
                line_amount = _round(gross)
            if given is not None and _round(given) != line_amount:
                errors.append(f"The line amount {given} does not equal quantity x unit amount less discount "
                              f"({line_amount}).")
        elif given is not None:
            line_amount = _round(given)
        else:
            line_amount = Decimal("0.00")
        tax_type = li.get("TaxType")
        rate = tax_rates.get(tax_type) if tax_type else Decimal(0)
        if tax_type and rate is None:
            errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of "
                          f"transaction.")
            rate = Decimal(0)
        code = li.get("AccountCode")
        if accounts is not None and inv.get("Status") == "AUTHORISED" and not code:
            errors.append("Account code must be specified")
        elif accounts is not None and code and str(code) not in accounts:
            errors.append(f"Account code '{code}' is not a valid code for this document.")
        override = _dec(li.get("TaxAmount"))
        if honour_tax_amount and override is not None:
            tax = _round(override)
            if rate == 0 and tax != 0:
                errors.append(f"The tax amount {tax} cannot be applied with the TaxType '{tax_type}' (rate 0).")
        elif inclusive:
            tax = _round(line_amount * rate / (1 + rate))
        else:
            tax = _round(line_amount * rate)
        discount = (_round(qty * unit) - line_amount) if qty is not None and unit is not None else Decimal("0.00")
        lines.append({**li, "LineItemID": li.get("LineItemID") or str(uuid.uuid4()),
                      **({"Quantity": qty} if qty is not None else {}),
                      **({"UnitAmount": unit} if unit is not None else {}),
                      "LineAmount": line_amount, "TaxAmount": tax, "_discount": discount})
    sub = sum((li["LineAmount"] for li in lines), Decimal("0.00"))
    tax = sum((li["TaxAmount"] for li in lines), Decimal("0.00"))
    discount = sum((li.pop("_discount") for li in lines), Decimal("0.00"))
    if inclusive:
        sub -= tax
    total = sub + tax
    return {"LineItems": lines, "SubTotal": sub, "TotalTax": tax, "Total": total,
            "TotalDiscount": discount}, errors


# ---------------------------------------------------------------- where filters

_TERM = re.compile(r'\s*([A-Za-z][A-Za-z0-9.]*)\s*(==|=|!=)\s*"((?:[^"\\]|\\.)*)"\s*')
_JOIN = re.compile(r'\s*(AND|OR|&&|\|\|)\s*', re.IGNORECASE)


def parse_where(text: str) -> list[list[tuple[str, str, str]]]:
    """`A=="x" AND B=="y" OR C=="z"` -> [[A, B], [C]] (OR of ANDs). ValueError for anything else."""
    groups: list[list[tuple[str, str, str]]] = [[]]
    pos = 0
    while True:
        m = _TERM.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse where clause at {text[pos:pos + 30]!r}")
        groups[-1].append((m.group(1), m.group(2), re.sub(r"\\(.)", r"\1", m.group(3))))
        pos = m.end()
        if pos >= len(text):
            return groups
        j = _JOIN.match(text, pos)
        if not j:
            raise ValueError(f"cannot parse where clause at {text[pos:pos + 30]!r}")
        if j.group(1).upper() in ("OR", "||"):
            groups.append([])
        pos = j.end()


def _get(obj: dict, dotted: str):
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def matches(obj: dict, groups) -> bool:
    def term(name, op, value):
        have = str(_get(obj, name) or "").casefold() == value.casefold()
        return not have if op == "!=" else have
    return any(all(term(*t) for t in group) for group in groups)


# ---------------------------------------------------------------- state

@dataclass
class Limits:
    minute: int = 60
    day: int = 5000
    concurrent: int = 5


@dataclass
class Org:
    tenant_id: str
    accounts: set[str]
    tax_rates: dict[str, Decimal]
    contacts: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    idempotency: dict[str, tuple[tuple, float, Reply]] = field(default_factory=dict)
    minute: deque = field(default_factory=deque)
    day_start: float | None = None
    day_count: int = 0
    in_flight: int = 0
    next_number: int = 1
    creates: int = 0  # PUT /Invoices requests that stored something


def _ms_date(d: date) -> str:
    dt = datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
    return f"/Date({int(dt.timestamp() * 1000)}+0000)/"


def _json(status: int, body: Any, headers: dict | None = None) -> Reply:
    return Reply(status, dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def _validation(elements: list[dict]) -> Reply:
    return _json(400, {"ErrorNumber": 10, "Type": "ValidationException",
                       "Message": "A validation exception occurred", "Elements": elements})


def _invalid(*messages: str, echo: dict | None = None) -> Reply:
    return _validation([{**(echo or {}), "ValidationErrors": [{"Message": m} for m in messages]}])


class XeroSimulator(Simulator):
    """Xero for tests. `tenants` are organisation ids (any strings; Xero's are UUIDs)."""

    def __init__(self, tenants: tuple[str, ...] = ("00000000-0000-4000-8000-00000000a001",), *,
                 client_id: str = "sim-client", client_secret: str = "sim-secret",
                 accounts: set[str] | None = None, tax_rates: dict[str, Decimal] | None = None,
                 spec: str | Path | bool | None = None, refresh_grace: float = REFRESH_GRACE):
        super().__init__()
        self.state = threading.RLock()
        self.client_id, self.client_secret = client_id, client_secret
        self._setup = (tuple(tenants), set(accounts if accounts is not None else {"200", "260", "270"}),
                       dict(tax_rates if tax_rates is not None
                            else {"OUTPUT": Decimal("0.0825"), "NONE": Decimal(0)}), refresh_grace)
        if spec is False:
            self.spec = None
        else:
            found = Path(spec) if spec not in (None, True) else spec_path()
            self.spec = str(found) if found and found.exists() else None
        self.reset()

    def reset(self) -> None:
        """Back to a new simulator (no tokens, invoices, contacts, requests or faults), same settings."""
        tenants, accounts, rates, grace = self._setup
        with self.state, self.lock:
            self.forget()
            self.limits = Limits()
            self.refresh_grace = grace
            self.idempotency_ttl = IDEMPOTENCY_TTL
            self.honour_tax_amount = True  # False: recompute every line's tax from its TaxType (total checks)
            self.fault_retry_after = 7  # Retry-After of an injected "429"
            self.gate: threading.Event | None = None  # when set: API calls wait on it while counted in flight
            self.offset = 0.0
            self.access: dict[str, tuple[float, frozenset]] = {}  # token -> (expires at, organisations)
            self.refresh: dict[str, dict] = {}  # token -> {"superseded": time | None, "orgs": ...}
            self.latest_refresh: str | None = None
            self.orgs = {t: Org(t, set(accounts), dict(rates)) for t in tenants}

    # ------------------------------------------------------------ test helpers

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock (token expiry, rate windows, idempotency memory) forward."""
        with self.state:
            self.offset += seconds

    def org(self, tenant_id: str | None = None) -> Org:
        return self.orgs[tenant_id] if tenant_id else next(iter(self.orgs.values()))

    # the sandbox hook (invoicer/sandbox.py)
    def platform(self, url: str) -> dict:
        return {"provider": "xero", "tenant_id": next(iter(self.orgs)), "base_url": url,
                "token_url": f"{url}/connect/token", "accounts": {"labor": "200", "material": "200", "fee": "260"},
                "tax_types": {"taxable": "OUTPUT", "exempt": "NONE"}}

    def env(self) -> dict[str, str]:
        return {"INVOICER_XERO_CLIENT_ID": self.client_id, "INVOICER_XERO_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> dict:
        return self.grant()

    def grant(self, tenants: tuple[str, ...] | None = None) -> dict:
        """A fresh token set, as the authorisation-code flow would have given it (for seeding credentials)."""
        with self.state:
            return self._mint(frozenset(tenants or self.orgs))

    def add_contact(self, tenant_id: str | None = None, **fields) -> dict:
        with self.state:
            contact = {"ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", **fields}
            self.org(tenant_id).contacts[contact["ContactID"]] = contact
            return contact

    def pay(self, invoice_id: str, amount: Decimal, tenant_id: str | None = None) -> dict:
        """A payment applied in Xero (by a person or a bank feed)."""
        with self.state:
            inv = self.org(tenant_id).invoices[invoice_id]
            inv["AmountPaid"] = inv["AmountPaid"] + amount
            inv["AmountDue"] = inv["Total"] - inv["AmountPaid"]
            inv["Payments"].append({"PaymentID": str(uuid.uuid4()), "Amount": amount})
            if inv["AmountDue"] <= 0:
                inv["Status"] = "PAID"
            return inv

    def requests_to(self, method: str, path_suffix: str) -> list[Request]:
        return [r for r in self.received if r.method == method and r.path.endswith(path_suffix)]

    # ------------------------------------------------------------ the vendor's faults

    def rate_limited(self, request: Request) -> Reply:
        return self._429("minute", self.fault_retry_after)

    def _429(self, problem: str, retry_after: int | None) -> Reply:
        headers = {"X-Rate-Limit-Problem": problem}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return Reply(429, b"", headers)

    # ------------------------------------------------------------ dispatch

    def handle(self, request: Request) -> Reply:
        if request.path == "/connect/token":
            return self.token(request) if request.method == "POST" else Reply(405, b"")
        for method, pattern, handler in self._compiled:
            m = pattern.match(request.path)
            if m and method == request.method:
                request.params = m.groupdict()
                return self._api(request, handler)
        return _json(404, {"Title": "NotFound", "Status": 404, "Detail": "The resource you're looking for "
                                                                          "cannot be found"})

    def _api(self, request: Request, handler) -> Reply:
        denied = self._authorise(request)
        if denied:
            return denied
        org = self.orgs[request.headers["xero-tenant-id"]]
        with self.state:
            limited = self._count(org)
            if limited:
                return limited
        try:
            if self.gate is not None:
                self.gate.wait(30)
            with self.state:
                reply = self._idempotent(org, request, handler)
        finally:
            with self.state:
                org.in_flight -= 1
        with self.state:
            reply.headers.update({"X-DayLimit-Remaining": str(max(0, self.limits.day - org.day_count)),
                                  "X-MinLimit-Remaining": str(max(0, self.limits.minute - len(org.minute))),
                                  "X-AppMinLimit-Remaining": str(APP_MINUTE_LIMIT - len(org.minute))})
        return reply

    def _authorise(self, request: Request) -> Reply | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self.state:
            found = self.access.get(token)
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        if found is None:
            return _json(401, {"Type": None, "Title": "Unauthorized", "Status": 401,
                               "Detail": "AuthenticationUnsuccessful", "Instance": str(uuid.uuid4()),
                               "Extensions": {}}, challenge)
        expires, orgs = found
        if self.now() >= expires:
            when = datetime.fromtimestamp(expires, tz=timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
            return _json(401, {"Type": None, "Title": "Unauthorized", "Status": 401,
                               "Detail": f"TokenExpired: token expired at {when}", "Instance": str(uuid.uuid4()),
                               "Extensions": {}}, challenge)
        tenant = request.headers.get("xero-tenant-id", "")
        if tenant not in orgs or tenant not in self.orgs:
            return _json(403, {"Type": None, "Title": "Forbidden", "Status": 403,
                               "Detail": "AuthorizationUnsuccessful", "Instance": str(uuid.uuid4()),
                               "Extensions": {}})
        return None

    def _count(self, org: Org) -> Reply | None:
        now = self.now()
        if org.day_start is None or now - org.day_start >= 86400:
            org.day_start, org.day_count = now, 0
        while org.minute and now - org.minute[0] >= 60:
            org.minute.popleft()
        if org.day_count >= self.limits.day:
            return self._429("day", max(1, math.ceil(org.day_start + 86400 - now)))
        if len(org.minute) >= self.limits.minute:
            return self._429("minute", max(1, math.ceil(org.minute[0] + 60 - now)))
        if org.in_flight >= self.limits.concurrent:
            return self._429("concurrent", None)
        org.day_count += 1
        org.minute.append(now)
        org.in_flight += 1
        return None

    def _idempotent(self, org: Org, request: Request, handler) -> Reply:
        key = request.headers.get("idempotency-key")
        if request.method not in ("PUT", "POST") or not key:
            return handler(self, org, request)
        if len(key) > KEY_MAX:
            return _json(400, {"ErrorNumber": 10, "Type": "ValidationException",
                               "Message": f"Idempotency-Key must be {KEY_MAX} characters or fewer."})
        print_ = (request.method, request.path, tuple(sorted((k, tuple(v)) for k, v in request.query.items())),
                  request.body)
        now = self.now()
        for old in [k for k, (_, at, _) in org.idempotency.items() if now - at >= self.idempotency_ttl]:
            del org.idempotency[old]
        if key in org.idempotency:
            fingerprint, _, first = org.idempotency[key]
            if fingerprint != print_:
                return _json(400, {"ErrorNumber": 10, "Type": "ValidationException",
                                   "Message": f"Idempotency Key {key} is used with a different request."})
            return Reply(first.status, first.body, dict(first.headers))
        reply = handler(self, org, request)
        if reply.status < 500 and reply.status != 429:
            org.idempotency[key] = (print_, now, Reply(reply.status, reply.body, dict(reply.headers)))
        return reply

    # ------------------------------------------------------------ identity.xero.com/connect/token

    def _mint(self, orgs: frozenset) -> dict:
        access, refresh = "sim-at-" + uuid.uuid4().hex, "sim-rt-" + uuid.uuid4().hex
        now = self.now()
        self.access[access] = (now + ACCESS_TTL, orgs)
        self.refresh[refresh] = {"superseded": None, "orgs": orgs}
        self.latest_refresh = refresh
        return {"access_token": access, "refresh_token": refresh, "expires_in": ACCESS_TTL,
                "token_type": "Bearer", "expires_at": time.time() + ACCESS_TTL,
                "scope": "offline_access accounting.transactions accounting.contacts"}

    def token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                client_id = secret = None
        if client_id != self.client_id or secret != self.client_secret:
            return _json(400, {"error": "invalid_client"})
        if form.get("grant_type") != "refresh_token":
            return _json(400, {"error": "unsupported_grant_type"})
        with self.state:
            entry = self.refresh.get(form.get("refresh_token", ""))
            now = self.now()
            if entry is None or (entry["superseded"] is not None and now - entry["superseded"] >= self.refresh_grace):
                return _json(400, {"error": "invalid_grant"})
            if entry["superseded"] is None:
                entry["superseded"] = now
            minted = self._mint(entry["orgs"])
        minted.pop("expires_at")
        return _json(200, minted)

    # ------------------------------------------------------------ contacts

    def get_contacts(self, org: Org, request: Request) -> Reply:
        contacts = list(org.contacts.values())
        where = (request.query.get("where") or [""])[0]
        if where:
            try:
                groups = parse_where(where)
            except ValueError as exc:
                return _json(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)})
            contacts = [c for c in contacts if matches(c, groups)]
        return _json(200, self._envelope(Contacts=contacts))

    def put_contacts(self, org: Org, request: Request) -> Reply:
        body, bad = self._body(request, "Contacts")
        if bad:
            return bad
        items = body.get("Contacts") if "Contacts" in body else [body]
        summarize = (request.query.get("summarizeErrors") or ["true"])[0].lower() != "false"
        made, failed, answers = [], [], []
        for c in items:
            errors = []
            name = (c.get("Name") or "").strip()
            active = [x for x in list(org.contacts.values()) + made if x.get("ContactStatus") == "ACTIVE"]
            if not name:
                errors.append("The contact name must be specified.")
            elif any((x.get("Name") or "").casefold() == name.casefold() for x in active):
                errors.append(f"The contact name {name} is already assigned to another contact. The contact name "
                              f"must be unique across all active contacts.")
            number = c.get("ContactNumber")
            if number and any(x.get("ContactNumber") == number for x in active):
                errors.append(f"The contact number {number} is already assigned to another contact.")
            if errors:
                failed.append({**c, "HasValidationErrors": True, "StatusAttributeString": "ERROR",
                               "ValidationErrors": [{"Message": e} for e in errors]})
                answers.append(failed[-1])
            else:
                made.append({**c, "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE",
                             "UpdatedDateUTC": self._ms_now(), "HasValidationErrors": False})
                answers.append(made[-1])
        if failed and summarize:
            return _validation(failed)
        for c in made:
            org.contacts[c["ContactID"]] = c
        return _json(200, self._envelope(Contacts=answers))

    # ------------------------------------------------------------ invoices

    def put_invoices(self, org: Org, request: Request) -> Reply:
        body, bad = self._body(request, "Invoices")
        if bad:
            return bad
        items = body.get("Invoices") if "Invoices" in body else [body]
        unitdp = 4 if (request.query.get("unitdp") or [""])[0] == "4" else 2
        summarize = (request.query.get("summarizeErrors") or ["true"])[0].lower() != "false"
        numbers = {i.get("InvoiceNumber") for i in org.invoices.values()
                   if i.get("Type") == "ACCREC" and i.get("Status") != "DELETED"}
        made, answers, failed = [], [], False
        for sent in items:
            inv, errors = self._invoice(org, sent, unitdp, numbers)
            if errors:
                failed = True
                answers.append({**sent, "HasErrors": True, "StatusAttributeString": "ERROR",
                                "ValidationErrors": [{"Message": e} for e in errors]})
            else:
                numbers.add(inv["InvoiceNumber"])
                made.append(inv)
                answers.append(inv)
        if failed and summarize:
            return _validation([a for a in answers if a.get("HasErrors")])
        for inv in made:
            org.invoices[inv["InvoiceID"]] = inv
        if made:
            org.creates += 1
        return _json(200, self._envelope(Invoices=[self._public(a) for a in answers]))

    def _invoice(self, org: Org, sent: dict, unitdp: int, numbers: set) -> tuple[dict, list[str]]:
        errors = []
        if sent.get("Type") not in ("ACCREC", "ACCPAY"):
            errors.append("Invoice not of valid type for creation")
        status = sent.get("Status", "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append("Invoice not of valid status for creation")
        contact_ref = sent.get("Contact") or {}
        contact = org.contacts.get(contact_ref.get("ContactID", ""))
        if contact is None:
            errors.append("A Contact must be specified for this type of transaction" if not contact_ref
                          else f"The contact with ContactID {contact_ref.get('ContactID')} could not be found.")
        for name in ("Date", "DueDate"):
            if sent.get(name):
                try:
                    date.fromisoformat(str(sent[name])[:10])
                except ValueError:
                    errors.append(f"{name} is not a valid date")
        if status == "AUTHORISED" and not sent.get("LineItems"):
            errors.append("An invoice must have at least one line item to be approved.")
        figures, line_errors = compute_invoice(sent, org.tax_rates, unitdp=unitdp,
                                               honour_tax_amount=self.honour_tax_amount, accounts=org.accounts)
        errors += line_errors
        if figures["Total"] < 0:
            errors.append("Invoice total must not be negative")
        number = sent.get("InvoiceNumber")
        if sent.get("Type") == "ACCREC":
            if number and number in numbers and status == "AUTHORISED":
                errors.append("Invoice # must be unique.")
            if not number:  # Xero numbers from the organisation's invoice settings: INV-0001, INV-0002, ...
                n = org.next_number
                while f"INV-{n:04d}" in numbers:
                    n += 1
                number = f"INV-{n:04d}"
        if errors:
            return {}, errors
        issued = date.fromisoformat(str(sent.get("Date") or date.today().isoformat())[:10])
        due = date.fromisoformat(str(sent["DueDate"])[:10]) if sent.get("DueDate") else None
        inv = {
            "Type": sent["Type"], "InvoiceID": str(uuid.uuid4()), "InvoiceNumber": number,
            "Reference": sent.get("Reference", ""), "Contact": {"ContactID": contact["ContactID"],
                                                               "Name": contact.get("Name")},
            "Date": _ms_date(issued), "DateString": f"{issued.isoformat()}T00:00:00",
            **({"DueDate": _ms_date(due), "DueDateString": f"{due.isoformat()}T00:00:00"} if due else {}),
            "Status": status, "LineAmountTypes": sent.get("LineAmountTypes", "Exclusive"),
            "CurrencyCode": sent.get("CurrencyCode", "USD"), "CurrencyRate": Decimal("1.000000"),
            **figures, "AmountDue": figures["Total"], "AmountPaid": Decimal("0.00"),
            "AmountCredited": Decimal("0.00"), "Payments": [], "SentToContact": False, "HasErrors": False,
            "IsDiscounted": figures["TotalDiscount"] > 0, "UpdatedDateUTC": self._ms_now(),
        }
        return inv, []

    def get_invoices(self, org: Org, request: Request) -> Reply:
        invoices = list(org.invoices.values())
        where = (request.query.get("where") or [""])[0]
        if where:
            try:
                groups = parse_where(where)
            except ValueError as exc:
                return _json(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)})
            invoices = [i for i in invoices if matches(i, groups)]
        for param, name in (("InvoiceNumbers", "InvoiceNumber"), ("IDs", "InvoiceID"), ("Statuses", "Status")):
            wanted = {v.strip() for q in request.query.get(param, []) for v in q.split(",") if v.strip()}
            if wanted:
                invoices = [i for i in invoices if i.get(name) in wanted]
        paged = bool(request.query.get("page"))
        return _json(200, self._envelope(Invoices=[self._public(i, lines=paged) for i in invoices]))

    def get_invoice(self, org: Org, request: Request) -> Reply:
        inv = org.invoices.get(request.params["id"])
        if inv is None:
            return _json(404, {"Title": "NotFound", "Status": 404,
                               "Detail": "The resource you're looking for cannot be found"})
        return _json(200, self._envelope(Invoices=[self._public(inv)]))

    def email_invoice(self, org: Org, request: Request) -> Reply:
        body, bad = self._body(request, "RequestEmpty")
        if bad:
            return bad
        inv = org.invoices.get(request.params["id"])
        if inv is None:
            return _json(404, {"Title": "NotFound", "Status": 404,
                               "Detail": "The resource you're looking for cannot be found"})
        if inv["Status"] != "AUTHORISED":
            return _invalid(f"Invoice {inv['InvoiceNumber']} cannot be emailed: only AUTHORISED invoices can be "
                            f"emailed (status {inv['Status']}).")
        contact = org.contacts.get(inv["Contact"]["ContactID"]) or {}
        if not contact.get("EmailAddress"):
            return _invalid("The contact does not have a valid email address.")
        org.emails.append(inv["InvoiceID"])
        inv["SentToContact"] = True
        return Reply(204, b"", {"Content-Type": "application/json"})

    # ------------------------------------------------------------ helpers

    def _body(self, request: Request, schema: str) -> tuple[Any, Reply | None]:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return None, _json(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                     "Message": "JSON for post data was invalid"})
        if not isinstance(body, dict):
            return None, _json(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                     "Message": "JSON for post data was invalid"})
        problems = schema_errors(spec_validator(schema, self.spec) if self.spec else None, body)
        if problems:
            return None, _invalid(*[f"schema {schema}: {p}" for p in problems])
        return body, None

    def _envelope(self, **items) -> dict:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "invoicer", "DateTimeUTC": self._ms_now(),
                **items}

    def _ms_now(self) -> str:
        return f"/Date({int(self.now() * 1000)})/"

    @staticmethod
    def _public(inv: dict, lines: bool = True) -> dict:
        out = {k: v for k, v in inv.items() if not k.startswith("_")}
        if not lines and "LineItems" in out:
            out["LineItems"] = []
        return out

    routes = [
        ("PUT", f"{API}/Invoices", put_invoices),
        ("GET", f"{API}/Invoices", get_invoices),
        ("GET", f"{API}/Invoices/(?P<id>[^/]+)", get_invoice),
        ("POST", f"{API}/Invoices/(?P<id>[^/]+)/Email", email_invoice),
        ("GET", f"{API}/Contacts", get_contacts),
        ("PUT", f"{API}/Contacts", put_contacts),
    ]


SIMULATOR = XeroSimulator
