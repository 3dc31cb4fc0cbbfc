"""Odoo (slug `odoo`): auth and HTTP over JSON-RPC or JSON-2; the mapping lives in transform.py.

Tenant options (platforms.<name> in the tenants file):
  base_url         the Odoo server, e.g. https://acme.odoo.com (required; no default)
  database         the database name (required for JSON-RPC; sent as X-Odoo-Database with JSON-2)
  login            the (bot) user's login, for JSON-RPC's common.authenticate (required for jsonrpc)
  api_key_env      env var holding that user's API key (default INVOICER_ODOO_API_KEY)
  api              jsonrpc (default: POST /jsonrpc, service object, execute_kw; every version) |
                   json2 (Odoo 19+: POST /json/2/<model>/<method>, Authorization: bearer <key>)
  lines            {labor, material, fee}: {product_id: <id>} or {account_id: <id>} per kind (required)
  tax_mode         tax_line (default, exact) | taxes (Odoo computes; refused before posting if not ours)
  taxes            {taxable: [ids], exempt: [ids]}: account.tax ids (tax_mode taxes)
  tax_account, discount_account   account.account ids for the tax line and the discount line
  price_digits, qty_digits         the database's "Product Price" / unit-of-measure decimal accuracy (2, 2)
  journal_id       the sales journal (default: Odoo's default sales journal)
  send             true: after posting, Odoo emails the invoice with its invoice mail template
  mail_template    the template's XML id (default account.email_template_edi_invoice)

Exactly once: Odoo has no idempotency key. The invoice's `ref` is our number and `invoice_origin` our
mark; every create first searches `account.move` by `ref` (a move with our ref but not our mark is
someone else's: Rejected). `create` makes the move and all its lines in one transaction, so a lost answer
leaves nothing or a whole draft; a draft found is checked and posted (`action_post`), a posted one returned.
Sending sets `is_move_sent`, and a move that has it is not sent again.

Errors: JSON-RPC answers HTTP 200 with an `error` object; its `data.name` (odoo.exceptions.AccessDenied,
ValidationError, UserError ...) becomes AuthFailed / Rejected / Unavailable (transform.rpc_error). JSON-2
answers 4xx/5xx with {name, message}, typed by status.

Limits: Odoo publishes none for the external API; invoicer holds 10 calls a second and 4 at once per
database, so one tenant's burst cannot swamp a small Odoo server. A 429 from a proxy in front waits.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading

import requests

from ...errors import AuthFailed, MappingMissing, Rejected
from .. import http
from ..base import Created, PaymentStatus
from ..ledger import LookupFirst
from ..jsonmoney import dumps, loads
from ..ratelimit import within
from ..registry import register
from . import transform

log = logging.getLogger("invoicer.providers.odoo")

SLUG = "odoo"
APIS = ("jsonrpc", "json2")
RATES = [within(10, 1, burst=4)]
CONCURRENCY = 4
POSITIONAL = {"create": ("vals_list",), "write": ("vals",), "message_post_with_source": ("source_ref",)}
_uids: dict[tuple[str, str, str, str], int] = {}
_uid_lock = threading.Lock()


def _json2_message(resp: requests.Response) -> str:
    try:
        body = loads(resp.content)
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict):
        return transform.error_text(body.get("name") or "", body.get("message") or "")
    return str(body)[:300]


@register
class Odoo(LookupFirst):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "send_invoice", "payment_status"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.mapping = transform.Mapping.from_options(self.options, self.platform)
        self.api = str(self.options.get("api") or "jsonrpc")

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        api = str(options.get("api") or "jsonrpc")
        if api not in APIS:
            return [f"platforms.{name}.api: {api!r} is not one of {', '.join(APIS)}"]
        needed = ("base_url", "database", "login") if api == "jsonrpc" else ("base_url",)
        problems = [f"platforms.{name}.{key} is not set" for key in needed if not options.get(key)]
        return problems + transform.Mapping.from_options(options, name).problems()

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        transform.line_vals(invoice, self.mapping)

    def _make(self, invoice: dict) -> dict:
        """The move and all its lines in one `create` (one Odoo transaction): nothing, or a whole draft."""
        vals = transform.move_vals(invoice, self._partner(invoice["customer"]), self._currency(invoice["currency"]),
                                   self.mapping, self.options.get("journal_id"))
        [move_id] = self.call("account.move", "create", vals_list=[vals])
        return self._read(move_id)

    def send_invoice(self, created: Created, invoice: dict, key: str) -> None:
        """Odoo emails the posted invoice with its invoice template, once (`is_move_sent`)."""
        move = self._read(int(created.external_id))
        if move.get("is_move_sent"):
            return
        if not invoice["customer"].get("email"):
            log.warning("odoo: invoice %s has no customer email; not sent by Odoo", invoice["number"])
            return
        partner = move["partner_id"][0] if isinstance(move.get("partner_id"), list) else move.get("partner_id")
        self.call("account.move", "message_post_with_source", ids=[move["id"]],
                  source_ref=self.options.get("mail_template") or transform.TEMPLATE,
                  subtype_xmlid="mail.mt_comment", partner_ids=[partner])
        self.call("account.move", "write", ids=[move["id"]], vals={"is_move_sent": True})

    def payment_status(self, external_id: str) -> PaymentStatus:
        move = self._read(int(external_id))
        currency = move["currency_id"][1] if isinstance(move.get("currency_id"), list) else None
        return transform.payment_status(move, currency)

    # ------------------------------------------------------------ records

    def _read(self, move_id: int) -> dict:
        rows = self.call("account.move", "read", ids=[move_id], fields=transform.MOVE_FIELDS)
        if not rows:
            raise Rejected(f"odoo has no account.move {move_id}")
        return rows[0]

    def _by_reference(self, invoice: dict) -> dict | None:
        rows = self.call("account.move", "search_read", domain=transform.lookup_domain(invoice["number"]),
                         fields=transform.MOVE_FIELDS)
        return transform.pick(rows, invoice)

    def _finish(self, move: dict, doc: dict) -> Created:
        if move.get("state") == "draft":
            transform.check_total(move, doc)  # never post a total that is not ours
            self.call("account.move", "action_post", ids=[move["id"]])
            move = self._read(move["id"])
        return transform.created(move, doc, self._base())

    def _currency(self, code: str) -> int:
        refs = self.ctx.refs
        known = refs.get("currency", code)
        if known:
            return int(known)
        rows = self.call("res.currency", "search_read", domain=[["name", "=", code]], fields=["id", "name"])
        if not rows:
            raise Rejected(f"the currency {code} is not active in the Odoo database: activate it "
                           f"(Accounting > Configuration > Currencies)")
        return int(refs.put("currency", code, str(rows[0]["id"])))

    def _partner(self, customer: dict) -> int:
        refs = self.ctx.refs
        ids = customer.get("external_ids") or {}
        given = ids.get(SLUG) or ids.get(self.platform)
        known = refs.get("customer", customer["id"]) or (given and refs.put("customer", customer["id"], str(given)))
        if known:
            return int(known)
        found = None
        for domain in ([["ref", "=", customer["id"]]], [["email", "=ilike", customer.get("email")]]):
            if found is None and domain[0][2]:
                rows = self.call("res.partner", "search_read", domain=domain, fields=["id"], limit=1)
                found = rows[0]["id"] if rows else None
        if found is None:
            [found] = self.call("res.partner", "create", vals_list=[transform.partner_vals(customer)])
        return int(refs.put("customer", customer["id"], str(found)))

    # ------------------------------------------------------------ auth and HTTP

    def _base(self) -> str:
        if not self.options.get("base_url") and not os.environ.get("INVOICER_ODOO_BASE_URL"):
            raise MappingMissing(f"platforms.{self.platform}.base_url: the Odoo server's address is not set")
        return http.base_url(SLUG, self.options, "")

    def _key(self) -> str:
        name = self.options.get("api_key_env") or "INVOICER_ODOO_API_KEY"
        value = os.environ.get(name)
        if not value:
            raise MappingMissing(f"environment variable {name} (platforms.{self.platform}.api_key_env) is not set")
        return value

    def _slot(self):
        where = hashlib.sha256(f"{self._base()}|{self.options.get('database') or ''}".encode()).hexdigest()[:16]
        return self.ctx.limiter.slot(f"{SLUG}:{where}", RATES, concurrency=CONCURRENCY)

    def call(self, model: str, method: str, ids: list[int] | None = None, **named):
        """One ORM method on one model, over the tenant's chosen API; the method's return value."""
        if self.api == "json2":
            return self._json2(model, method, ids, named)
        return self._jsonrpc(model, method, ids, named)

    def _json2(self, model: str, method: str, ids, named: dict):
        body = {**({"ids": ids} if ids is not None else {}), **named}
        headers = {"Authorization": f"bearer {self._key()}", "Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "invoicer"}
        if self.options.get("database"):
            headers["X-Odoo-Database"] = str(self.options["database"])
        with self._slot():
            resp = http.call("POST", f"{self._base()}/json/2/{model}/{method}", slug=SLUG, message=_json2_message,
                             data=dumps(body).encode(), headers=headers)
        return loads(resp.content) if resp.content else None

    def _rpc(self, service: str, method: str, args: list):
        payload = {"jsonrpc": "2.0", "method": "call", "id": 1,
                   "params": {"service": service, "method": method, "args": args}}
        with self._slot():
            resp = http.call("POST", f"{self._base()}/jsonrpc", slug=SLUG, data=dumps(payload).encode(),
                             headers={"Content-Type": "application/json", "User-Agent": "invoicer"})
        body = loads(resp.content)
        if body.get("error"):
            raise transform.rpc_error(body["error"], SLUG)
        return body.get("result")

    def _uid(self, key: str, forget: bool = False) -> int:
        db, login = str(self.options.get("database") or ""), str(self.options.get("login") or "")
        if not db or not login:
            raise MappingMissing(f"platforms.{self.platform}.database and .login are needed for api jsonrpc")
        cache = (self._base(), db, login, hashlib.sha256(key.encode()).hexdigest())
        with _uid_lock:
            if forget:
                _uids.pop(cache, None)
            elif cache in _uids:
                return _uids[cache]
        uid = self._rpc("common", "authenticate", [db, login, key, {}])
        if not uid:
            raise AuthFailed(f"odoo: the login {login!r} and its API key were refused by database {db!r}")
        with _uid_lock:
            _uids[cache] = int(uid)
        return int(uid)

    def _jsonrpc(self, model: str, method: str, ids, named: dict):
        key = self._key()
        args = ([ids] if ids is not None else []) + [named.pop(n) for n in POSITIONAL.get(method, ()) if n in named]
        for attempt in (1, 2):
            uid = self._uid(key, forget=attempt == 2)
            try:
                return self._rpc("object", "execute_kw",
                                 [self.options["database"], uid, key, model, method, args, named])
            except AuthFailed:
                if attempt == 2:
                    raise  # a fresh login was refused too: a person fixes the key or the user's rights
        raise AssertionError("unreachable")
