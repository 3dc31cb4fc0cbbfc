"""A small, faithful stand-in for the parts of Zoho Books invoicer uses (tests and `invoicer sandbox` only).

Zoho publishes no machine-readable spec we could use (../shared/vendor-specs/zoho-books/SOURCE.txt); this
follows the API v3 documentation (zoho.com/books/api/v3: introduction, OAuth, "API call limit", errors,
Invoices, Contacts, Taxes, Currency) and the field names of Zoho's own Java wrapper.

Endpoints (same paths as Zoho, on one host for both the API and the accounts server):
  POST /oauth/v2/token                                  (accounts.zoho.<dc>) grant_type=refresh_token
  POST/GET /books/v3/invoices, GET/PUT /books/v3/invoices/{id}
  POST /books/v3/invoices/{id}/email, POST /books/v3/invoices/{id}/status/sent
  GET/POST /books/v3/contacts, GET /books/v3/settings/currencies, GET/POST /books/v3/settings/taxes
What it reproduces:
- Every API call needs `Authorization: Zoho-oauthtoken <token>` (else 401 {"code": 57, ...}) and
  `?organization_id=` naming an organisation the token may use (else 400 {"code": 6041, ...}).
- Access tokens live 3600 s; the refresh token does not rotate; a bad one answers HTTP 200
  {"error": "invalid_code"} (as Zoho's accounts server does).
- Answers are `{"code": 0, "message": ..., <resource>: ...}`; errors `{"code": n, "message": ...}` with
  HTTP 400/401/404/429. The numeric codes used here (1001 duplicate invoice number, 3062 contact name
  taken, 44/45 minute/day limit) are NOT confirmed against Zoho's list; the shape is.
- Limits per organisation (`orgs[id].quota`): 100 calls in any rolling minute, a daily cap (default 1000,
  the Free plan's), 5 at once; a breach answers 429 with no Retry-After.
- Invoices: the currency is the customer's; amounts to the currency's price precision (JPY 0, KWD 3,
  else 2); item_total = rate x quantity rounded half-even (Zoho's rounding mode is not documented: the
  less forgiving choice for a client that rounds half-up); an entity-level discount before tax is spread
  pro rata; each tax is its percentage of its lines' discounted total, rounded once; total = sub_total -
  discount + taxes + adjustment. A rate with more decimals than the currency allows is refused.
  invoice_number INV-000001... unless `ignore_auto_number_generation=true` with our own number, which
  must be unique (1001). `?send=true` on create emails it at once.
- Lookups: GET /invoices?reference_number= (exact), GET /contacts?email= (case-insensitive).
It stores what it received (`orgs[id].invoices`, `.contacts`, `.emails`) so tests assert on Zoho's side.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ..simkit import AccountingSimulator, Quota
from ..simulate import Reply, Request
from .transform import dumps, loads
from .webhooks import sign

API = "/books/v3"
ACCESS_TTL = 3600
PRECISION = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "OMR": 3}
ORG = "60012345678"


@dataclass
class Org:
    organization_id: str
    currencies: dict[str, dict] = field(default_factory=dict)  # currency_id -> currency
    taxes: dict[str, dict] = field(default_factory=dict)
    contacts: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    quota: Quota = field(default_factory=lambda: Quota(minute=100, day=1000, concurrent=5))
    next_number: int = 1
    next_id: int = 460000000001


def _json(status: int, body: Any) -> Reply:
    return Reply(status, dumps(body).encode(), {"Content-Type": "application/json;charset=UTF-8"})


def _ok(message: str, **items) -> Reply:
    return _json(200 if "created" not in message else 201, {"code": 0, "message": message, **items})


def _error(status: int, code: int, message: str) -> Reply:
    return _json(status, {"code": code, "message": message})


def _dec(value: Any) -> Decimal | None:
    try:
        return None if value is None or value == "" else Decimal(str(value))
    except InvalidOperation:
        return None


class ZohoBooksSimulator(AccountingSimulator):
    """Zoho Books for tests. `organizations` are organisation ids; every one has USD (base), CAD, EUR,
    GBP, AUD, JPY and KWD, and no taxes until some are made."""

    def __init__(self, organizations: tuple[str, ...] = (ORG,), *, client_id: str = "1000.SIMCLIENT",
                 client_secret: str = "sim-zoho-secret", webhook_secret: str = "simzohowebhooksecret01"):
        super().__init__()
        self.client_id, self.client_secret, self.webhook_secret = client_id, client_secret, webhook_secret
        self._orgs = tuple(organizations)
        self.reset()

    def fresh(self) -> None:
        self.access: dict[str, tuple[float, frozenset]] = {}
        self.refresh: dict[str, frozenset] = {}
        self.orgs = {o: self._new_org(o) for o in self._orgs}

    @staticmethod
    def _new_org(org_id: str) -> Org:
        org = Org(org_id)
        for i, code in enumerate(("USD", "CAD", "EUR", "GBP", "AUD", "JPY", "KWD")):
            cid = f"4600000000{i:02d}"
            org.currencies[cid] = {"currency_id": cid, "currency_code": code, "is_base_currency": code == "USD",
                                   "price_precision": PRECISION.get(code, 2)}
        return org

    # ------------------------------------------------------------ sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "zoho_books", "organization_id": self._orgs[0], "base_url": url, "accounts_url": url,
                "webhook_secret_env": "INVOICER_SANDBOX_ZOHO_BOOKS_WEBHOOK_SECRET"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_ZOHO_BOOKS_CLIENT_ID": self.client_id,
                "INVOICER_ZOHO_BOOKS_CLIENT_SECRET": self.client_secret,
                "INVOICER_SANDBOX_ZOHO_BOOKS_WEBHOOK_SECRET": self.webhook_secret}

    def tokens(self) -> dict:
        return self.grant()

    # ------------------------------------------------------------ test helpers

    def org(self, organization_id: str | None = None) -> Org:
        return self.orgs[organization_id or self._orgs[0]]

    def grant(self, organizations: tuple[str, ...] | None = None) -> dict:
        with self.state:
            orgs = frozenset(organizations or self.orgs)
            refresh = f"1000.{uuid.uuid4().hex}"
            self.refresh[refresh] = orgs
            access = self._mint(orgs)
            return {"access_token": access, "refresh_token": refresh, "expires_at": time.time() + ACCESS_TTL}

    def _mint(self, orgs: frozenset) -> str:
        token = f"1000.{uuid.uuid4().hex}"
        self.access[token] = (self.now() + ACCESS_TTL, orgs)
        return token

    def add_contact(self, organization_id: str | None = None, **fields) -> dict:
        with self.state:
            org = self.org(organization_id)
            return self._store_contact(org, fields)

    def pay(self, invoice_id: str, paid: Decimal, organization_id: str | None = None) -> tuple[bytes, dict]:
        """A customer payment recorded in Zoho; returns the signed invoice webhook Zoho would send."""
        with self.state:
            inv = self.org(organization_id).invoices[invoice_id]
            inv["balance"] -= paid
            inv["status"] = "paid" if inv["balance"] <= 0 else "partially_paid"
            return self.webhook(inv, organization_id)

    def webhook(self, inv: dict, organization_id: str | None = None) -> tuple[bytes, dict]:
        body = dumps({"invoice": self._public(inv), "organization_id": organization_id or self._orgs[0]}).encode()
        return body, {"Content-Type": "application/json", "X-Zoho-Webhook-Signature": sign(body, self.webhook_secret)}

    # ------------------------------------------------------------ dispatch, auth, limits

    def over_limit(self, limit: str, retry_after: float) -> Reply:
        if limit == "day":
            return _error(429, 45, "You have reached the maximum number of API requests allowed per day.")
        return _error(429, 44, "You have made too many requests. Please try again after some time.")

    def not_found(self, request: Request) -> Reply:
        return _error(404, 5, "Invalid URL Passed")

    def quota(self, org: Org) -> Quota:
        return org.quota

    def authorise(self, request: Request) -> tuple[Org | None, Reply | None]:
        auth = request.headers.get("authorization", "")
        token = auth[len("Zoho-oauthtoken "):].strip() if auth.startswith("Zoho-oauthtoken ") else ""
        found = self.access.get(token)
        if found is None or self.now() >= found[0]:
            return None, _error(401, 57, "You are not authorized to perform this operation")
        org_id = (request.query.get("organization_id") or [""])[0]
        if org_id not in found[1] or org_id not in self.orgs:
            return None, _error(400, 6041, "This user is not associated with the organization_id passed")
        return self.orgs[org_id], None

    def token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in {**request.query, **request.form()}.items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _json(200, {"error": "invalid_client"})
        if form.get("grant_type") != "refresh_token":
            return _json(200, {"error": "unsupported_grant_type"})
        with self.state:
            orgs = self.refresh.get(form.get("refresh_token", ""))
            if orgs is None:
                return _json(200, {"error": "invalid_code"})
            access = self._mint(orgs)
        return _json(200, {"access_token": access, "api_domain": "https://www.zohoapis.com", "token_type": "Bearer",
                           "expires_in": ACCESS_TTL})

    # ------------------------------------------------------------ settings

    def get_currencies(self, org: Org, request: Request) -> Reply:
        return _ok("success", currencies=list(org.currencies.values()))

    def get_taxes(self, org: Org, request: Request) -> Reply:
        return _ok("success", taxes=list(org.taxes.values()))

    def post_taxes(self, org: Org, request: Request) -> Reply:
        body, bad = self._body(request)
        if bad:
            return bad
        pct = _dec(body.get("tax_percentage"))
        if not body.get("tax_name") or pct is None or not 0 <= pct <= 100:
            return _error(400, 4, "Invalid value passed for tax_percentage")
        tax = {"tax_id": self._id(org), "tax_name": body["tax_name"], "tax_percentage": pct,
               "tax_type": body.get("tax_type", "tax")}
        org.taxes[tax["tax_id"]] = tax
        return _ok("The tax has been created.", tax=tax)

    # ------------------------------------------------------------ contacts

    def _store_contact(self, org: Org, fields: dict) -> dict:
        base = next(c for c in org.currencies.values() if c["is_base_currency"])
        currency = org.currencies.get(fields.get("currency_id") or base["currency_id"])
        persons = fields.get("contact_persons") or []
        contact = {"contact_id": self._id(org), "contact_type": "customer", "status": "active",
                   **{k: v for k, v in fields.items() if k != "currency_id"},
                   "currency_id": currency["currency_id"], "currency_code": currency["currency_code"],
                   "email": next((p.get("email") for p in persons if p.get("is_primary_contact")), "")
                   or fields.get("email", "")}
        org.contacts[contact["contact_id"]] = contact
        return contact

    def get_contacts(self, org: Org, request: Request) -> Reply:
        contacts = list(org.contacts.values())
        email = (request.query.get("email") or [""])[0].casefold()
        if email:
            contacts = [c for c in contacts if (c.get("email") or "").casefold() == email]
        return _ok("success", contacts=contacts, page_context={"page": 1, "per_page": 200, "has_more_page": False})

    def post_contacts(self, org: Org, request: Request) -> Reply:
        body, bad = self._body(request)
        if bad:
            return bad
        name = (body.get("contact_name") or "").strip()
        if not name:
            return _error(400, 4, "Invalid value passed for contact_name")
        if any((c.get("contact_name") or "").casefold() == name.casefold() for c in org.contacts.values()):
            return _error(400, 3062, f'The customer "{name}" already exists. Please specify a different name.')
        if body.get("currency_id") and body["currency_id"] not in org.currencies:
            return _error(400, 4, "Invalid value passed for currency_id")
        return _ok("The contact has been added.", contact=self._store_contact(org, body))

    # ------------------------------------------------------------ invoices

    def post_invoices(self, org: Org, request: Request) -> Reply:
        return self._save_invoice(org, request, None)

    def put_invoice(self, org: Org, request: Request) -> Reply:
        old = org.invoices.get(request.params["id"])
        if old is None:
            return _error(404, 1002, "Invoice does not exist.")
        if old["status"] in ("paid", "void"):
            return _error(400, 1040, f"A {old['status']} invoice cannot be edited.")
        return self._save_invoice(org, request, old)

    def _save_invoice(self, org: Org, request: Request, old: dict | None) -> Reply:
        body, bad = self._body(request)
        if bad:
            return bad
        contact = org.contacts.get(str(body.get("customer_id") or ""))
        if contact is None:
            return _error(400, 4, "Invalid value passed for customer_id")
        currency = org.currencies[contact["currency_id"]]
        places = currency["price_precision"]
        q = Decimal(1).scaleb(-places)
        lines, problems = [], []
        for i, li in enumerate(body.get("line_items") or []):
            rate, qty = _dec(li.get("rate")), _dec(li.get("quantity", 1))
            if rate is None or qty is None or rate < 0 or qty < 0:
                problems.append(f"Invalid value passed for line_items[{i}].rate")
                continue
            if rate != rate.quantize(q):
                problems.append(f"Invalid value passed for rate: at most {places} decimals in "
                                f"{currency['currency_code']}")
                continue
            if li.get("tax_id") and li["tax_id"] not in org.taxes:
                problems.append("Invalid value passed for tax_id")
                continue
            if not (li.get("name") or li.get("item_id")):
                problems.append("Please enter the item name or select an item.")
                continue
            lines.append({**li, "line_item_id": self._id(org), "rate": rate, "quantity": qty,
                          "item_total": (rate * qty).quantize(q, rounding=ROUND_HALF_EVEN)})
        if not lines and not problems:
            problems.append("Line items cannot be empty.")
        if problems:
            return _error(400, 4, problems[0])
        number = body.get("invoice_number")
        own = (request.query.get("ignore_auto_number_generation") or ["false"])[0] == "true"
        if old is not None:
            number = old["invoice_number"]
        elif own:
            if not number:
                return _error(400, 4, "Invalid value passed for invoice_number")
            if any(i["invoice_number"] == number for i in org.invoices.values()):
                return _error(400, 1001, f'Invoice "{number}" already exists. Please specify a different number.')
        else:
            number = f"INV-{org.next_number:06d}"
            org.next_number += 1
        figures = self._figures(org, body, lines, q)
        if isinstance(figures, Reply):
            return figures
        issued = str(body.get("date") or date.today().isoformat())
        inv = {"invoice_id": self._id(org), "invoice_number": number,
               "reference_number": body.get("reference_number", ""), "customer_id": contact["contact_id"],
               "customer_name": contact["contact_name"], "status": "draft", "date": issued,
               "due_date": body.get("due_date", issued), "currency_id": currency["currency_id"],
               "currency_code": currency["currency_code"], "line_items": lines, **figures,
               "balance": figures["total"], "is_emailed": False, "notes": body.get("notes", ""),
               "invoice_url": f"https://books.zoho.com/portal/invoice/{uuid.uuid4().hex}"}
        if old is not None:
            paid = old["total"] - old["balance"]
            inv.update(invoice_id=old["invoice_id"], status=old["status"], is_emailed=old["is_emailed"],
                       invoice_url=old["invoice_url"], balance=inv["total"] - paid)
            org.invoices[inv["invoice_id"]] = inv
            return _ok("Invoice information has been updated.", invoice=self._public(inv))
        org.invoices[inv["invoice_id"]] = inv
        if (request.query.get("send") or ["false"])[0] == "true":
            self._email(org, inv)
        return _ok("The invoice has been created.", invoice=self._public(inv))

    def _figures(self, org: Org, body: dict, lines: list[dict], q: Decimal) -> dict | Reply:
        sub = sum((li["item_total"] for li in lines), Decimal(0))
        discount = Decimal(0)
        raw = body.get("discount")
        if raw not in (None, "", 0):
            text = str(raw)
            if text.endswith("%"):
                pct = _dec(text[:-1])
                if pct is None:
                    return _error(400, 4, "Invalid value passed for discount")
                discount = (sub * pct / 100).quantize(q, rounding=ROUND_HALF_EVEN)
            else:
                value = _dec(text)
                if value is None or value != value.quantize(q) or value < 0 or value > sub:
                    return _error(400, 4, "Invalid value passed for discount")
                discount = value
        before_tax = bool(body.get("is_discount_before_tax", True))
        factor = (sub - discount) / sub if sub and before_tax else Decimal(1)
        taxes = []
        for tax_id in dict.fromkeys(li["tax_id"] for li in lines if li.get("tax_id")):
            tax = org.taxes[tax_id]
            base = sum((li["item_total"] for li in lines if li.get("tax_id") == tax_id), Decimal(0))
            taxes.append({"tax_id": tax_id, "tax_name": tax["tax_name"],
                          "tax_amount": (base * factor * tax["tax_percentage"] / 100).quantize(q, ROUND_HALF_EVEN)})
        tax_total = sum((t["tax_amount"] for t in taxes), Decimal(0))
        adjustment = _dec(body.get("adjustment")) or Decimal(0)
        return {"sub_total": sub, "discount_amount": discount, "discount": str(raw or 0), "taxes": taxes,
                "tax_total": tax_total, "adjustment": adjustment, "total": sub - discount + tax_total + adjustment}

    def get_invoices(self, org: Org, request: Request) -> Reply:
        invoices = list(org.invoices.values())
        ref = (request.query.get("reference_number") or [None])[0]
        if ref is not None:
            invoices = [i for i in invoices if i["reference_number"] == ref]
        summary = ("invoice_id", "invoice_number", "reference_number", "customer_id", "customer_name", "status",
                   "date", "due_date", "currency_code", "total", "balance", "is_emailed", "invoice_url")
        return _ok("success", invoices=[{k: i[k] for k in summary} for i in invoices],
                   page_context={"page": 1, "per_page": 200, "has_more_page": False})

    def get_invoice(self, org: Org, request: Request) -> Reply:
        inv = org.invoices.get(request.params["id"])
        if inv is None:
            return _error(404, 1002, "Invoice does not exist.")
        return _ok("success", invoice=self._public(inv))

    def email_invoice(self, org: Org, request: Request) -> Reply:
        body, bad = self._body(request)
        if bad:
            return bad
        inv = org.invoices.get(request.params["id"])
        if inv is None:
            return _error(404, 1002, "Invoice does not exist.")
        if not body.get("to_mail_ids"):
            return _error(400, 4, "Invalid value passed for to_mail_ids")
        if inv["status"] == "void":
            return _error(400, 1022, "Void invoices cannot be emailed.")
        self._email(org, inv)
        return _ok("Your invoice has been sent.")

    def mark_sent(self, org: Org, request: Request) -> Reply:
        inv = org.invoices.get(request.params["id"])
        if inv is None:
            return _error(404, 1002, "Invoice does not exist.")
        if inv["status"] != "draft":
            return _error(400, 1016, "The invoice has already been marked as sent.")
        inv["status"] = "sent"
        return _ok("Invoice status has been changed to Sent.")

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _email(org: Org, inv: dict) -> None:
        org.emails.append(inv["invoice_id"])
        inv["is_emailed"] = True
        if inv["status"] == "draft":
            inv["status"] = "sent"

    @staticmethod
    def _id(org: Org) -> str:
        org.next_id += 1
        return str(org.next_id)

    @staticmethod
    def _body(request: Request) -> tuple[Any, Reply | None]:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return None, _error(400, 2, "Invalid value passed for JSONString")
        if not isinstance(body, dict):
            return None, _error(400, 2, "Invalid value passed for JSONString")
        return body, None

    @staticmethod
    def _public(inv: dict) -> dict:
        return dict(inv)

    outside = {("POST", "/oauth/v2/token"): token}
    routes = [
        ("POST", f"{API}/invoices", post_invoices),
        ("GET", f"{API}/invoices", get_invoices),
        ("GET", f"{API}/invoices/(?P<id>[^/]+)", get_invoice),
        ("PUT", f"{API}/invoices/(?P<id>[^/]+)", put_invoice),
        ("POST", f"{API}/invoices/(?P<id>[^/]+)/email", email_invoice),
        ("POST", f"{API}/invoices/(?P<id>[^/]+)/status/sent", mark_sent),
        ("GET", f"{API}/contacts", get_contacts),
        ("POST", f"{API}/contacts", post_contacts),
        ("GET", f"{API}/settings/currencies", get_currencies),
        ("GET", f"{API}/settings/taxes", get_taxes),
        ("POST", f"{API}/settings/taxes", post_taxes),
    ]


SIMULATOR = ZohoBooksSimulator
