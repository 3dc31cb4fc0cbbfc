"""A small stand-in for the parts of FreshBooks invoicer uses (tests and `invoicer sandbox` only).

FreshBooks publishes no machine-readable spec (../shared/vendor-specs/freshbooks/SOURCE.txt). This follows
FreshBooks' API documentation as its own developers' SDK reproduces it (amcintosh/freshbooks-python-sdk:
examples/create_invoice*.py, freshbooks/api/accounting.py, the webhooks user guide) and the Perl client's
invoice docs (metacpan Net::FreshBooks::API::Invoice).

Endpoints: POST /auth/oauth/token (JSON); under /accounting/account/{account_id}: GET/POST users/clients,
GET/POST invoices/invoices, GET/PUT invoices/invoices/{id} (lines, action_email, action_mark_as_sent).
What it reproduces:
- Bearer access tokens living 12 hours; refresh tokens are SINGLE USE: a refresh answers a new pair and the
  old refresh token is dead at once (400 {"error": "invalid_grant"}).
- Answers are `{"response": {"result": {...}}}`; errors `{"response": {"errors": [{"errno", "field",
  "message", "object", "value"}]}}` (the SDK parses exactly that); a bad token 401 {"error":
  "unauthenticated", ...}; an account the token may not use 403 (errno 1003).
- Money as `{"amount": "12.50", "code": "USD"}` strings; an amount with more decimals than the currency
  allows is refused. Line amount = qty x unit_cost rounded half-even (FreshBooks' rounding is not
  documented); each tax (taxName1 + taxAmount1 percent) is its percentage of its lines' total rounded once;
  negative lines are allowed (not confirmed); amount = lines + taxes; outstanding/paid follow payments.
- Invoices start as drafts (v3_status "draft", status 1); action_email sends and action_mark_as_sent marks
  them sent (status 2); a PUT with `lines` replaces the lines. `search[invoice_number]` and
  `search[email]` filter lists exactly. FreshBooks itself may or may not refuse a repeated invoice_number
  (not confirmed); this simulator does not.
- Limits: FreshBooks publishes none; the simulator answers 429 past `quota` (60 a minute, 5 at once per
  account) with the error envelope and no Retry-After -- an invention to exercise the adapter.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ... import money
from ..simkit import AccountingSimulator, Quota
from ..simulate import Reply, Request
from ..jsonmoney import dumps, loads
from .webhooks import sign

ACCOUNT = "6BApk"
ACCESS_TTL = 12 * 3600
BASE = r"/accounting/account/(?P<account>[^/]+)"


@dataclass
class Account:
    account_id: str
    clients: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)
    quota: Quota = field(default_factory=lambda: Quota(minute=60, day=10**9, concurrent=5))
    next_id: int = 100000
    next_number: int = 1


def _json(status: int, body: Any) -> Reply:
    return Reply(status, dumps(body).encode(), {"Content-Type": "application/json"})


def _result(**items) -> Reply:
    return _json(200, {"response": {"result": items}})


def _errors(status: int, errno: int, message: str, field_name: str | None = None, obj: str = "invoice") -> Reply:
    return _json(status, {"response": {"errors": [{"errno": errno, "field": field_name, "message": message,
                                                   "object": obj, "value": None}]}})


class FreshBooksSimulator(AccountingSimulator):
    def __init__(self, accounts: tuple[str, ...] = (ACCOUNT,), *, client_id: str = "sim-fb-client",
                 client_secret: str = "sim-fb-secret", verifier: str = "sim-fb-verifier"):
        super().__init__()
        self.client_id, self.client_secret, self.verifier = client_id, client_secret, verifier
        self._accounts = tuple(accounts)
        self.reset()

    def fresh(self) -> None:
        self.access: dict[str, tuple[float, frozenset]] = {}
        self.refresh: dict[str, frozenset] = {}
        self.accounts = {a: Account(a) for a in self._accounts}

    # ------------------------------------------------------------ sandbox hook and helpers

    def platform(self, url: str) -> dict:
        return {"provider": "freshbooks", "account_id": self._accounts[0], "base_url": url,
                "webhook_verifier_env": "INVOICER_SANDBOX_FRESHBOOKS_VERIFIER"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_FRESHBOOKS_CLIENT_ID": self.client_id,
                "INVOICER_FRESHBOOKS_CLIENT_SECRET": self.client_secret,
                "INVOICER_SANDBOX_FRESHBOOKS_VERIFIER": self.verifier}

    def tokens(self) -> dict:
        return self.grant()

    def account(self, account_id: str | None = None) -> Account:
        return self.accounts[account_id or self._accounts[0]]

    def grant(self) -> dict:
        with self.state:
            pair = self._mint(frozenset(self.accounts))
            return {"access_token": pair["access_token"], "refresh_token": pair["refresh_token"],
                    "expires_at": time.time() + ACCESS_TTL}

    def _mint(self, accounts: frozenset) -> dict:
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        self.access[access] = (self.now() + ACCESS_TTL, accounts)
        self.refresh[refresh] = accounts
        return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "refresh_token": refresh,
                "scope": "user:invoices:write user:clients:write", "created_at": int(self.now())}

    def pay(self, invoice_id: str, paid: Decimal, account_id: str | None = None) -> tuple[bytes, dict]:
        """A payment recorded in FreshBooks; returns the signed payment.create callback it sends."""
        with self.state:
            acct = self.account(account_id)
            inv = acct.invoices[invoice_id]
            total = money.round_money(paid + Decimal(inv["paid"]["amount"]), inv["currency_code"])
            inv["paid"]["amount"] = format(total, "f")
            due = Decimal(inv["amount"]["amount"]) - total
            inv["outstanding"]["amount"] = format(due, "f")
            inv["payment_status"] = "paid" if due <= 0 else "partial"
            inv["v3_status"] = "paid" if due <= 0 else "partial"
            fields = {"name": "payment.create", "object_id": str(uuid.uuid4().int % 10**7),
                      "account_id": acct.account_id, "business_id": "6543", "identity_id": "1234", "user_id": "1"}
            return self.callback(fields)

    def callback(self, fields: dict) -> tuple[bytes, dict]:
        from urllib.parse import urlencode

        return urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                            "X-FreshBooks-Hmac-SHA256": sign(fields, self.verifier)}

    # ------------------------------------------------------------ auth, limits

    def authorise(self, request: Request):
        auth = request.headers.get("authorization", "")
        found = self.access.get(auth[7:].strip() if auth.startswith("Bearer ") else "")
        if found is None or self.now() >= found[0]:
            return None, _json(401, {"error": "unauthenticated", "error_type": "unauthenticated",
                                     "error_description": "The server could not verify that you are authorized to "
                                                          "access the URL requested."})
        account = request.params.get("account")
        if account not in found[1] or account not in self.accounts:
            return None, _errors(403, 1003, "The server could not verify that you are authorized to access the URL "
                                            "requested.", obj="account")
        return self.accounts[account], None

    def quota(self, account: Account) -> Quota:
        return account.quota

    def over_limit(self, limit: str, retry_after: float) -> Reply:
        return _errors(429, 429, "Too Many Requests", obj="request")

    def not_found(self, request: Request) -> Reply:
        return _errors(404, 1012, "The requested resource was not found.", obj="request")

    def token(self, request: Request) -> Reply:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return _json(400, {"error": "invalid_request"})
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return _json(401, {"error": "invalid_client", "error_description": "Client authentication failed."})
        if body.get("grant_type") != "refresh_token":
            return _json(400, {"error": "unsupported_grant_type"})
        with self.state:
            accounts = self.refresh.pop(body.get("refresh_token", ""), None)  # single use
            if accounts is None:
                return _json(400, {"error": "invalid_grant", "error_description": "The provided authorization grant "
                                   "is invalid, expired, revoked, or was issued to another client."})
            return _json(200, self._mint(accounts))

    # ------------------------------------------------------------ clients

    def get_clients(self, acct: Account, request: Request) -> Reply:
        clients = [c for c in acct.clients.values()]
        email = (request.query.get("search[email]") or [""])[0].casefold()
        if email:
            clients = [c for c in clients if (c.get("email") or "").casefold() == email]
        return _result(clients=clients, page=1, pages=1, per_page=15, total=len(clients))

    def post_clients(self, acct: Account, request: Request) -> Reply:
        body, bad = self._body(request, "client")
        if bad:
            return bad
        if not (body.get("organization") or body.get("fname") or body.get("email")):
            return _errors(400, 2001, "A client needs an organization, a name or an email.", "organization", "client")
        if body.get("currency_code") and not money.is_currency(body["currency_code"]):
            return _errors(400, 2001, "Invalid currency code.", "currency_code", "client")
        acct.next_id += 1
        client = {**body, "id": acct.next_id, "userid": acct.next_id, "vis_state": 0}
        acct.clients[str(client["id"])] = client
        return _result(client=client)

    # ------------------------------------------------------------ invoices

    def post_invoices(self, acct: Account, request: Request) -> Reply:
        body, bad = self._body(request, "invoice")
        if bad:
            return bad
        client = acct.clients.get(str(body.get("customerid")))
        if client is None:
            return _errors(400, 1012, "Client not found.", "customerid")
        currency = body.get("currency_code") or client.get("currency_code") or "USD"
        figures = self._figures(body.get("lines") or [], currency)
        if isinstance(figures, Reply):
            return figures
        acct.next_id += 1
        number = body.get("invoice_number")
        if not number:
            number = f"{acct.next_number:07d}"
            acct.next_number += 1
        inv = {"id": acct.next_id, "invoiceid": acct.next_id, "accountid": acct.account_id, "customerid": client["id"],
               "invoice_number": number, "create_date": body.get("create_date"),
               "due_offset_days": body.get("due_offset_days", 0), "currency_code": currency,
               "po_number": body.get("po_number"), "notes": body.get("notes", ""), "status": 1, "v3_status": "draft",
               "payment_status": "unpaid", "vis_state": 0, "discount_value": "0", **figures,
               "paid": {"amount": "0.00", "code": currency}}
        inv["outstanding"] = dict(inv["amount"])
        acct.invoices[str(inv["id"])] = inv
        return _result(invoice=inv)

    def _figures(self, lines: list[dict], currency: str) -> dict | Reply:
        q = money.quantum(currency)
        out, taxes = [], {}
        if not lines:
            return _errors(400, 2001, "An invoice needs at least one line.", "lines")
        for i, li in enumerate(lines):
            unit = (li.get("unit_cost") or {})
            try:
                cost, qty = Decimal(str(unit.get("amount"))), Decimal(str(li.get("qty", 1)))
            except (InvalidOperation, TypeError):
                return _errors(400, 2001, f"Invalid amount on line {i + 1}.", "unit_cost")
            if unit.get("code") not in (None, currency) or cost != cost.quantize(q):
                return _errors(400, 2001, f"Invalid amount on line {i + 1}: {unit.get('amount')} {unit.get('code')}.",
                               "unit_cost")
            line_amount = (cost * qty).quantize(q, ROUND_HALF_EVEN)
            out.append({**li, "lineid": i + 1, "amount": {"amount": format(line_amount, "f"), "code": currency}})
            if li.get("taxName1"):
                pct = Decimal(str(li.get("taxAmount1") or 0))
                taxes.setdefault((li["taxName1"], pct), Decimal(0))
                taxes[(li["taxName1"], pct)] += line_amount
        subtotal = sum((Decimal(li["amount"]["amount"]) for li in out), Decimal(0))
        tax_lines = [{"name": n, "percent": format(p, "f"),
                      "amount": format((base * p / 100).quantize(q, ROUND_HALF_EVEN), "f")} for (n, p), base in taxes.items()]
        total = subtotal + sum((Decimal(t["amount"]) for t in tax_lines), Decimal(0))
        return {"lines": out, "taxes": tax_lines, "amount": {"amount": format(total, "f"), "code": currency},
                "discount_total": {"amount": format(Decimal(0) * q, "f"), "code": currency}}

    def get_invoices(self, acct: Account, request: Request) -> Reply:
        invoices = [i for i in acct.invoices.values()]
        number = (request.query.get("search[invoice_number]") or [None])[0]
        if number is not None:
            invoices = [i for i in invoices if i["invoice_number"] == number]
        return _result(invoices=invoices, page=1, pages=1, per_page=15, total=len(invoices))

    def get_invoice(self, acct: Account, request: Request) -> Reply:
        inv = acct.invoices.get(request.params["id"])
        return _result(invoice=inv) if inv else _errors(404, 1012, "Invoice not found.", "invoiceid")

    def put_invoice(self, acct: Account, request: Request) -> Reply:
        inv = acct.invoices.get(request.params["id"])
        if inv is None:
            return _errors(404, 1012, "Invoice not found.", "invoiceid")
        body, bad = self._body(request, "invoice")
        if bad:
            return bad
        if "lines" in body:
            if inv["payment_status"] != "unpaid":
                return _errors(400, 2001, "A paid invoice's lines cannot be changed.", "lines")
            figures = self._figures(body["lines"], inv["currency_code"])
            if isinstance(figures, Reply):
                return figures
            inv.update(figures)
            inv["outstanding"] = dict(inv["amount"])
        if body.get("action_email"):
            if not body.get("email_recipients"):
                return _errors(400, 2001, "No recipients to email.", "email_recipients")
            acct.emails.append(str(inv["id"]))
            inv.update(status=2, v3_status="sent")
        elif body.get("action_mark_as_sent"):
            inv.update(status=2, v3_status="sent")
        return _result(invoice=inv)

    @staticmethod
    def _body(request: Request, name: str) -> tuple[Any, Reply | None]:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return None, _errors(400, 2001, "Invalid JSON.", obj=name)
        if not isinstance(body, dict) or not isinstance(body.get(name), dict):
            return None, _errors(400, 2001, f"The request needs a {name} object.", obj=name)
        return body[name], None

    outside = {("POST", "/auth/oauth/token"): token}
    routes = [
        ("GET", f"{BASE}/users/clients", get_clients),
        ("POST", f"{BASE}/users/clients", post_clients),
        ("GET", f"{BASE}/invoices/invoices", get_invoices),
        ("POST", f"{BASE}/invoices/invoices", post_invoices),
        ("GET", f"{BASE}/invoices/invoices/(?P<id>[^/]+)", get_invoice),
        ("PUT", f"{BASE}/invoices/invoices/(?P<id>[^/]+)", put_invoice),
    ]


SIMULATOR = FreshBooksSimulator
