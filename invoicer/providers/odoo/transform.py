"""Pure mapping for Odoo: the canonical invoice -> `account.move` values (customer invoice, `move_type`
out_invoice, lines as `(0, 0, vals)` commands), Odoo's records -> Created / PaymentStatus, and Odoo's error
objects -> typed errors. No I/O here.

Field names are those of Odoo's ORM models (addons/account/models/account_move.py, account_move_line.py;
../shared/vendor-specs/odoo/SOURCE.txt): the database's own /doc page lists them per version.

How our total becomes Odoo's amount_total, to the minor unit. Odoo computes tax itself from each line's
`tax_ids`; there is no tax override. So, the tenant's `tax_mode`:
  * `tax_line` (default, exact): no line carries a tax; our discount is one line (negative price_unit) and
    our tax is one line on `tax_account`, so Odoo only multiplies and adds. Odoo keeps `price_unit` to the
    "Product Price" decimal accuracy and `quantity` to the unit-of-measure accuracy (2 and 2 in a new
    database; `price_digits`, `qty_digits` say what the tenant's database uses): a line that would be
    rounded goes as 1 x its amount with the working in its label, and an invoice with an amount finer than
    `price_digits` (a KWD invoice on a 2-digit database) is refused before anything is sent.
  * `taxes`: lines carry the tenant's taxable/exempt tax ids; the discount is split into a taxable and an
    untaxed line, and Odoo computes the tax. The adapter compares Odoo's total with ours on the draft and
    posts only when they agree (Rejected otherwise, the draft left for a person).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ... import money
from ...errors import AuthFailed, MappingMissing, ProviderError, Rejected, Unavailable
from .. import ledger
from ..base import Created, PaymentStatus
from ..jsonmoney import dec

KINDS = ("labor", "material", "fee")
TAX_MODES = ("tax_line", "taxes")
LABEL_MAX = 500  # a line's `name` is free text; kept readable
MOVE_FIELDS = ["id", "name", "state", "ref", "invoice_origin", "partner_id", "currency_id", "amount_untaxed",
               "amount_tax", "amount_total", "amount_residual", "payment_state", "is_move_sent"]
TEMPLATE = "account.email_template_edi_invoice"  # the "Invoice: Sending" mail template of the account module


@dataclass(frozen=True)
class Mapping:
    """The tenant's Odoo settings the transform needs."""
    platform: str
    lines: dict = field(default_factory=dict)  # kind -> {"product_id": id} | {"account_id": id}
    tax_mode: str = "tax_line"
    taxes: dict = field(default_factory=dict)  # {taxable: [ids], exempt: [ids]}
    tax_account: int | None = None
    discount_account: int | None = None
    price_digits: int = 2
    qty_digits: int = 2

    @classmethod
    def from_options(cls, options: dict, platform: str) -> "Mapping":
        def num(key):
            value = options.get(key)
            return None if value in (None, "") else int(value)

        return cls(platform=platform or "odoo", lines=dict(options.get("lines") or {}),
                   tax_mode=str(options.get("tax_mode") or "tax_line"), taxes=dict(options.get("taxes") or {}),
                   tax_account=num("tax_account"), discount_account=num("discount_account"),
                   price_digits=int(options.get("price_digits", 2)), qty_digits=int(options.get("qty_digits", 2)))

    def _key(self, *parts: str) -> str:
        return ".".join(["platforms", self.platform, *parts])

    def target(self, kind: str) -> dict:
        """{"product_id": id} or {"account_id": id} for a kind of line."""
        value = self.lines.get(kind)
        if isinstance(value, dict):
            found = {k: int(value[k]) for k in ("product_id", "account_id") if value.get(k) not in (None, "")}
            if len(found) == 1:
                return found
        raise MappingMissing(f"{self._key('lines', kind)}: set {{product_id: <id>}} or {{account_id: <id>}} for "
                             f"{kind} lines (the Odoo product or income account)")

    def tax_ids(self, taxable: bool) -> list[int]:
        if self.tax_mode != "taxes":
            return []
        if taxable and not self.taxes.get("taxable"):
            raise MappingMissing(f"{self._key('taxes', 'taxable')}: the Odoo tax ids for taxable lines are not set")
        value = self.taxes.get("taxable" if taxable else "exempt") or []
        return [int(v) for v in (value if isinstance(value, list) else [value])]

    def account(self, name: str) -> int:
        value = getattr(self, name)
        if not value:
            raise MappingMissing(f"{self._key(name)}: the Odoo account id is not set (tax_mode {self.tax_mode} "
                                 f"books the invoice's {'tax' if name == 'tax_account' else 'discount'} on it)")
        return value

    def problems(self) -> list[str]:
        if self.tax_mode not in TAX_MODES:
            return [f"{self._key('tax_mode')}: {self.tax_mode!r} is not one of {', '.join(TAX_MODES)}"]
        checks = [lambda k=k: self.target(k) for k in KINDS] + [lambda: self.account("discount_account")]
        checks.append((lambda: self.tax_ids(True)) if self.tax_mode == "taxes" else (lambda: self.account("tax_account")))
        return ledger.missing(checks)


def origin(doc: dict) -> str:
    """Our mark on the move (`invoice_origin`, "Source Document"), which tells our invoice from another."""
    return f'invoicer:{doc["tenant"]}/{doc["job"]["id"]}'


def lookup_domain(number: str) -> list:
    return [["move_type", "=", "out_invoice"], ["ref", "=", number]]


def _fits(value: Decimal, digits: int) -> bool:
    return value == value.quantize(Decimal(1).scaleb(-digits))


def _line(label: str, qty: Decimal, price: Decimal, target: dict, tax_ids: list[int]) -> dict:
    return {"name": " ".join(label.split())[:LABEL_MAX], "quantity": qty, "price_unit": price, **target,
            "tax_ids": [[6, 0, tax_ids]]}


def partner_vals(customer: dict) -> dict:
    vals: dict[str, Any] = {"name": customer["name"], "ref": customer["id"], "customer_rank": 1}
    for ours, theirs in (("email", "email"), ("phone", "phone")):
        if customer.get(ours):
            vals[theirs] = customer[ours]
    addr = customer.get("billing_address") or {}
    for ours, theirs in (("line1", "street"), ("city", "city"), ("postal_code", "zip")):
        if addr.get(ours):
            vals[theirs] = addr[ours]
    return vals


def line_vals(doc: dict, mapping: Mapping) -> list[dict]:
    """One value dict per line (label, quantity, price_unit, product or account, taxes), in order."""
    cur = doc["currency"]
    out = []
    for line in doc["lines"]:  # a kind we have no mapping for is MappingMissing, naming it
        qty, price, label = ledger.sent_as(line, cur, mapping.qty_digits, mapping.price_digits)
        out.append(_line(label, qty, price, mapping.target(line["kind"]), mapping.tax_ids(line["taxable"])))
    if doc["discount_total"]:
        label = ledger.discount_label(doc)
        target = {"account_id": mapping.account("discount_account")}
        taxed = sum((l["amount"] for l in doc["lines"] if l["taxable"]), Decimal(0))
        share = money.round_money(doc["discount_total"] * taxed / doc["subtotal"], cur) \
            if mapping.tax_mode == "taxes" and doc["subtotal"] else Decimal(0)
        for amount, taxable in ((share, True), (doc["discount_total"] - share, False)):
            if amount:
                out.append(_line(label, Decimal(1), -amount, target, mapping.tax_ids(taxable)))
    if mapping.tax_mode == "tax_line" and doc["tax"]["amount"]:
        out.append(_line(ledger.tax_label(doc), Decimal(1), doc["tax"]["amount"], {"account_id": mapping.account("tax_account")}, []))
    for l in out:
        if not _fits(l["price_unit"], mapping.price_digits):
            raise Rejected(f"{doc['number']}: the amount {l['price_unit']} {cur} has more decimals than the Odoo "
                           f"database keeps in a unit price ({mapping.price_digits}); raise the \"Product Price\" "
                           f"decimal accuracy in Odoo and set platforms.{mapping.platform}.price_digits")
    if mapping.tax_mode == "tax_line":
        expected = sum((money.round_money(l["quantity"] * l["price_unit"], cur) for l in out), Decimal(0))
        if expected != doc["total"]:  # the money rules and this mapping disagree: a bug, never sent
            raise Rejected(f"Odoo lines for {doc['number']} add up to {expected}, the invoice total is {doc['total']}")
    return out


def move_vals(doc: dict, partner_id: int, currency_id: int, mapping: Mapping, journal_id: int | None = None) -> dict:
    vals: dict[str, Any] = {
        "move_type": "out_invoice",
        "partner_id": partner_id,
        "currency_id": currency_id,
        "invoice_date": doc["issued_on"].isoformat(),
        "invoice_date_due": doc["due_on"].isoformat(),
        "ref": doc["number"],
        "invoice_origin": origin(doc),
        "invoice_line_ids": [[0, 0, l] for l in line_vals(doc, mapping)],
    }
    if journal_id:
        vals["journal_id"] = journal_id
    return vals


# ---------------------------------------------------------------- Odoo -> canonical

def amount(value: Any, currency: str) -> Decimal:
    """An Odoo monetary field (a JSON float such as 251.1) as Decimal in the currency's unit."""
    return money.round_money(dec(value), currency)


def pick(rows: list[dict], doc: dict) -> dict | None:
    """Our move among those with our reference; Rejected if the reference is taken by another's invoice."""
    live = [r for r in rows if r.get("state") != "cancel"]
    if not live:
        return None
    ours = [r for r in live if r.get("invoice_origin") == origin(doc)]
    if not ours:
        raise Rejected(f"Odoo already has customer invoice {live[0].get('name')} with reference {doc['number']} "
                       f"that invoicer did not create")
    posted = [r for r in ours if r.get("state") == "posted"]
    return (posted or ours)[0]


def check_total(move: dict, doc: dict) -> None:
    total = amount(move.get("amount_total"), doc["currency"])
    if total != doc["total"]:
        left = "; the invoice was left in draft" if move.get("state") == "draft" else ""
        raise Rejected(f"Odoo invoice {move.get('name')} ({doc['number']}) totals {total} {doc['currency']}, ours is "
                       f"{doc['total']}: check the taxes (or use tax_mode tax_line){left}")


def created(move: dict, doc: dict, base_url: str) -> Created:
    check_total(move, doc)
    return Created(external_id=str(move["id"]), number=move.get("name"),
                   url=f"{base_url}/web#id={move['id']}&model=account.move&view_type=form",
                   detail={"total": str(amount(move.get("amount_total"), doc["currency"])), "state": move.get("state"),
                           "sent": bool(move.get("is_move_sent"))})


def payment_status(move: dict, currency: str | None = None) -> PaymentStatus:
    cur = currency or "USD"
    total, residual = amount(move.get("amount_total"), cur), amount(move.get("amount_residual"), cur)
    return PaymentStatus(amount_paid=total - residual, amount_due=residual,
                         paid=move.get("payment_state") in ("paid", "in_payment") or residual <= 0)


# ---------------------------------------------------------------- Odoo errors -> typed errors

AUTH = ("odoo.exceptions.AccessDenied", "odoo.exceptions.AccessError", "werkzeug.exceptions.Unauthorized",
        "werkzeug.exceptions.Forbidden")
REFUSED = ("odoo.exceptions.ValidationError", "odoo.exceptions.UserError", "odoo.exceptions.MissingError",
           "odoo.exceptions.RedirectWarning", "builtins.ValueError", "builtins.TypeError", "builtins.KeyError",
           "werkzeug.exceptions.NotFound", "werkzeug.exceptions.UnprocessableEntity")


def error_text(name: str, message: str) -> str:
    return f"{name}: {' '.join(str(message).split())[:300]}" if name else str(message)[:300]


def rpc_error(error: dict, slug: str = "odoo") -> ProviderError:
    """The typed error for a JSON-RPC `error` object (Odoo answers HTTP 200 with it)."""
    data = error.get("data") or {}
    name = data.get("name") or ""
    text = f"{slug}: {error_text(name, data.get('message') or error.get('message') or '')}"
    if name in AUTH:
        return AuthFailed(text)
    if name in REFUSED:
        return Rejected(text)
    return Unavailable(text)  # serialization failures, a worker restart, an unknown server error: retried, capped
