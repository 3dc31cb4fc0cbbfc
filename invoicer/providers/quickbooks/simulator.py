"""A small, faithful stand-in for QuickBooks Online (Accounting API v3, JSON) and Intuit's token endpoint.

Only what invoicer uses: create/read/query/send invoices, query/create customers, refresh tokens.
It follows Intuit's documentation where it says something and integrators' reports where it does not:

  * auth: `Authorization: Bearer <access token>`; a missing, unknown or expired token -> 401 with an
    AuthenticationFault body (code 3200). Access tokens live 3600 s.
  * token endpoint `POST /oauth2/v1/tokens/bearer` (HTTP Basic client_id:client_secret, form
    grant_type=refresh_token): every refresh issues a NEW access token AND a NEW refresh token; the old
    refresh token stops working (400 {"error": "invalid_grant"}).
  * `requestid` query parameter (<= 50 chars, unique per company): a repeated id gets the first response
    again and nothing is done twice (Intuit blog "Request ID update", 2015). QuickBooks does not compare
    the body of the repeat; neither does this simulator. Only responses of operations that took effect
    (2xx) are replayed: whether QuickBooks also replays refusals is not documented (assumption).
  * invoices: required fields (Line, CustomerRef), every ref must exist (2500), Amount must equal
    UnitPrice x Qty rounded half-up to the cent (6070; the check integrators report, not in Intuit's docs),
    one DiscountLineDetail line at most, DocNumber <= 21 chars (2050) and unique (6140 "Duplicate Document
    Number Error"), TotalAmt = sum(item lines) - discount + tax, where tax is TxnTaxDetail.TotalTax when
    given (an override) and else the simulator's `tax_rate` on taxable lines (after the discount when
    ApplyTaxAfterDiscount). `ignore_tax_override = True` makes it compute its own tax anyway, to show a
    platform total that differs from ours. The response carries a SubTotalLineDetail line, like QuickBooks.
  * customers: DisplayName unique case-insensitively across customers and the vendor and employee names
    in `other_names` (which a customer query does not show): 400 ValidationFault 6240 "Duplicate Name
    Exists Error" with the Detail integrators quote (PHP SDK issue #241; some answers add " Id=N", which
    the adapter does not rely on). `before_customer_create(body)` lets a test act as another client
    between the adapter's lookup and its create.
  * request bodies: every invoice and customer create body is checked against Intuit's own XSDs
    (../shared/vendor-specs/quickbooks, types Invoice and Customer; see schema.py) before any rule above,
    and refused like QuickBooks refuses a body it cannot read: 400 ValidationFault, code 2010 "Request has
    invalid or unsupported property", the schema's complaint in Detail. ONLY when that folder and the
    xmlschema package are here -- the product runs without both, and then only the rules above apply.
    `INVOICER_QUICKBOOKS_SPEC` points at another copy of the folder; `spec=False` turns the check off.
  * limits (Intuit "API call limits and throttles"): 500 requests/min and 10/s per realm, 10 concurrent;
    over a limit -> 429 with the XML Fault QuickBooks sends even to JSON clients ("message=ThrottleExceeded;
    errorCode=003001; statusCode=429", type SERVICE). Intuit documents no Retry-After header ("wait 60
    seconds"): none is sent unless `retry_after` is set.

  * payments and webhooks: `receive_payment(invoice_id, amount)` records a Payment applied to the invoice
    (Line[].LinkedTxn TxnType Invoice, its Balance lowered) that `GET /payment/{id}` answers (610 Object Not
    Found for another id); `notification(entities)` is the signed body and headers Intuit would POST to the
    app's webhook endpoint: `intuit-signature` = base64 HMAC-SHA256 of the body with the app's verifier token
    (`webhook_token`), in the original eventNotifications format or, with `cloudevents=True`, as CloudEvents.

Tests read `invoices`, `customers`, `payments`, `sent` and `received` to assert on the vendor's side.
"""
from __future__ import annotations

import base64
import copy
import itertools
import json
import uuid
import re
import secrets
import threading
import time
from collections import deque
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

from ..simulate import Reply, Request, Simulator
from . import schema, webhooks
from .transform import dumps, loads

ACCESS_TTL = 3600
REFRESH_TTL = 8726400  # 101 days, what Intuit answers in x_refresh_token_expires_in
CENT = Decimal("0.01")

_INVOICE_FIELDS = {"Id", "SyncToken", "DocNumber", "TxnDate", "CurrencyRef", "ExchangeRate", "PrivateNote", "Line",
                   "TxnTaxDetail", "CustomerRef", "CustomerMemo", "BillAddr", "ShipAddr", "SalesTermRef",
                   "DueDate", "TotalAmt", "ApplyTaxAfterDiscount", "PrintStatus", "EmailStatus", "BillEmail",
                   "BillEmailCc", "BillEmailBcc", "Balance", "Deposit", "AllowOnlinePayment",
                   "AllowOnlineCreditCardPayment", "AllowOnlineACHPayment", "GlobalTaxCalculation", "ClassRef",
                   "DepartmentRef", "TrackingNum", "ShipDate", "CustomField", "AutoDocNumber", "MetaData", "domain",
                   "sparse"}
_LINE_FIELDS = {"Id", "LineNum", "Description", "Amount", "DetailType", "SalesItemLineDetail", "DiscountLineDetail",
                "SubTotalLineDetail", "DescriptionLineDetail", "LinkedTxn"}
_ITEM_DETAIL_FIELDS = {"ItemRef", "ClassRef", "UnitPrice", "RatePercent", "PriceLevelRef", "MarkupInfo", "Qty",
                       "UOMRef", "ItemAccountRef", "TaxCodeRef", "ServiceDate", "TaxInclusiveAmt", "DiscountRate",
                       "DiscountAmt"}
_DISCOUNT_DETAIL_FIELDS = {"DiscountRef", "PercentBased", "DiscountPercent", "DiscountAccountRef", "ServiceDate",
                           "ClassRef", "TaxCodeRef"}
_TAX_FIELDS = {"DefaultTaxCodeRef", "TxnTaxCodeRef", "TotalTax", "TaxLine", "UseAutomatedSalesTax"}
_CUSTOMER_FIELDS = {"Id", "SyncToken", "DisplayName", "Title", "GivenName", "MiddleName", "FamilyName", "Suffix",
                    "CompanyName", "PrimaryEmailAddr", "PrimaryPhone", "Mobile", "BillAddr", "ShipAddr", "Notes",
                    "CurrencyRef", "Active", "Taxable", "PreferredDeliveryMethod", "MetaData", "domain", "sparse"}


class Fault(Exception):
    def __init__(self, code: str, message: str, detail: str = "", kind: str = "ValidationFault", status: int = 400,
                 element: str | None = None):
        super().__init__(message)
        self.code, self.message, self.detail, self.kind, self.status, self.element = \
            code, message, detail, kind, status, element


def _now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds")


def _json_reply(status: int, body: Any, headers: dict | None = None) -> Reply:
    return Reply(status, dumps(body), {"Content-Type": "application/json;charset=UTF-8", **(headers or {})})


def fault_reply(f: Fault) -> Reply:
    error = {"Message": f.message, "Detail": f.detail or f.message, "code": f.code}
    if f.element:
        error["element"] = f.element
    return _json_reply(f.status, {"Fault": {"Error": [error], "type": f.kind}, "time": _now_iso()})


def _dec(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise Fault("2010", "Request has invalid or unsupported property", f"{field}: not a number", element=field)
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise Fault("2010", "Request has invalid or unsupported property", f"{field}: not a number",
                    element=field) from None
    if not out.is_finite():
        raise Fault("2010", "Request has invalid or unsupported property", f"{field}: not a number", element=field)
    return out


def _date(value: Any, field: str) -> None:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        raise Fault("2010", "Request has invalid or unsupported property", f"{field}: {value!r} is not a date",
                    element=field) from None


def _unknown(obj: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise Fault("2010", "Request has invalid or unsupported property",
                    f"Property Name:{extra[0]} specified is unsupported or invalid", element=f"{where}.{extra[0]}")


def _ref(obj: dict, field: str) -> str | None:
    ref = obj.get(field)
    if ref is None:
        return None
    if not isinstance(ref, dict) or not str(ref.get("value") or ""):
        raise Fault("2010", "Request has invalid or unsupported property", f"{field}: a reference needs a value",
                    element=field)
    return str(ref["value"])


def _address_of(customer: dict) -> str | None:
    return (customer.get("PrimaryEmailAddr") or {}).get("Address")


def _required(field: str) -> Fault:
    return Fault("2020", "Required param missing, need to supply the required value for the API",
                 f"Required parameter {field} is missing in the request", element=field)


def _invalid_ref(what: str, value: str) -> Fault:
    return Fault("2500", "Invalid Reference Id",
                 f"Invalid Reference Id : {what} {value} does not exist or has been made inactive", element=what)


class QuickBooksSimulator(Simulator):
    """QuickBooks Online for one app (client id/secret) and one company (`realm_id`)."""

    def __init__(self, *, realm_id: str = "9341453050000001", client_id: str = "sim-client-id",
                 client_secret: str = "sim-client-secret", items: dict[str, str] | None = None,
                 tax_codes: set[str] | None = None, tax_rate: Decimal = Decimal("0"),
                 per_minute: int = 500, per_second: int = 10, concurrency: int = 10,
                 clock: Callable[[], float] = time.time, spec: str | Path | bool | None = None,
                 webhook_token: str = "sim-verifier-token"):
        super().__init__()
        # Intuit's XSDs (a folder): None/True -> INVOICER_QUICKBOOKS_SPEC or ../shared; False -> no schema check
        folder = None if spec is False else schema.spec_dir() if spec in (None, True) else Path(spec)
        self.validate: schema.Validator | None = schema.validator(folder) if folder is not None else None
        self.spec = str(folder) if self.validate else None  # where the check reads from; None: no check
        self.realm_id, self.client_id, self.client_secret = realm_id, client_id, client_secret
        self.items = dict(items or {"1": "Services", "2": "Materials", "3": "Fees"})
        self.tax_codes = set(tax_codes or {"TAX", "NON"})
        self.tax_rate = tax_rate
        self.ignore_tax_override = False
        self.per_minute, self.per_second, self.concurrency = per_minute, per_second, concurrency
        self.retry_after: str | None = None  # QuickBooks sends no Retry-After; set one to test honouring it
        self.clock = clock
        self.gate: threading.Event | None = None  # when set up, API requests wait here while counted in flight
        self.state = threading.RLock()
        self.access_tokens: dict[str, float] = {}  # token -> expires at (clock)
        self.refresh_tokens: dict[str, float] = {}  # token -> expires at; only the newest of a chain is valid
        self.invoices: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.webhook_token = webhook_token
        self.other_names: set[str] = set()  # DisplayNames of vendors and employees: a customer query shows none
        self.before_customer_create = None  # tests: called with the body first, as another client acting then
        self.sent: list[tuple[str, str]] = []  # (invoice id, address)
        self.replayed = 0
        self.token_refreshes = 0
        self.in_flight = 0
        self._stamps: deque[float] = deque()
        self._by_request_id: dict[tuple[str, str], Reply] = {}
        self._ids = itertools.count(130)
        self._next_doc = itertools.count(1001)

    # ------------------------------------------------------------ helpers for tests

    # the sandbox hook (invoicer/sandbox.py)
    def platform(self, url: str) -> dict:
        return {"provider": "quickbooks", "realm_id": self.realm_id, "base_url": url,
                "token_url": f"{url}/oauth2/v1/tokens/bearer", "items": {"labor": "1", "material": "2", "fee": "3"}}

    def env(self) -> dict[str, str]:
        return {"INVOICER_QUICKBOOKS_CLIENT_ID": self.client_id,
                "INVOICER_QUICKBOOKS_CLIENT_SECRET": self.client_secret,
                "INVOICER_QUICKBOOKS_WEBHOOK_TOKEN": self.webhook_token}

    def tokens(self) -> dict:
        return self.issue_tokens()

    def issue_tokens(self) -> dict:
        """A fresh token pair, as the authorization-code exchange would give; stored form of invoicer."""
        with self.state:
            access, refresh = self._new_pair()
        return {"access_token": access, "refresh_token": refresh, "expires_at": self.clock() + ACCESS_TTL}

    def expire_access_tokens(self) -> None:
        with self.state:
            for token in self.access_tokens:
                self.access_tokens[token] = self.clock() - 1

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        with self.state:
            inv = self.invoices[invoice_id]
            inv["Balance"] = max(Decimal(0), inv["Balance"] - amount)

    def receive_payment(self, invoice_id: str, amount: Decimal) -> str:
        """A customer payment applied to the invoice, as QuickBooks records it (its Balance lowered); its id."""
        with self.state:
            inv = self._invoice(invoice_id)
            amount = min(Decimal(amount), inv["Balance"])
            inv["Balance"] -= amount
            inv["SyncToken"] = str(int(inv["SyncToken"]) + 1)
            pay_id = str(next(self._ids))
            self.payments[pay_id] = {
                "Id": pay_id, "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": self._meta(),
                "TxnDate": date.today().isoformat(), "CustomerRef": dict(inv["CustomerRef"]),
                "TotalAmt": amount, "UnappliedAmt": Decimal(0), "ProcessPayment": False,
                "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}]}
        return pay_id

    def notification(self, entities: list[tuple[str, str, str]], realm_id: str | None = None,
                     cloudevents: bool = False, token: str | None = None) -> tuple[bytes, dict]:
        """The body and headers Intuit would POST to the webhook endpoint for these (entity, id, operation)
        changes, e.g. [("Payment", "131", "Create")]."""
        realm, now = realm_id or self.realm_id, _now_iso()
        if cloudevents:
            past = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
                    "Merge": "merged", "Emailed": "emailed"}
            payload: Any = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "intuit.sim",
                             "type": f"qbo.{name.lower()}.{past.get(op, op.lower())}.v1",
                             "datacontenttype": "application/json", "time": now, "intuitentityid": entity_id,
                             "intuitaccountid": realm, "data": {}} for name, entity_id, op in entities]
        else:
            payload = {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
                {"name": name, "id": entity_id, "operation": op, "lastUpdated": now}
                for name, entity_id, op in entities]}}]}
        body = json.dumps(payload).encode()
        return body, {webhooks.HEADER: webhooks.sign(body, token or self.webhook_token),
                      "Content-Type": "application/json"}

    def by_number(self, doc_number: str) -> list[dict]:
        return [inv for inv in self.invoices.values() if inv.get("DocNumber") == doc_number]

    def api_requests(self, suffix: str = "", method: str | None = None) -> list[Request]:
        return [r for r in self.received if r.path.startswith("/v3/") and r.path.endswith(suffix)
                and (method is None or r.method == method)]

    # ------------------------------------------------------------ the vendor's 429

    def rate_limited(self, request: Request) -> Reply:
        xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{_now_iso()}">'
               '<Fault type="SERVICE"><Error code="3001">'
               '<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>'
               '<Detail>The request limit was reached.  Try again later</Detail>'
               '</Error></Fault></IntuitResponse>')
        headers = {"Content-Type": "application/xml"}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        return Reply(429, xml, headers)

    # ------------------------------------------------------------ dispatch

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith("/v3/company/"):
            return super().handle(request)
        with self.state:
            now = self.clock()
            while self._stamps and self._stamps[0] <= now - 60:
                self._stamps.popleft()
            last_second = sum(1 for s in self._stamps if s > now - 1)
            if self.in_flight >= self.concurrency or last_second >= self.per_second \
                    or len(self._stamps) >= self.per_minute:
                return self.rate_limited(request)
            self._stamps.append(now)
            self.in_flight += 1
        try:
            if self.gate is not None:
                self.gate.wait(timeout=10)
            return self._api(request)
        finally:
            with self.state:
                self.in_flight -= 1

    def _api(self, request: Request) -> Reply:
        try:
            self._authenticate(request)
            m = re.match(r"^/v3/company/([^/]+)/", request.path)
            if not m or m.group(1) != self.realm_id:
                raise Fault("3100", "message=AuthorizationFailed; errorCode=003100; statusCode=403",
                            "", kind="AuthorizationFault", status=403)
            request_id = (request.query.get("requestid") or [None])[0]
            if request.method == "POST" and request_id:
                if len(request_id) > 50:
                    raise Fault("2010", "Request has invalid or unsupported property",
                                "requestid is longer than 50 characters", element="requestid")
                with self.state:
                    first = self._by_request_id.get((self.realm_id, request_id))
                    if first is not None:
                        self.replayed += 1
                        return copy.deepcopy(first)
                    reply = super().handle(request)
                    if 200 <= reply.status < 300:
                        self._by_request_id[(self.realm_id, request_id)] = copy.deepcopy(reply)
                    return reply
            with self.state:
                return super().handle(request)
        except Fault as f:
            return fault_reply(f)

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        expires = self.access_tokens.get(token) if token else None
        if expires is None or expires <= self.clock():
            detail = "Token expired: " + token[:8] + "..." if expires is not None else \
                "Token invalid" if token else "Authorization header missing"
            raise Fault("3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", detail,
                        kind="AuthenticationFault", status=401)

    # ------------------------------------------------------------ token endpoint

    def _new_pair(self) -> tuple[str, str]:
        access, refresh = "eyJ" + secrets.token_urlsafe(24), "AB11" + secrets.token_urlsafe(24)
        self.access_tokens[access] = self.clock() + ACCESS_TTL
        self.refresh_tokens[refresh] = self.clock() + REFRESH_TTL
        return access, refresh

    def _token(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        try:
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ") \
                else ("", "", "")
        except ValueError:
            cid, secret = "", ""
        if (cid, secret) != (self.client_id, self.client_secret):
            return Reply(401, {"error": "invalid_client"})
        form = request.form()
        if (form.get("grant_type") or [""])[0] != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type"})
        old = (form.get("refresh_token") or [""])[0]
        with self.state:
            expires = self.refresh_tokens.pop(old, None)  # rotated: the old one never works again
            if expires is None or expires <= self.clock():
                return Reply(400, {"error": "invalid_grant"})
            access, refresh = self._new_pair()
            self.token_refreshes += 1
        return Reply(200, {"token_type": "bearer", "access_token": access, "expires_in": ACCESS_TTL,
                           "refresh_token": refresh, "x_refresh_token_expires_in": REFRESH_TTL})

    # ------------------------------------------------------------ entities

    def _body(self, request: Request, entity: str) -> dict:
        try:
            body = loads(request.body or b"null")
        except ValueError:
            raise Fault("2010", "Request has invalid or unsupported property", "Request body is not valid JSON")
        if not isinstance(body, dict):
            raise Fault("2010", "Request has invalid or unsupported property", f"{entity} body must be an object")
        problems = self.validate(entity, body) if self.validate else []
        if problems:  # QuickBooks cannot read the body into its entity: the deserialisation error, 2010
            where = problems[0].partition(": ")[0].strip("/").replace("/", ".")
            raise Fault("2010", "Request has invalid or unsupported property",
                        f"Property Name:{'; '.join(problems[:3])[:600]} specified is unsupported or invalid",
                        element=where or None)
        return body

    def _meta(self) -> dict:
        now = _now_iso()
        return {"CreateTime": now, "LastUpdatedTime": now}

    def price(self, body: dict) -> dict:
        """Validate an invoice body the way QuickBooks does and compute its figures (no side effects)."""
        _unknown(body, _INVOICE_FIELDS, "Invoice")
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            raise _required("Line")
        customer = _ref(body, "CustomerRef")
        if customer is None:
            raise _required("CustomerRef")
        if customer not in self.customers:
            raise _invalid_ref("Customer", customer)
        number = body.get("DocNumber")
        if number is not None and len(str(number)) > 21:
            raise Fault("2050", "String length is either shorter or longer than supported by specification",
                        f"String length specified does not match the supported length. Min:0 Max:21 "
                        f"supplied length:{len(str(number))}", element="DocNumber")
        for field in ("TxnDate", "DueDate"):
            if body.get(field) is not None:
                _date(body[field], field)
        subtotal, taxable, discount, discounts = Decimal(0), Decimal(0), Decimal(0), 0
        percent = None
        for i, line in enumerate(lines):
            where = f"Line[{i}]"
            if not isinstance(line, dict):
                raise Fault("2010", "Request has invalid or unsupported property", f"{where} must be an object")
            _unknown(line, _LINE_FIELDS, where)
            kind = line.get("DetailType")
            if kind == "SalesItemLineDetail":
                detail = line.get(kind)
                if not isinstance(detail, dict):
                    raise _required(f"{where}.SalesItemLineDetail")
                _unknown(detail, _ITEM_DETAIL_FIELDS, f"{where}.SalesItemLineDetail")
                if "Amount" not in line:
                    raise _required(f"{where}.Amount")
                amount = _dec(line["Amount"], f"{where}.Amount")
                item = _ref(detail, "ItemRef")
                if item is None:
                    raise _required(f"{where}.SalesItemLineDetail.ItemRef")
                if item not in self.items:
                    raise _invalid_ref("Item", item)
                if "Qty" in detail and "UnitPrice" in detail:
                    qty = _dec(detail["Qty"], f"{where}.Qty")
                    price = _dec(detail["UnitPrice"], f"{where}.UnitPrice")
                    if (qty * price).quantize(CENT, rounding=ROUND_HALF_UP) != amount:
                        raise Fault("6070", "Amount is not equal to UnitPrice * Qty",
                                    f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                                    element=f"{where}.Amount")
                code = _ref(detail, "TaxCodeRef") or "NON"
                if code not in self.tax_codes:
                    raise _invalid_ref("TaxCode", code)
                subtotal += amount
                if code != "NON":
                    taxable += amount
            elif kind == "DiscountLineDetail":
                detail = line.get(kind) or {}
                _unknown(detail, _DISCOUNT_DETAIL_FIELDS, f"{where}.DiscountLineDetail")
                discounts += 1
                if discounts > 1:
                    raise Fault("6000", "A business validation error has occurred while processing your request",
                                "Business Validation Error: only one discount line is allowed per transaction",
                                element=where)
                if detail.get("PercentBased"):
                    percent = _dec(detail.get("DiscountPercent"), f"{where}.DiscountPercent")
                else:
                    if "Amount" not in line:
                        raise _required(f"{where}.Amount")
                    discount = _dec(line["Amount"], f"{where}.Amount")
            elif kind in ("SubTotalLineDetail", "DescriptionOnly"):
                continue
            else:
                raise Fault("2010", "Request has invalid or unsupported property",
                            f"{where}.DetailType {kind!r} is not supported here", element=f"{where}.DetailType")
        if percent is not None:
            discount = (subtotal * percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        if discount > subtotal:
            raise Fault("6000", "A business validation error has occurred while processing your request",
                        "Business Validation Error: the discount is larger than the subtotal")
        tax_detail = body.get("TxnTaxDetail") or {}
        _unknown(tax_detail, _TAX_FIELDS, "TxnTaxDetail")
        if "TotalTax" in tax_detail and not self.ignore_tax_override:
            tax = _dec(tax_detail["TotalTax"], "TxnTaxDetail.TotalTax")
        else:
            base = taxable
            if body.get("ApplyTaxAfterDiscount") and subtotal:
                base = taxable * (subtotal - discount) / subtotal
            tax = (self.tax_rate * base).quantize(CENT, rounding=ROUND_HALF_UP)
        total = subtotal - discount + tax
        return {"subtotal": subtotal, "discount": discount, "tax": tax, "total": total}

    def _create_invoice(self, request: Request) -> Reply:
        body = self._body(request, "Invoice")
        for field in ("Id", "SyncToken", "TotalAmt", "Balance"):
            body.pop(field, None)  # read-only on create
        figures = self.price(body)
        number = body.get("DocNumber")
        if number is None:
            number = str(next(self._next_doc))
        for other in self.invoices.values():
            if other.get("DocNumber") == number:
                raise Fault("6140", "Duplicate Document Number Error",
                            f"Duplicate Document Number Error : You must specify a different number. This number "
                            f"has already been used. DocNumber={number} is assigned to TxnType=Invoice with "
                            f"TxnId={other['Id']}")
        inv_id = str(next(self._ids))
        lines = []
        for n, line in enumerate(body["Line"], start=1):
            lines.append({"Id": str(n), "LineNum": n, **line} if line["DetailType"] == "SalesItemLineDetail"
                         else dict(line))
        lines.append({"Amount": figures["subtotal"], "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        customer = self.customers[body["CustomerRef"]["value"]]
        tax = {**(body.get("TxnTaxDetail") or {}), "TotalTax": figures["tax"]}
        invoice = {
            **body, "Id": inv_id, "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": self._meta(),
            "DocNumber": number, "TxnDate": body.get("TxnDate") or date.today().isoformat(), "Line": lines,
            "TxnTaxDetail": tax, "CustomerRef": {"value": customer["Id"], "name": customer["DisplayName"]},
            "TotalAmt": figures["total"], "Balance": figures["total"], "EmailStatus": "NotSet",
            "PrintStatus": "NeedToPrint",
        }
        self.invoices[inv_id] = invoice
        return _json_reply(200, {"Invoice": invoice, "time": _now_iso()})

    def _invoice(self, invoice_id: str) -> dict:
        inv = self.invoices.get(invoice_id)
        if inv is None:
            raise Fault("610", "Object Not Found",
                        "Object Not Found : Something you're trying to use has been made inactive. Check the "
                        "fields with accounts, customers, items, vendors or employees.")
        return inv

    def _read_invoice(self, request: Request) -> Reply:
        return _json_reply(200, {"Invoice": self._invoice(request.params["id"]), "time": _now_iso()})

    def _read_payment(self, request: Request) -> Reply:
        payment = self.payments.get(request.params["id"])
        if payment is None:
            raise Fault("610", "Object Not Found",
                        "Object Not Found : Something you're trying to use has been made inactive. Check the "
                        "fields with accounts, customers, items, vendors or employees.")
        return _json_reply(200, {"Payment": payment, "time": _now_iso()})

    def _send_invoice(self, request: Request) -> Reply:
        inv = self._invoice(request.params["id"])
        to = (request.query.get("sendTo") or [None])[0] or (inv.get("BillEmail") or {}).get("Address")
        if not to or "@" not in to:
            raise Fault("2050", "Invalid Email Address format", f"Invalid email address: {to!r}",
                        element="sendTo")
        inv["BillEmail"] = {"Address": to}
        inv["EmailStatus"] = "EmailSent"
        inv["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": _now_iso()}
        inv["SyncToken"] = str(int(inv["SyncToken"]) + 1)
        self.sent.append((inv["Id"], to))
        return _json_reply(200, {"Invoice": inv, "time": _now_iso()})

    def _create_customer(self, request: Request) -> Reply:
        body = self._body(request, "Customer")
        _unknown(body, _CUSTOMER_FIELDS, "Customer")
        name = (body.get("DisplayName") or "").strip()
        if not name:
            raise _required("DisplayName")
        if ":" in name:
            raise Fault("2010", "Request has invalid or unsupported property",
                        "DisplayName cannot contain a colon (:)", element="DisplayName")
        if self.before_customer_create is not None:
            self.before_customer_create(body)
        # DisplayName is unique across customers, vendors and employees, case-insensitively; answered with
        # QuickBooks' 400 ValidationFault 6240 (the Message and Detail integrators quote)
        holders = [o["Id"] for o in self.customers.values() if o["DisplayName"].lower() == name.lower()]
        if holders or name.lower() in {n.lower() for n in self.other_names}:
            raise Fault("6240", "Duplicate Name Exists Error",
                        "The name supplied already exists. : Another customer, vendor or employee is already "
                        "using this name. Please use a different name." + (f" Id={holders[0]}" if holders else ""))
        cust_id = str(next(self._ids))
        customer = {**body, "Id": cust_id, "SyncToken": "0", "DisplayName": name, "Active": True,
                    "Balance": Decimal("0"), "domain": "QBO", "sparse": False, "MetaData": self._meta()}
        self.customers[cust_id] = customer
        return _json_reply(200, {"Customer": customer, "time": _now_iso()})

    _QUERY = re.compile(r"^\s*select\s+\*\s+from\s+(\w+)(?:\s+where\s+(\w+)\s*=\s*'((?:[^'\\]|\\.)*)')?"
                        r"(?:\s+(?:startposition|maxresults)\s+\d+)*\s*$", re.IGNORECASE)

    def _query(self, request: Request) -> Reply:
        text = (request.query.get("query") or [None])[0]
        if text is None and request.method == "POST":
            text = request.body.decode()
        m = self._QUERY.match(text or "")
        if not m:
            raise Fault("4000", "Error parsing query", f"QueryParserError: Encountered an error parsing {text!r}")
        entity, field, raw = m.group(1), m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", raw) if raw is not None else None
        tables = {"invoice": ("Invoice", self.invoices), "customer": ("Customer", self.customers)}
        if entity.lower() not in tables:
            raise Fault("4000", "Error parsing query", f"QueryParserError: unsupported entity {entity}")
        name, table = tables[entity.lower()]
        getters = {
            "Invoice": {"docnumber": lambda r: r.get("DocNumber"), "id": lambda r: r["Id"]},
            "Customer": {"displayname": lambda r: (r.get("DisplayName") or "").lower(), "id": lambda r: r["Id"],
                         "primaryemailaddr": lambda r: (_address_of(r) or "").lower()},
        }[name]
        if field is None:
            rows = list(table.values())
        else:
            get = getters.get(field.lower())
            if get is None:
                raise Fault("4001", "Invalid query", f"QueryValidationError: property '{field}' is not queryable")
            wanted = value if field.lower() in ("docnumber", "id") else value.lower()
            rows = [r for r in table.values() if get(r) == wanted]
        response: dict = {"QueryResponse": {}, "time": _now_iso()}
        if rows:
            response["QueryResponse"] = {name: rows, "startPosition": 1, "maxResults": len(rows)}
        return _json_reply(200, response)

    _CO = r"/v3/company/(?P<realm>[^/]+)"
    routes = [
        ("POST", r"/oauth2/v1/tokens/bearer", _token),
        ("POST", _CO + r"/invoice", _create_invoice),
        ("GET", _CO + r"/invoice/(?P<id>\d+)", _read_invoice),
        ("POST", _CO + r"/invoice/(?P<id>\d+)/send", _send_invoice),
        ("GET", _CO + r"/payment/(?P<id>\d+)", _read_payment),
        ("POST", _CO + r"/customer", _create_customer),
        ("GET", _CO + r"/query", _query),
        ("POST", _CO + r"/query", _query),
    ]


SIMULATOR = QuickBooksSimulator
