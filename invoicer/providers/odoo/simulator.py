"""A small, faithful stand-in for the parts of Odoo invoicer uses (tests and `invoicer sandbox` only).

Endpoints (same paths as Odoo):
  POST /jsonrpc                       JSON-RPC 2.0, services `common` (authenticate) and `object` (execute_kw)
  POST /json/2/<model>/<method>       JSON-2 (Odoo 19+), Authorization: bearer <API key>, X-Odoo-Database
  GET  /web/version

What it reproduces, and from where (odoo.com/documentation/19.0/developer/reference/external_api, the
ORM models in addons/account/models/account_move*.py named in ../shared/vendor-specs/odoo/SOURCE.txt):
- JSON-RPC: `common.authenticate(db, login, key, {})` answers the uid or false; `object.execute_kw(db, uid,
  key, model, method, args, kwargs)`, record ids first in `args` for record methods; every failure is
  HTTP 200 with {"error": {"code": 200, "message": "Odoo Server Error", "data": {"name", "message",
  "arguments", "debug", "context"}}} (AccessDenied for a wrong key or uid).
- JSON-2: named parameters plus `ids` and `context` in a JSON object; success is 200 with the return value;
  errors are 4xx/5xx with {"name", "message", "arguments", "context", "debug"}: 401 Unauthorized "Invalid
  apikey", 422 for a user/validation error or an unexpected argument (the JSON-2 pull request's example),
  403 AccessError, 404 MissingError. These statuses beyond 401 and 422 are not confirmed.
- account.move: create with `move_type` out_invoice and `invoice_line_ids` as (0, 0, vals) commands, tax_ids
  as (6, 0, ids); unknown fields raise ValueError ("Invalid field"); products, accounts, taxes, partners and
  currencies must exist (currencies active). Like Odoo, `quantity` and `price_unit` are silently rounded to
  the database's decimal accuracy (2 and 2 unless set), price_subtotal = quantity x price_unit rounded to
  the currency, tax per line ("round_per_line", the default) or on the total ("round_globally"),
  amount_total = untaxed + tax. `action_post` needs a draft with lines and a total >= 0 and names the move
  INV/<year>/<nnnnn>. `message_post_with_source` with the invoice template's XML id emails the partner.
  A posted move accepts only harmless writes (is_move_sent).
- No rate limits: Odoo publishes none for the external API.

It stores what it received (`moves`, `partners`, `mails`) so tests assert on Odoo's side.
"""
from __future__ import annotations

import itertools
import secrets
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from ... import money
from ..jsonmoney import dec, dumps, loads
from ..simulate import Reply, Request, Simulator

DATABASE, LOGIN = "acme", "invoicer-bot"
PRODUCTS = {101: "Labour", 102: "Materials", 103: "Call-out fee"}
ACCOUNTS = {400000: "Product Sales", 251000: "Tax Payable", 450000: "Sales Discounts"}
TAXES = {1: ("Sales Tax 8%", Decimal("0.08")), 2: ("Exempt", Decimal(0))}
ACTIVE = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "KWD")
MOVE_WRITABLE = {"move_type", "partner_id", "currency_id", "invoice_date", "invoice_date_due", "ref", "invoice_origin",
                 "invoice_line_ids", "journal_id", "narration", "payment_reference", "invoice_payment_term_id",
                 "is_move_sent"}
LINE_WRITABLE = {"name", "quantity", "price_unit", "product_id", "account_id", "tax_ids", "discount", "display_type"}
PARTNER_WRITABLE = {"name", "ref", "email", "phone", "street", "street2", "city", "zip", "country_id", "state_id",
                    "customer_rank", "is_company", "vat", "lang"}
TEMPLATES = {"account.email_template_edi_invoice"}
RECORD_METHODS = {"read", "write", "action_post", "message_post_with_source", "unlink"}
POSITIONAL = {"create": ("vals_list",), "write": ("vals",), "read": ("fields",), "search_read": ("domain", "fields"),
              "message_post_with_source": ("source_ref",)}


class OdooError(Exception):
    STATUS = {"odoo.exceptions.AccessDenied": 401, "werkzeug.exceptions.Unauthorized": 401,
              "odoo.exceptions.AccessError": 403, "odoo.exceptions.MissingError": 404}

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name, self.message = name, message

    @property
    def status(self) -> int:
        return self.STATUS.get(self.name, 422)

    def data(self) -> dict:
        return {"name": self.name, "message": self.message, "arguments": [self.message], "context": {},
                "debug": f"Traceback (most recent call last):\n  ...\n{self.name}: {self.message}\n"}


def user_error(message: str) -> OdooError:
    return OdooError("odoo.exceptions.UserError", message)


def _round(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)


def _matches(record: dict, domain: list) -> bool:
    for term in domain:
        if not isinstance(term, list) or len(term) != 3:
            raise OdooError("builtins.ValueError", f"Invalid leaf {term!r}")
        name, op, value = term
        have = record.get(name)
        have = have[0] if isinstance(have, list) and have else have
        if op == "=":
            ok = have == value
        elif op == "=ilike":
            ok = isinstance(have, str) and isinstance(value, str) and have.lower() == value.lower()
        elif op == "in":
            ok = have in value
        else:
            raise OdooError("builtins.ValueError", f"Invalid operator {op!r}")
        if not ok:
            return False
    return True


class OdooSimulator(Simulator):
    """One Odoo server with one database."""

    def __init__(self, database: str = DATABASE, login: str = LOGIN, price_digits: int = 2, qty_digits: int = 2,
                 rounding: str = "round_per_line", taxes: dict | None = None):
        super().__init__()
        self.database, self.login = database, login
        self.api_key = secrets.token_hex(20)  # Odoo's keys are 160 random bits
        self.uid = 7
        self.price_digits, self.qty_digits, self.rounding = price_digits, qty_digits, rounding
        self.taxes = dict(taxes or TAXES)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.partners: dict[int, dict] = {}
            self.moves: dict[int, dict] = {}
            self.mails: list[dict] = []
            self.faults.clear()
            self.forget()
            self.logins = 0
            self._ids = itertools.count(1)
            self._names = itertools.count(1)
            self.currencies = {i + 1: {"id": i + 1, "name": c, "active": True} for i, c in enumerate(ACTIVE)}

    # ------------------------------------------------------------ sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "odoo", "base_url": url, "database": self.database, "login": self.login,
                "api_key_env": "INVOICER_SANDBOX_ODOO_API_KEY",
                "lines": {"labor": {"product_id": 101}, "material": {"product_id": 102}, "fee": {"product_id": 103}},
                "taxes": {"taxable": [1], "exempt": []}, "tax_account": 251000, "discount_account": 450000}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_ODOO_API_KEY": self.api_key}

    def tokens(self) -> dict | None:
        return None  # an API key from the environment

    # ------------------------------------------------------------ helpers for tests

    def add_partner(self, **vals) -> int:
        with self.lock:
            return self._create_partner(vals)

    def pay(self, move_id: int, amount: Decimal) -> None:
        with self.lock:
            move = self.moves[move_id]
            move["amount_residual"] -= amount
            move["payment_state"] = "paid" if move["amount_residual"] <= 0 else "partial"

    # ------------------------------------------------------------ transports

    def version(self, request: Request) -> Reply:
        return Reply(200, {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"})

    def jsonrpc(self, request: Request) -> Reply:
        try:
            body = loads(request.body)
            params = body["params"]
        except (ValueError, KeyError, TypeError):
            return Reply(400, "<html><body>Bad Request</body></html>", {"Content-Type": "text/html"})
        with self.lock:
            try:
                result = self._service(params.get("service"), params.get("method"), params.get("args") or [])
            except OdooError as exc:
                return Reply(200, dumps({"jsonrpc": "2.0", "id": body.get("id"), "error": {
                    "code": 200, "message": "Odoo Server Error", "data": exc.data()}}))
        return Reply(200, dumps({"jsonrpc": "2.0", "id": body.get("id"), "result": result}))

    def json2(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() != "bearer " or auth[7:] != self.api_key:
            return Reply(401, dumps(OdooError("werkzeug.exceptions.Unauthorized", "Invalid apikey").data()))
        db = request.headers.get("x-odoo-database")
        if db is not None and db != self.database:
            return Reply(404, dumps(OdooError("werkzeug.exceptions.NotFound", f"database {db!r} not found").data()))
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return Reply(400, dumps(OdooError("werkzeug.exceptions.BadRequest", "not JSON").data()))
        body.pop("context", None)
        ids = body.pop("ids", None)
        with self.lock:
            try:
                result = self._execute(request.params["model"], request.params["method"], ids, body)
            except OdooError as exc:
                return Reply(exc.status, dumps(exc.data()))
        return Reply(200, dumps(result))

    def _service(self, service: str, method: str, args: list):
        if service == "common" and method == "authenticate":
            db, login, key = args[0], args[1], args[2]
            self.logins += 1
            return self.uid if (db, login, key) == (self.database, self.login, self.api_key) else False
        if service == "object" and method == "execute_kw":
            db, uid, key, model, name = args[:5]
            positional = list(args[5]) if len(args) > 5 else []
            kwargs = dict(args[6]) if len(args) > 6 else {}
            if (db, uid, key) != (self.database, self.uid, self.api_key):
                raise OdooError("odoo.exceptions.AccessDenied", "Access Denied")
            ids = positional.pop(0) if name in RECORD_METHODS and positional else None
            for pname, value in zip(POSITIONAL.get(name, ()), positional):
                kwargs[pname] = value
            if len(positional) > len(POSITIONAL.get(name, ())):
                raise OdooError("builtins.TypeError", f"{name}() takes fewer positional arguments")
            kwargs.pop("context", None)
            return self._execute(model, name, ids, kwargs)
        raise OdooError("builtins.KeyError", f"unknown method {service}.{method}")

    # ------------------------------------------------------------ the ORM, as far as invoicer uses it

    def _execute(self, model: str, method: str, ids, params: dict):
        handler = getattr(self, f"_{model.replace('.', '_')}_{method}", None)
        if handler is None:
            raise OdooError("builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'")
        try:
            return handler(ids, **params)
        except TypeError as exc:
            raise OdooError("builtins.TypeError", str(exc)) from None

    def _records(self, model: str) -> dict:
        return {"res.partner": self.partners, "account.move": self.moves, "res.currency": self.currencies}[model]

    def _read(self, model: str, record: dict, fields) -> dict:
        out = {}
        for name in fields or [k for k in record if k != "lines"]:
            value = record.get(name, False)
            if name == "partner_id" and value:
                value = [value, self.partners[value]["name"]]
            elif name == "currency_id" and value:
                value = [value, self.currencies[value]["name"]]
            out[name] = value
        out["id"] = record["id"]
        return out

    def _search_read(self, model: str, domain=None, fields=None, limit=None):
        rows = [r for r in self._records(model).values() if _matches(r, domain or [])
                and (model != "res.currency" or r["active"])]
        return [self._read(model, r, fields) for r in rows[:limit] if r]

    def _res_partner_search_read(self, ids, domain=None, fields=None, limit=None):
        return self._search_read("res.partner", domain, fields, limit)

    def _res_currency_search_read(self, ids, domain=None, fields=None, limit=None):
        return self._search_read("res.currency", domain, fields, limit)

    def _account_move_search_read(self, ids, domain=None, fields=None, limit=None):
        return self._search_read("account.move", domain, fields, limit)

    def _account_move_read(self, ids, fields=None):
        return [self._read("account.move", self.moves[i], fields) for i in ids or [] if i in self.moves]

    def _check_fields(self, model: str, vals: dict, allowed: set) -> None:
        for name in vals:
            if name not in allowed:
                raise OdooError("builtins.ValueError", f"Invalid field {name!r} on model {model!r}")

    def _create_partner(self, vals: dict) -> int:
        self._check_fields("res.partner", vals, PARTNER_WRITABLE)
        if not vals.get("name"):
            raise OdooError("odoo.exceptions.ValidationError", "The partner needs a name.")
        pid = next(self._ids) + 1000
        self.partners[pid] = {"id": pid, "email": False, "ref": False, **vals}
        return pid

    def _res_partner_create(self, ids, vals_list):
        return [self._create_partner(dict(v)) for v in vals_list]

    def _account_move_create(self, ids, vals_list):
        return [self._create_move(dict(v)) for v in vals_list]

    def _create_move(self, vals: dict) -> int:
        self._check_fields("account.move", vals, MOVE_WRITABLE)
        if vals.get("move_type") != "out_invoice":
            raise OdooError("odoo.exceptions.UserError", "invoicer's simulator knows only customer invoices")
        if vals.get("partner_id") not in self.partners:
            raise OdooError("odoo.exceptions.MissingError", "Record does not exist or has been deleted. "
                                                            f"(Record: res.partner({vals.get('partner_id')},))")
        currency = self.currencies.get(vals.get("currency_id"))
        if not currency or not currency["active"]:
            raise OdooError("odoo.exceptions.ValidationError", "The currency is not active.")
        for key in ("invoice_date", "invoice_date_due"):
            if vals.get(key):
                date.fromisoformat(vals[key])
        lines = []
        for command in vals.pop("invoice_line_ids", []) or []:
            if not (isinstance(command, list) and len(command) == 3 and command[0] == 0):
                raise OdooError("builtins.ValueError", f"Invalid command {command!r}: use (0, 0, values)")
            lines.append(self._line(dict(command[2]), currency["name"]))
        mid = next(self._ids)
        self.moves[mid] = {"id": mid, "name": "/", "state": "draft", "ref": False, "invoice_origin": False,
                           "payment_state": "not_paid", "is_move_sent": False, **vals, "lines": lines}
        self._compute(self.moves[mid])
        return mid

    def _line(self, vals: dict, currency: str) -> dict:
        self._check_fields("account.move.line", vals, LINE_WRITABLE)
        if vals.get("product_id") is not None and vals["product_id"] not in PRODUCTS:
            raise OdooError("odoo.exceptions.MissingError", f"Record does not exist or has been deleted. "
                                                            f"(Record: product.product({vals['product_id']},))")
        if vals.get("account_id") is not None and vals["account_id"] not in ACCOUNTS:
            raise OdooError("odoo.exceptions.MissingError", f"Record does not exist or has been deleted. "
                                                            f"(Record: account.account({vals['account_id']},))")
        tax_ids: list[int] = []
        for command in vals.get("tax_ids") or []:
            if not (isinstance(command, list) and command[:2] == [6, 0]):
                raise OdooError("builtins.ValueError", f"Invalid command {command!r} for tax_ids")
            tax_ids = list(command[2])
        if any(t not in self.taxes for t in tax_ids):
            raise OdooError("odoo.exceptions.MissingError", "Record does not exist or has been deleted. (account.tax)")
        qty = _round(dec(vals.get("quantity", 1)), self.qty_digits)  # Odoo rounds floats to the field's digits
        price = _round(dec(vals.get("price_unit", 0)), self.price_digits)
        discount = dec(vals.get("discount", 0))
        subtotal = money.round_money(qty * price * (1 - discount / 100), currency)
        return {**vals, "quantity": qty, "price_unit": price, "tax_ids": tax_ids, "price_subtotal": subtotal}

    def _compute(self, move: dict) -> None:
        cur = self.currencies[move["currency_id"]]["name"]
        untaxed = sum((l["price_subtotal"] for l in move["lines"]), Decimal(0))
        if self.rounding == "round_per_line":
            tax = sum((money.round_money(l["price_subtotal"] * self.taxes[t][1], cur)
                       for l in move["lines"] for t in l["tax_ids"]), Decimal(0))
        else:
            tax = sum((money.round_money(rate * sum((l["price_subtotal"] for l in move["lines"] if t in l["tax_ids"]),
                                                    Decimal(0)), cur) for t, (_, rate) in self.taxes.items()),
                      Decimal(0))
        move.update(amount_untaxed=untaxed, amount_tax=tax, amount_total=untaxed + tax, amount_residual=untaxed + tax)

    def _account_move_action_post(self, ids):
        for mid in ids or []:
            move = self.moves.get(mid)
            if move is None:
                raise OdooError("odoo.exceptions.MissingError", "Record does not exist or has been deleted.")
            if move["state"] != "draft":
                raise user_error("Only draft journal entries can be posted.")
            if not move["lines"]:
                raise user_error("You need to add a line before posting.")
            if move["amount_total"] < 0:
                raise user_error("You cannot validate an invoice with a negative total amount. "
                                 "You should create a credit note instead.")
            year = (move.get("invoice_date") or date.today().isoformat())[:4]
            move.update(state="posted", name=f"INV/{year}/{next(self._names):05d}")
        return False

    def _account_move_write(self, ids, vals):
        self._check_fields("account.move", vals, MOVE_WRITABLE)
        for mid in ids or []:
            move = self.moves[mid]
            if move["state"] == "posted" and set(vals) - {"is_move_sent", "narration"}:
                raise user_error("You cannot modify a posted entry of this journal.")
            move.update(vals)
        return True

    def _account_move_message_post_with_source(self, ids, source_ref, subtype_xmlid=None, partner_ids=None,
                                               render_values=None, message_type="notification"):
        if source_ref not in TEMPLATES:
            raise OdooError("builtins.ValueError", f"External ID not found in the system: {source_ref}")
        for mid in ids or []:
            move = self.moves[mid]
            partner = self.partners[move["partner_id"]]
            if partner.get("email"):
                self.mails.append({"move": mid, "name": move["name"], "to": partner["email"],
                                   "template": source_ref, "subtype": subtype_xmlid})
        return len(self.mails)

    routes = [
        ("GET", r"/web/version", version),
        ("POST", r"/jsonrpc", jsonrpc),
        ("POST", r"/json/2/(?P<model>[a-z0-9_.]+)/(?P<method>[a-z0-9_]+)", json2),
    ]


SIMULATOR = OdooSimulator
