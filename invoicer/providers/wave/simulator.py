"""A stand-in for the parts of Wave's public GraphQL API invoicer uses (tests and `invoicer sandbox` only).

Wave publishes its schema only on developer.waveapps.com (no SDL or introspection file here:
../shared/vendor-specs/wave/SOURCE.txt). `SDL` below is a hand-made subset of that schema -- type, field,
input and enum names as Wave documents them (and as the third-party transcription
flipthetrain/WaveAccounting.Net copies them) -- and the simulator EXECUTES every request against it with
graphql-core, so a misspelt field, a wrong input shape or a float where a Decimal string belongs fails here
as it would at Wave: HTTP 200 with `errors` (code GRAPHQL_VALIDATION_FAILED / BAD_USER_INPUT).

Endpoints: POST /graphql/public (gql.waveapps.com), POST /oauth2/token/ (api.waveapps.com; form).
What it reproduces:
- Bearer tokens living 2 hours; a refresh returns a new pair and retires the old refresh token.
- A missing or expired token answers HTTP 200 {"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]};
  a business the token may not use, NOT_FOUND.
- Mutations answer `didSucceed` and `inputErrors {code message path}`; a repeated invoiceNumber is an
  input error; every item needs a product of the business; sales taxes must be the business's.
- Invoice arithmetic: item = quantity x unitPrice rounded half-even to the currency's minor unit (Wave's
  rounding is not documented); FIXED discounts off the subtotal before tax, spread pro rata; each sales tax
  its rate of its items' discounted total, rounded once; total = subtotal - discounts + taxes.
- Statuses: DRAFT -> (invoiceApprove) SAVED -> (invoiceSend / invoiceMarkSent) SENT; payments -> PARTIAL/PAID.
- Stricter than Wave (which may accept JSON numbers for a Decimal): a float is refused, since invoicer
  never sends money as a float.
- Limits: Wave publishes none; past `quota` (60 a minute, 5 at once per token) the simulator answers HTTP
  429 with Retry-After -- an invention to exercise the adapter.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import iso4217

from ... import money
from ..simkit import AccountingSimulator, Quota
from ..simulate import Reply, Request
from ..jsonmoney import dumps

BUSINESS = "QnVzaW5lc3M6c2ltLWJ1c2luZXNz"
ACCESS_TTL = 7200

SDL = """
scalar Date
scalar DateTime
scalar Decimal

enum InvoiceCreateStatus { DRAFT SAVED }
enum InvoiceStatus { DRAFT OVERDUE OVERPAID PAID PARTIAL SAVED SENT UNPAID VIEWED }
enum InvoiceDiscountType { FIXED PERCENTAGE }
enum InvoiceSendMethod { EXPORT_PDF GMAIL MARKED_SENT NOT_SENT OUTLOOK SHARED_LINK SKIPPED WAVE YAHOO }

type Currency { code: CurrencyCode! symbol: String! }
type Money { value: String! minorUnitValue: String! currency: Currency! }
type InputError { message: String code: String path: [String!] }
type OffsetPageInfo { currentPage: Int! totalPages: Int totalCount: Int }

type Customer { id: ID! name: String! email: String currency: Currency }
type CustomerEdge { node: Customer! }
type CustomerConnection { edges: [CustomerEdge!]! pageInfo: OffsetPageInfo! }
type SalesTax { id: ID! name: String! abbreviation: String! rate: Decimal! isArchived: Boolean }
type SalesTaxEdge { node: SalesTax! }
type SalesTaxConnection { edges: [SalesTaxEdge!]! pageInfo: OffsetPageInfo! }
type Product { id: ID! name: String! }
type InvoiceItemTax { amount: Money! salesTax: SalesTax! }
type InvoiceItem { product: Product! description: String quantity: Decimal! unitPrice: Decimal!
  subtotal: Money! total: Money! taxes: [InvoiceItemTax!]! }
type Invoice { id: ID! invoiceNumber: String! status: InvoiceStatus! currency: Currency! customer: Customer!
  invoiceDate: Date! dueDate: Date! poNumber: String memo: String items: [InvoiceItem!]! subtotal: Money!
  discountTotal: Money! taxTotal: Money! total: Money! amountDue: Money! amountPaid: Money! viewUrl: String!
  pdfUrl: String! lastSentAt: DateTime lastSentVia: InvoiceSendMethod }
type InvoiceEdge { node: Invoice! }
type InvoiceConnection { edges: [InvoiceEdge!]! pageInfo: OffsetPageInfo! }
type Business { id: ID! name: String! currency: Currency!
  customers(page: Int = 1, pageSize: Int = 20, email: String): CustomerConnection
  salesTaxes(page: Int = 1, pageSize: Int = 20): SalesTaxConnection
  invoices(page: Int = 1, pageSize: Int = 20, invoiceNumber: String): InvoiceConnection
  invoice(id: ID!): Invoice }
type Query { business(id: ID!): Business }

input AddressInput { addressLine1: String addressLine2: String city: String provinceCode: String
  countryCode: String postalCode: String }
input CustomerCreateInput { businessId: ID! name: String! firstName: String lastName: String displayId: String
  email: String mobile: String phone: String currency: CurrencyCode address: AddressInput internalNotes: String }
type CustomerCreateOutput { didSucceed: Boolean! inputErrors: [InputError!] customer: Customer }
input InvoiceCreateItemTaxInput { salesTaxId: ID! }
input InvoiceCreateItemInput { productId: ID! description: String quantity: Decimal unitPrice: Decimal
  taxes: [InvoiceCreateItemTaxInput!] }
input InvoiceDiscountInput { discountType: InvoiceDiscountType! name: String amount: Decimal percentage: Decimal }
input InvoiceCreateInput { businessId: ID! customerId: ID! status: InvoiceCreateStatus = DRAFT currency: CurrencyCode
  title: String subhead: String invoiceNumber: String poNumber: String invoiceDate: Date exchangeRate: Decimal
  dueDate: Date items: [InvoiceCreateItemInput!] discounts: [InvoiceDiscountInput!] memo: String footer: String
  disableCreditCardPayments: Boolean disableBankPayments: Boolean }
type InvoiceCreateOutput { didSucceed: Boolean! inputErrors: [InputError!] invoice: Invoice }
input InvoiceApproveInput { invoiceId: ID! }
type InvoiceApproveOutput { didSucceed: Boolean! inputErrors: [InputError!] invoice: Invoice }
input InvoiceSendInput { invoiceId: ID! to: [String!]! subject: String message: String attachPDF: Boolean!
  fromAddress: String ccMyself: Boolean }
type InvoiceSendOutput { didSucceed: Boolean! inputErrors: [InputError!] }
input InvoiceMarkSentInput { invoiceId: ID! sendMethod: InvoiceSendMethod! sentAt: DateTime }
type InvoiceMarkSentOutput { didSucceed: Boolean! inputErrors: [InputError!] invoice: Invoice }
input InvoiceDeleteInput { invoiceId: ID! }
type InvoiceDeleteOutput { didSucceed: Boolean! inputErrors: [InputError!] }
type Mutation {
  customerCreate(input: CustomerCreateInput!): CustomerCreateOutput
  invoiceCreate(input: InvoiceCreateInput!): InvoiceCreateOutput
  invoiceApprove(input: InvoiceApproveInput!): InvoiceApproveOutput
  invoiceSend(input: InvoiceSendInput!): InvoiceSendOutput
  invoiceMarkSent(input: InvoiceMarkSentInput!): InvoiceMarkSentOutput
  invoiceDelete(input: InvoiceDeleteInput!): InvoiceDeleteOutput
}
"""


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError("Decimal wants a decimal string, not a float")
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value!r}") from None
    if not out.is_finite():
        raise ValueError("not a finite decimal")
    return out


def _parse_date(value: Any) -> str:
    return date.fromisoformat(str(value)).isoformat()


@lru_cache(maxsize=1)
def schema():
    """Wave's schema subset, executable (graphql-core)."""
    from graphql import build_schema

    codes = sorted(c.code for c in iso4217.Currency if c.exponent is not None)
    built = build_schema(SDL + "enum CurrencyCode { " + " ".join(codes) + " }")
    decimal = built.type_map["Decimal"]
    decimal.serialize = lambda v: format(Decimal(v), "f")
    decimal.parse_value = _parse_decimal
    decimal.parse_literal = lambda node, _vars=None: _parse_decimal(getattr(node, "value", None))
    day = built.type_map["Date"]
    day.serialize, day.parse_value = str, _parse_date
    day.parse_literal = lambda node, _vars=None: _parse_date(getattr(node, "value", None))
    return built


@dataclass
class Biz:
    id: str
    currency: str = "USD"
    products: dict[str, dict] = field(default_factory=dict)
    sales_taxes: dict[str, dict] = field(default_factory=dict)
    customers: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)


def _gid(kind: str) -> str:
    return f"{kind}:{uuid.uuid4().hex[:12]}"


def _fail(message: str, code: str, *path: str) -> dict:
    return {"didSucceed": False, "inputErrors": [{"message": message, "code": code, "path": ["input", *path]}]}


class WaveSimulator(AccountingSimulator):
    def __init__(self, businesses: tuple[str, ...] = (BUSINESS,), *, client_id: str = "sim-wave-client",
                 client_secret: str = "sim-wave-secret"):
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self._businesses = tuple(businesses)
        self.reset()

    def fresh(self) -> None:
        self.access: dict[str, dict] = {}
        self.refresh: dict[str, dict] = {}
        self.businesses = {}
        for b in self._businesses:
            biz = Biz(b)
            for kind in ("labor", "material", "fee"):
                biz.products[f"Product:{kind}"] = {"id": f"Product:{kind}", "name": kind.title()}
            for pct in ("0.0825", "0.13", "0.06", "0.20", "0.10", "0.21", "0.08"):
                tid = f"SalesTax:{pct}"
                biz.sales_taxes[tid] = {"id": tid, "name": f"Tax {pct}", "abbreviation": "TX",
                                        "rate": Decimal(pct), "isArchived": False}
            self.businesses[b] = biz

    # ------------------------------------------------------------ sandbox hook and helpers

    def platform(self, url: str) -> dict:
        return {"provider": "wave", "business_id": self._businesses[0], "base_url": url,
                "token_url": f"{url}/oauth2/token/",
                "products": {"labor": "Product:labor", "material": "Product:material", "fee": "Product:fee"}}

    def env(self) -> dict[str, str]:
        return {"INVOICER_WAVE_CLIENT_ID": self.client_id, "INVOICER_WAVE_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> dict:
        return self.grant()

    def business(self, business_id: str | None = None) -> Biz:
        return self.businesses[business_id or self._businesses[0]]

    def grant(self) -> dict:
        with self.state:
            pair = self._mint({"businesses": frozenset(self.businesses), "quota": Quota(60, 10**9, 5)})
            return {**pair, "expires_at": time.time() + ACCESS_TTL}

    def _mint(self, grant: dict) -> dict:
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        self.access[access] = {**grant, "expires": self.now() + ACCESS_TTL}
        self.refresh[refresh] = grant
        return {"access_token": access, "refresh_token": refresh}

    def pay(self, invoice_id: str, paid: Decimal, business_id: str | None = None) -> dict:
        with self.state:
            inv = self.business(business_id).invoices[invoice_id]
            inv["_paid"] += paid
            inv["status"] = "PAID" if inv["_paid"] >= inv["_total"] else "PARTIAL"
            return inv

    # ------------------------------------------------------------ auth, limits, token

    def authorise(self, request: Request):
        auth = request.headers.get("authorization", "")
        grant = self.access.get(auth[7:].strip() if auth.startswith("Bearer ") else "")
        if grant is None or self.now() >= grant["expires"]:
            return None, self._errors("Unauthorized", "UNAUTHENTICATED")
        return grant, None

    def quota(self, grant: dict) -> Quota:
        return grant["quota"]

    def over_limit(self, limit: str, retry_after: float) -> Reply:
        return Reply(429, {"errors": [{"message": "Too many requests", "extensions": {"code": "THROTTLED"}}]},
                     {"Retry-After": str(int(retry_after))})

    def not_found(self, request: Request) -> Reply:
        return Reply(404, b"Not Found", {"Content-Type": "text/plain"})

    @staticmethod
    def _errors(message: str, code: str) -> Reply:
        return Reply(200, {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]})

    def token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client"})
        with self.state:
            grant = self.refresh.pop(form.get("refresh_token", ""), None)
            if form.get("grant_type") != "refresh_token" or grant is None:
                return Reply(400, {"error": "invalid_grant"})
            pair = self._mint(grant)
        return Reply(200, {**pair, "token_type": "Bearer", "expires_in": ACCESS_TTL, "scope": "invoice:* customer:*"})

    # ------------------------------------------------------------ GraphQL

    def graphql(self, grant: dict, request: Request) -> Reply:
        from graphql import graphql_sync

        try:  # a JSON number with a fraction stays a float here, so the Decimal scalar can refuse it
            payload = json.loads(request.body or b"{}")
            query, variables = payload["query"], payload.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return self._errors("Must provide query string.", "BAD_REQUEST")
        result = graphql_sync(schema(), query, root_value=_Root(self, grant), variable_values=variables)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            out = []
            for err in result.errors:
                formatted = dict(err.formatted)
                code = (err.extensions or {}).get("code") or (
                    "INTERNAL_SERVER_ERROR" if err.path else
                    "BAD_USER_INPUT" if "got invalid value" in err.message else "GRAPHQL_VALIDATION_FAILED")
                formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
                out.append(formatted)
            body["errors"] = out
        return Reply(200, dumps(body).encode(), {"Content-Type": "application/json"})

    outside = {("POST", "/oauth2/token/"): token}
    routes = [("POST", "/graphql/public", graphql)]


class _Root:
    """The resolvers: Query.business and the mutations, over the simulator's state (called under its lock)."""

    def __init__(self, sim: WaveSimulator, grant: dict):
        self.sim, self.grant = sim, grant

    def _biz(self, business_id: str) -> Biz:
        from graphql import GraphQLError

        if business_id not in self.grant["businesses"] or business_id not in self.sim.businesses:
            raise GraphQLError("Business not found", extensions={"code": "NOT_FOUND"})
        return self.sim.businesses[business_id]

    # ---------------------------------------------------------------- query

    def business(self, info, id):  # noqa: A002 -- GraphQL's argument name
        biz = self._biz(id)

        def connection(nodes):
            return {"edges": [{"node": n} for n in nodes], "pageInfo": {"currentPage": 1, "totalPages": 1,
                                                                        "totalCount": len(nodes)}}

        def customers(info, page=1, pageSize=20, email=None):  # noqa: N803
            nodes = [c for c in biz.customers.values() if not email or (c.get("email") or "").casefold()
                     == email.casefold()]
            return connection(nodes)

        def invoices(info, page=1, pageSize=20, invoiceNumber=None):  # noqa: N803
            return connection([self._view(biz, i) for i in biz.invoices.values()
                               if invoiceNumber is None or i["invoiceNumber"] == invoiceNumber])

        def invoice(info, id):  # noqa: A002
            inv = biz.invoices.get(id)
            return self._view(biz, inv) if inv else None

        return {"id": biz.id, "name": "Sim Business", "currency": {"code": biz.currency, "symbol": "$"},
                "customers": customers, "invoices": invoices, "invoice": invoice,
                "salesTaxes": lambda info, page=1, pageSize=20: connection(list(biz.sales_taxes.values()))}

    def _money(self, value: Decimal, currency: str) -> dict:
        return {"value": format(value, "f"), "minorUnitValue": str(money.to_minor(value, currency)),
                "currency": {"code": currency, "symbol": ""}}

    def _view(self, biz: Biz, inv: dict) -> dict:
        cur = inv["currency"]["code"]
        return {**inv, "total": self._money(inv["_total"], cur), "subtotal": self._money(inv["_subtotal"], cur),
                "discountTotal": self._money(inv["_discount"], cur), "taxTotal": self._money(inv["_tax"], cur),
                "amountPaid": self._money(inv["_paid"], cur), "amountDue": self._money(inv["_total"] - inv["_paid"], cur),
                "items": [{**it, "subtotal": self._money(it["_amount"], cur), "total": self._money(it["_amount"], cur),
                           "taxes": []} for it in inv["_items"]]}

    # ---------------------------------------------------------------- mutations

    def customerCreate(self, info, input):  # noqa: N802,A002
        biz = self._biz(input["businessId"])
        if not (input.get("name") or "").strip():
            return _fail("Name is required", "INVALID", "name")
        customer = {"id": _gid("Customer"), "name": input["name"], "email": input.get("email"),
                    "currency": {"code": input.get("currency") or biz.currency, "symbol": ""}}
        biz.customers[customer["id"]] = customer
        return {"didSucceed": True, "inputErrors": [], "customer": customer}

    def invoiceCreate(self, info, input):  # noqa: N802,A002,C901
        biz = self._biz(input["businessId"])
        customer = biz.customers.get(input["customerId"])
        if customer is None:
            return _fail("Customer not found", "NOT_FOUND", "customerId")
        number = input.get("invoiceNumber") or str(len(biz.invoices) + 1)
        if any(i["invoiceNumber"] == number for i in biz.invoices.values()):
            return _fail(f"Invoice number {number} already exists", "DUPLICATE", "invoiceNumber")
        cur = input.get("currency") or customer["currency"]["code"]
        q = money.quantum(cur)
        items, taxed = [], {}
        for n, item in enumerate(input.get("items") or []):
            if item["productId"] not in biz.products:
                return _fail("Product not found", "NOT_FOUND", "items", str(n), "productId")
            qty, unit = item.get("quantity", Decimal(1)), item.get("unitPrice", Decimal(0))
            line = (qty * unit).quantize(q, ROUND_HALF_EVEN)
            for tax in item.get("taxes") or []:
                if tax["salesTaxId"] not in biz.sales_taxes:
                    return _fail("Sales tax not found", "NOT_FOUND", "items", str(n), "taxes")
                taxed[tax["salesTaxId"]] = taxed.get(tax["salesTaxId"], Decimal(0)) + line
            items.append({"product": biz.products[item["productId"]], "description": item.get("description"),
                          "quantity": qty, "unitPrice": unit, "_amount": line})
        if not items:
            return _fail("An invoice needs at least one item", "INVALID", "items")
        subtotal = sum((i["_amount"] for i in items), Decimal(0))
        discount = Decimal(0)
        for d in input.get("discounts") or []:
            value = d.get("amount") if d["discountType"] == "FIXED" else subtotal * (d.get("percentage") or 0) / 100
            discount += Decimal(value or 0).quantize(q, ROUND_HALF_EVEN)
        if discount > subtotal:
            return _fail("Discount is larger than the subtotal", "INVALID", "discounts")
        factor = (subtotal - discount) / subtotal if subtotal else Decimal(1)
        tax = sum(((base * factor * biz.sales_taxes[t]["rate"]).quantize(q, ROUND_HALF_EVEN) for t, base in taxed.items()),
                  Decimal(0))
        inv = {"id": _gid("Invoice"), "invoiceNumber": number, "status": input.get("status") or "DRAFT",
               "currency": {"code": cur, "symbol": ""}, "customer": customer,
               "invoiceDate": input.get("invoiceDate") or date.today().isoformat(),
               "dueDate": input.get("dueDate") or input.get("invoiceDate") or date.today().isoformat(),
               "poNumber": input.get("poNumber"), "memo": input.get("memo"),
               "viewUrl": f"https://next.waveapps.com/{biz.id}/invoices/{uuid.uuid4().hex[:8]}",
               "pdfUrl": f"https://api.waveapps.com/invoices/{uuid.uuid4().hex[:8]}/pdf", "lastSentAt": None,
               "lastSentVia": None, "_items": items, "_subtotal": subtotal, "_discount": discount, "_tax": tax,
               "_total": subtotal - discount + tax, "_paid": Decimal(0)}
        biz.invoices[inv["id"]] = inv
        return {"didSucceed": True, "inputErrors": [], "invoice": self._view(biz, inv)}

    def _mine(self, invoice_id: str) -> tuple[Biz, dict] | tuple[None, None]:
        for b in self.grant["businesses"]:
            biz = self.sim.businesses.get(b)
            if biz and invoice_id in biz.invoices:
                return biz, biz.invoices[invoice_id]
        return None, None

    def invoiceApprove(self, info, input):  # noqa: N802,A002
        biz, inv = self._mine(input["invoiceId"])
        if inv is None:
            return _fail("Invoice not found", "NOT_FOUND", "invoiceId")
        if inv["status"] == "DRAFT":
            inv["status"] = "SAVED"
        return {"didSucceed": True, "inputErrors": [], "invoice": self._view(biz, inv)}

    def invoiceSend(self, info, input):  # noqa: N802,A002
        biz, inv = self._mine(input["invoiceId"])
        if inv is None:
            return _fail("Invoice not found", "NOT_FOUND", "invoiceId")
        if inv["status"] == "DRAFT":
            return _fail("A draft invoice must be approved before it is sent", "INVALID", "invoiceId")
        if not input["to"]:
            return _fail("At least one recipient is required", "INVALID", "to")
        biz.emails.append(inv["id"])
        inv.update(status="SENT" if inv["status"] == "SAVED" else inv["status"], lastSentVia="WAVE",
                   lastSentAt=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return {"didSucceed": True, "inputErrors": []}

    def invoiceMarkSent(self, info, input):  # noqa: N802,A002
        biz, inv = self._mine(input["invoiceId"])
        if inv is None:
            return _fail("Invoice not found", "NOT_FOUND", "invoiceId")
        if inv["status"] == "DRAFT":
            return _fail("A draft invoice must be approved before it is marked sent", "INVALID", "invoiceId")
        inv.update(status="SENT" if inv["status"] == "SAVED" else inv["status"], lastSentVia=input["sendMethod"],
                   lastSentAt=input.get("sentAt") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return {"didSucceed": True, "inputErrors": [], "invoice": self._view(biz, inv)}

    def invoiceDelete(self, info, input):  # noqa: N802,A002
        biz, inv = self._mine(input["invoiceId"])
        if inv is None:
            return _fail("Invoice not found", "NOT_FOUND", "invoiceId")
        del biz.invoices[inv["id"]]
        return {"didSucceed": True, "inputErrors": []}


SIMULATOR = WaveSimulator
