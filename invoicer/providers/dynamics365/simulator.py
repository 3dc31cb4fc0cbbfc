"""A small, faithful stand-in for the parts of Dynamics 365 Business Central (API v2.0) and Microsoft Entra
invoicer uses (tests and `invoicer sandbox` only).

Endpoints (same paths as the services):
  POST /{tenant}/oauth2/v2.0/token                      Entra client credentials (login.microsoftonline.com)
  GET|POST  /v2.0/{tenant}/{environment}/api/v2.0/companies({id})/customers
  GET|POST  .../companies({id})/salesInvoices            ($filter=field eq 'value' [and ...])
  GET|PATCH .../companies({id})/salesInvoices({id})      (PATCH needs If-Match: the @odata.etag or *)
  GET|POST  .../companies({id})/salesInvoices({id})/salesInvoiceLines
  POST      .../companies({id})/salesInvoices({id})/Microsoft.NAV.post | postAndSend | send   (204)

What it reproduces, and from where (learn.microsoft.com/dynamics365/business-central/dev-itpro/...):
- api-reference/v2.0/resources/dynamics_salesinvoice, dynamics_salesinvoiceline, dynamics_customer: the
  writable properties (anything else, or a read-only one, is refused with 400), lineType
  Item|Account|Resource|Comment, lineObjectNumber checked against the company's items/accounts, taxCode
  against its tax codes, description <= 100, externalDocumentNumber <= 35, quantities to 5 decimals.
- Drafts: a new invoice is a Draft with a draft number; lines are numbered 10000, 20000, ...; line amount
  = quantity x unitPrice rounded to the currency's precision; the header's discountAmount (invoice discount)
  is spread over the lines pro rata, in cents, the remainder on the last line; tax = per tax code, the
  rate x the net amount of its lines, rounded once; totalAmountIncludingTax = net + tax.
- The bound actions (resource page, "Bound actions"): post turns the draft into a posted invoice (status
  Open, a posted number, the same id -- the resource page's note says the id carries over); a draft
  without lines cannot be posted ("There is nothing to post"), nor one with a negative total; lines
  cannot be added to a posted invoice; send and postAndSend email the posted invoice to the customer
  (refused without an email address). All answer 204 No Content.
- Errors are OData bodies {"error": {"code", "message"}}. The codes used here (BadRequest_*,
  Internal_RecordNotFound, Application_DialogException, Authentication_InvalidCredentials,
  Application_TooManyRequests) are written from memory of BC's answers; no published list was
  found, so the exact codes and texts are not confirmed.
- Limits (operational limits for Business Central online): 6,000 requests per user or service principal
  in any 5-minute sliding window -> 429 with Retry-After (whether BC sends Retry-After is not confirmed).
- Entra: tokens live `token_ttl` seconds (3599 by default, as Entra answers); a wrong secret is 401
  {"error": "invalid_client", "error_description": "AADSTS7000215: ..."}; an expired or unknown bearer
  token on the API is 401.

It stores what it received (`invoices`, `customers`, `sent`) so tests assert on Business Central's side.
"""
from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections import deque
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from ... import money
from ..jsonmoney import dec, dumps, loads
from ..simulate import Reply, Request, Simulator

TENANT = "3c4a9f2e-8b1d-4e6f-a2c7-5d9e0b1f7a30"
ENVIRONMENT = "production"
COMPANY = "5b0e6c1a-7d2f-4a8e-9c3b-1f4d6e8a2b90"
API = r"/v2\.0/(?P<tenant>[^/]+)/(?P<env>[^/]+)/api/v2\.0/companies\((?P<company>[0-9a-fA-F-]{36})\)"
ID = r"(?P<id>[0-9a-fA-F-]{36})"
WINDOW, LIMIT = 300.0, 6000

INVOICE_WRITABLE = {
    "number", "externalDocumentNumber", "invoiceDate", "postingDate", "dueDate", "customerPurchaseOrderReference",
    "customerId", "customerNumber", "billToCustomerId", "billToCustomerNumber", "billToName", "shipToName",
    "shipToContact", "sellToAddressLine1", "sellToAddressLine2", "sellToCity", "sellToCountry", "sellToState",
    "sellToPostCode", "billToAddressLine1", "billToAddressLine2", "billToCity", "billToCountry", "billToState",
    "billToPostCode", "shipToAddressLine1", "shipToAddressLine2", "shipToCity", "shipToCountry", "shipToState",
    "shipToPostCode", "currencyId", "currencyCode", "shortcutDimension1Code", "shortcutDimension2Code",
    "paymentTermsId", "shipmentMethodId", "salesperson", "discountAmount", "discountAppliedBeforeTax",
    "phoneNumber", "email"}
INVOICE_READONLY = {"id", "customerName", "orderId", "orderNumber", "pricesIncludeTax", "remainingAmount",
                    "totalAmountExcludingTax", "totalTaxAmount", "totalAmountIncludingTax", "status",
                    "lastModifiedDateTime"}
LINE_WRITABLE = {"sequence", "itemId", "accountId", "lineType", "lineObjectNumber", "description", "unitOfMeasureId",
                 "unitOfMeasureCode", "unitPrice", "quantity", "discountAmount", "discountPercent", "taxCode",
                 "shipmentDate", "itemVariantId", "locationId"}
LINE_READONLY = {"id", "documentId", "discountAppliedBeforeTax", "amountExcludingTax", "taxPercent", "totalTaxAmount",
                 "amountIncludingTax", "invoiceDiscountAllocation", "netAmount", "netTaxAmount",
                 "netAmountIncludingTax"}
CUSTOMER_WRITABLE = {"number", "displayName", "type", "addressLine1", "addressLine2", "city", "state", "country",
                     "postalCode", "phoneNumber", "email", "website", "taxLiable", "taxAreaId", "taxRegistrationNumber",
                     "currencyId", "currencyCode", "paymentTermsId", "shipmentMethodId", "paymentMethodId", "blocked"}
LINE_TYPES = {"Comment", "Account", "Item", "Resource"}


def odata_error(status: int, code: str, message: str, headers: dict | None = None) -> Reply:
    return Reply(status, dumps({"error": {"code": code, "message": message}}),
                 {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def ok(body: Any, status: int = 200) -> Reply:
    return Reply(status, dumps(body), {"Content-Type": "application/json; odata.metadata=minimal; charset=utf-8"})


def parse_filter(text: str) -> list[tuple[str, str]]:
    """`a eq 'x' and b eq 'y'` -> [(a, x), (b, y)]; ValueError for anything else."""
    terms = []
    for part in re.split(r"\s+and\s+", text.strip()):
        m = re.fullmatch(r"(\w+)\s+eq\s+'((?:[^']|'')*)'", part.strip())
        if not m:
            raise ValueError(part)
        terms.append((m.group(1), m.group(2).replace("''", "'")))
    return terms


def totals(lines: list[dict], discount: Decimal, currency: str, rates: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
    """Business Central's arithmetic for a draft: (net amount, tax). Each line's amountExcludingTax is
    quantity x unitPrice rounded to the currency; the invoice discount is spread pro rata in the currency's
    unit (the remainder on the last line, stored as invoiceDiscountAllocation); tax per tax code on the
    net amounts of its lines, rounded once."""
    subtotal = sum((l["amountExcludingTax"] for l in lines), Decimal(0))
    left, nets = discount, []
    for i, line in enumerate(lines):
        share = left if i == len(lines) - 1 else \
            money.round_money(discount * line["amountExcludingTax"] / subtotal, currency) if subtotal else Decimal(0)
        left -= share
        line["invoiceDiscountAllocation"] = share
        nets.append((line["taxCode"], line["amountExcludingTax"] - share))
    tax = sum(((rate * sum((n for c, n in nets if c == code), Decimal(0))).quantize(money.quantum(currency),
                                                                                     ROUND_HALF_UP)
               for code, rate in rates.items()), Decimal(0))
    return subtotal - discount, tax


def line_amount(body: dict, currency: str) -> Decimal:
    return money.round_money(dec(body.get("quantity", 0)) * dec(body.get("unitPrice", 0)), currency)


class BusinessCentralSimulator(Simulator):
    """One Entra tenant with one Business Central environment and company."""

    def __init__(self, tenant: str = TENANT, environment: str = ENVIRONMENT, company: str = COMPANY,
                 items=("SVC-LABOR", "MAT-GENERAL", "SVC-FEE"), accounts=("40100", "23100", "64100"),
                 tax_codes: dict | None = None, limit: int = LIMIT, window: float = WINDOW, token_ttl: int = 3599):
        super().__init__()
        self.tenant, self.environment, self.company = tenant, environment, company
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(24)
        self.item_numbers, self.account_numbers = set(items), set(accounts)
        self.tax_rates = {k: Decimal(str(v)) for k, v in (tax_codes or {"TAXABLE": "0.08", "NONTAXABLE": "0"}).items()}
        self.limit, self.window, self.token_ttl = limit, window, token_ttl
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.issued: dict[str, float] = {}
            self.token_requests = 0
            self.customers: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self.sent: list[dict] = []
            self.calls: deque[float] = deque()
            self.faults.clear()
            self.forget()
            self._seq = {"customer": 10000, "draft": 1001, "posted": 103001, "etag": 0}

    # ------------------------------------------------------------ sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "dynamics365", "edition": "business_central", "base_url": url,
                "token_url": f"{url}/{self.tenant}/oauth2/v2.0/token", "tenant_id": self.tenant,
                "environment": self.environment, "company_id": self.company,
                "lines": {"labor": "SVC-LABOR", "material": "MAT-GENERAL", "fee": "SVC-FEE"},
                "tax_codes": {"taxable": "TAXABLE", "exempt": "NONTAXABLE"},
                "tax_account": "23100", "discount_account": "64100",
                "client_id_env": "INVOICER_SANDBOX_DYNAMICS365_CLIENT_ID",
                "client_secret_env": "INVOICER_SANDBOX_DYNAMICS365_CLIENT_SECRET"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_DYNAMICS365_CLIENT_ID": self.client_id,
                "INVOICER_SANDBOX_DYNAMICS365_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> dict | None:
        return None  # client credentials: the adapter asks Entra (here: this simulator) itself

    # ------------------------------------------------------------ helpers for tests

    def add_customer(self, **fields) -> dict:
        with self.lock:
            return self._new_customer(fields)

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        with self.lock:
            inv = self.invoices[invoice_id]
            inv["remainingAmount"] = inv["remainingAmount"] - amount
            if inv["remainingAmount"] <= 0:
                inv["status"] = "Paid"

    def expire_tokens(self) -> None:
        with self.lock:
            self.issued = {t: 0.0 for t in self.issued}

    # ------------------------------------------------------------ dispatch

    def rate_limited(self, request: Request) -> Reply:
        return odata_error(429, "Application_TooManyRequests",
                           "Too many requests reached. Actual (6001). Maximum (6000).", {"Retry-After": "5"})

    def handle(self, request: Request) -> Reply:
        if request.path.endswith("/oauth2/v2.0/token"):
            return self._token(request)
        m = re.match(API, request.path)
        if not m:
            return odata_error(404, "BadRequest_NotFound", f"No HTTP resource was found that matches {request.path}")
        with self.lock:
            refused = self._refused(request)
            if refused:
                return refused
            if (m["tenant"], m["env"], m["company"].lower()) != (self.tenant, self.environment, self.company):
                return odata_error(404, "BadRequest_NotFound", "The company or environment does not exist.")
            return super().handle(replace(request, path=request.path[m.end():]))

    def _refused(self, request: Request) -> Reply | None:
        """401 for a token Entra did not issue (or that expired), 429 past the sliding window; else None."""
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if self.issued.get(token, 0) <= time.time():
            return odata_error(401, "Authentication_InvalidCredentials", "The server has rejected the client credentials.")
        now = time.monotonic()
        while self.calls and self.calls[0] <= now - self.window:
            self.calls.popleft()
        if len(self.calls) >= self.limit:
            wait = max(1, int(self.calls[0] + self.window - now) + 1)
            return odata_error(429, "Application_TooManyRequests", f"Too many requests reached. Maximum ({self.limit}).",
                               {"Retry-After": str(wait)})
        self.calls.append(now)
        return None

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        if not request.path.startswith(f"/{self.tenant}/"):
            return Reply(400, {"error": "invalid_request",
                               "error_description": "AADSTS90002: Tenant not found."})
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client",
                               "error_description": "AADSTS7000215: Invalid client secret provided."})
        if not (form.get("scope") or "").endswith("/.default"):
            return Reply(400, {"error": "invalid_scope", "error_description": "AADSTS1002012: scope must end in .default"})
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.issued[token] = time.time() + self.token_ttl
            self.token_requests += 1
        return Reply(200, {"token_type": "Bearer", "expires_in": self.token_ttl, "ext_expires_in": self.token_ttl,
                           "access_token": token})

    # ------------------------------------------------------------ entities

    def _etag(self) -> str:
        self._seq["etag"] += 1
        return f'W/"JzE5OzEyMzQ1Njc4OTAxMjM0NTY3ODkxOzAwOyc={self._seq["etag"]}"'

    def _body(self, request: Request, writable: set, readonly: set, entity: str) -> dict | Reply:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return odata_error(400, "BadRequest", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return odata_error(400, "BadRequest", "The request body must be a JSON object.")
        for name in body:
            if name in readonly:
                return odata_error(400, "BadRequest_InvalidToken", f"The property '{name}' is read-only.")
            if name not in writable:
                return odata_error(400, "BadRequest_InvalidToken",
                                   f"The property '{name}' does not exist on type 'Microsoft.NAV.{entity}'.")
        return body

    def _new_customer(self, fields: dict) -> dict:
        self._seq["customer"] += 10
        customer = {"id": str(uuid.uuid4()), "number": fields.get("number") or f"C{self._seq['customer']}",
                    "displayName": "", "type": "Company", "email": "", "phoneNumber": "", "addressLine1": "",
                    "city": "", "state": "", "country": "", "postalCode": "", "currencyCode": "", **fields,
                    "@odata.etag": self._etag()}
        self.customers[customer["id"]] = customer
        return customer

    def _filtered(self, rows, request: Request) -> Reply:
        text = (request.query.get("$filter") or [""])[0]
        try:
            terms = parse_filter(text) if text else []
        except ValueError as exc:
            return odata_error(400, "BadRequest", f"Invalid filter expression: {exc}")
        return ok({"value": [r for r in rows if all(str(r.get(k, "")) == v for k, v in terms)]})

    def list_customers(self, request: Request) -> Reply:
        return self._filtered(list(self.customers.values()), request)

    def create_customer(self, request: Request) -> Reply:
        body = self._body(request, CUSTOMER_WRITABLE, {"id", "lastModifiedDateTime"}, "customer")
        if isinstance(body, Reply):
            return body
        if not body.get("displayName") or len(body["displayName"]) > 100:
            return odata_error(400, "BadRequest", "displayName is required and at most 100 characters.")
        return ok(self._new_customer(body), 201)

    def _customer(self, body: dict) -> dict | None:
        if body.get("customerId"):
            return self.customers.get(body["customerId"])
        return next((c for c in self.customers.values() if c["number"] == body.get("customerNumber")), None)

    def list_invoices(self, request: Request) -> Reply:
        return self._filtered([self._view(i) for i in self.invoices.values()], request)

    def create_invoice(self, request: Request) -> Reply:
        body = self._body(request, INVOICE_WRITABLE, INVOICE_READONLY, "salesInvoice")
        if isinstance(body, Reply):
            return body
        customer = self._customer(body)
        if customer is None:
            return odata_error(400, "Internal_RecordNotFound",
                               f"The Customer does not exist. Identification fields and values: "
                               f"No.='{body.get('customerNumber', '')}'")
        if len(body.get("externalDocumentNumber") or "") > 35:
            return odata_error(400, "BadRequest", "externalDocumentNumber: the length of the string is "
                                                  f"{len(body['externalDocumentNumber'])}, but it must be <= 35.")
        currency = body.get("currencyCode") or ""
        if currency and not money.is_currency(currency):
            return odata_error(400, "Internal_RecordNotFound", f"The Currency does not exist. Code='{currency}'")
        self._seq["draft"] += 1
        inv = {"id": str(uuid.uuid4()), "number": f"S-INV{self._seq['draft']}", "externalDocumentNumber": "",
               "invoiceDate": "", "postingDate": "", "dueDate": "", "customerId": customer["id"],
               "customerNumber": customer["number"], "customerName": customer["displayName"],
               "currencyCode": currency or "USD", "discountAmount": Decimal(0), "discountAppliedBeforeTax": True,
               "status": "Draft", "pricesIncludeTax": False, "email": customer.get("email") or "",
               **{k: v for k, v in body.items() if k not in ("customerId", "customerNumber", "currencyCode")},
               "lines": []}
        inv["discountAmount"] = dec(inv["discountAmount"])
        self.invoices[inv["id"]] = inv
        self._recompute(inv)
        return ok(self._view(inv), 201)

    def get_invoice(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None:
            return odata_error(404, "Internal_RecordNotFound", "The salesInvoice does not exist.")
        return ok(self._view(inv))

    def patch_invoice(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None:
            return odata_error(404, "Internal_RecordNotFound", "The salesInvoice does not exist.")
        match = request.headers.get("if-match")
        if not match:
            return odata_error(428, "BadRequest", "Could not find an If-Match header.")
        if match not in ("*", inv["@odata.etag"]):
            return odata_error(412, "Request_EntityChanged", "Another user has already changed the record.")
        if inv["status"] != "Draft":
            return odata_error(400, "Application_DialogException", "A posted invoice cannot be changed.")
        body = self._body(request, INVOICE_WRITABLE, INVOICE_READONLY, "salesInvoice")
        if isinstance(body, Reply):
            return body
        if "discountAmount" in body:
            amount = dec(body["discountAmount"])
            if amount < 0 or amount > self._subtotal(inv):
                return odata_error(400, "Application_DialogException",
                                   "The invoice discount cannot be more than the amount on the invoice.")
            body["discountAmount"] = amount
        inv.update(body)
        self._recompute(inv)
        return ok(self._view(inv))

    def list_lines(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None:
            return odata_error(404, "Internal_RecordNotFound", "The salesInvoice does not exist.")
        return ok({"value": [dict(l) for l in inv["lines"]]})

    def create_line(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None:
            return odata_error(404, "Internal_RecordNotFound", "The salesInvoice does not exist.")
        if inv["status"] != "Draft":
            return odata_error(400, "Application_DialogException",
                               "You cannot add lines to a posted sales invoice.")
        body = self._body(request, LINE_WRITABLE, LINE_READONLY, "salesInvoiceLine")
        if isinstance(body, Reply):
            return body
        kind = body.get("lineType") or "Item"
        number = body.get("lineObjectNumber") or ""
        if kind not in LINE_TYPES:
            return odata_error(400, "BadRequest", f"lineType: '{kind}' is not a valid value.")
        known = self.item_numbers if kind in ("Item", "Resource") else self.account_numbers
        if kind != "Comment" and number not in known:
            return odata_error(400, "Internal_RecordNotFound",
                               f"The {'G/L Account' if kind == 'Account' else kind} does not exist. "
                               f"Identification fields and values: No.='{number}'")
        code = body.get("taxCode") or ""
        if kind != "Comment" and code not in self.tax_rates:
            return odata_error(400, "Internal_RecordNotFound", f"The Tax Group does not exist. Code='{code}'")
        if len(body.get("description") or "") > 100:
            return odata_error(400, "BadRequest", "description: the length of the string must be <= 100.")
        try:
            qty, price = dec(body.get("quantity", 0)), dec(body.get("unitPrice", 0))
        except (InvalidOperation, ValueError):
            return odata_error(400, "BadRequest", "quantity and unitPrice must be numbers.")
        if qty != qty.quantize(Decimal("0.00001")) or price != price.quantize(Decimal("0.00001")):
            return odata_error(400, "Application_DialogException", "The value has too many decimal places.")
        line = {"id": str(uuid.uuid4()), "documentId": inv["id"], "sequence": 10000 * (len(inv["lines"]) + 1),
                "lineType": kind, "lineObjectNumber": number, "description": body.get("description") or "",
                "quantity": qty, "unitPrice": price, "taxCode": code, "discountAmount": Decimal(0),
                "amountExcludingTax": line_amount(body, inv["currencyCode"])}
        inv["lines"].append(line)
        self._recompute(inv)
        return ok(dict(line), 201)

    def action(self, request: Request) -> Reply:
        inv = self.invoices.get(request.params["id"])
        if inv is None:
            return odata_error(404, "Internal_RecordNotFound", "The salesInvoice does not exist.")
        name = request.params["action"]
        if name in ("post", "postAndSend"):
            if inv["status"] != "Draft":
                return odata_error(400, "Application_DialogException", "The invoice has already been posted.")
            if not inv["lines"]:
                return odata_error(400, "Application_DialogException", "There is nothing to post.")
            if inv["totalAmountIncludingTax"] < 0:
                return odata_error(400, "Application_DialogException",
                                   "The total amount for the invoice must be 0 or greater.")
            if name == "postAndSend" and not inv.get("email"):
                return odata_error(400, "Application_DialogException", "The customer has no email address.")
            self._seq["posted"] += 1
            inv.update(status="Open", number=f"PS-INV{self._seq['posted']}",
                       remainingAmount=inv["totalAmountIncludingTax"], **{"@odata.etag": self._etag()})
        if name in ("send", "postAndSend"):
            if inv["status"] == "Draft":
                return odata_error(400, "Application_DialogException", "Only posted invoices can be sent.")
            if not inv.get("email"):
                return odata_error(400, "Application_DialogException", "The customer has no email address.")
            self.sent.append({"id": inv["id"], "number": inv["number"], "to": inv["email"]})
        return Reply(204, b"", {"Content-Type": "application/json"})

    # ------------------------------------------------------------ BC's arithmetic

    def _subtotal(self, inv: dict) -> Decimal:
        return sum((l["amountExcludingTax"] for l in inv["lines"]), Decimal(0))

    def _recompute(self, inv: dict) -> None:
        net, tax = totals(inv["lines"], inv["discountAmount"], inv["currencyCode"], self.tax_rates)
        inv.update(totalAmountExcludingTax=net, totalTaxAmount=tax, totalAmountIncludingTax=net + tax,
                   **{"@odata.etag": self._etag()})
        if inv["status"] == "Draft":
            inv["remainingAmount"] = net + tax

    def _view(self, inv: dict) -> dict:
        return {k: v for k, v in inv.items() if k != "lines"}

    routes = [
        ("GET", r"/customers", list_customers),
        ("POST", r"/customers", create_customer),
        ("GET", r"/salesInvoices", list_invoices),
        ("POST", r"/salesInvoices", create_invoice),
        ("GET", rf"/salesInvoices\({ID}\)", get_invoice),
        ("PATCH", rf"/salesInvoices\({ID}\)", patch_invoice),
        ("GET", rf"/salesInvoices\({ID}\)/salesInvoiceLines", list_lines),
        ("POST", rf"/salesInvoices\({ID}\)/salesInvoiceLines", create_line),
        ("POST", rf"/salesInvoices\({ID}\)/Microsoft\.NAV\.(?P<action>post|postAndSend|send)", action),
    ]


# ---------------------------------------------------------------- Finance & Operations

FO_COMPANY = "usmf"
CDM_DIR = Path(__file__).resolve().parents[4] / "shared" / "vendor-specs" / "dynamics365-fo"
BASE_FIELDS = {"dataAreaId"}  # the legal entity: every F&O data entity has it (from DataEntityView)


@lru_cache(maxsize=4)
def cdm_attributes(entity: str) -> frozenset[str] | None:
    """The attribute names of a CDM entity definition in ../shared, or None when the file is not here."""
    path = CDM_DIR / f"{entity}.cdm.json"
    if not path.exists():
        return None
    definition = json.loads(path.read_text(encoding="utf-8"))["definitions"][0]
    return frozenset(a["name"] for a in definition["hasAttributes"] if isinstance(a, dict) and "dataType" in a)


def fo_error(status: int, message: str) -> Reply:
    """F&O's OData error: a generic message, the reason in innererror."""
    return Reply(status, dumps({"error": {"code": "", "message": "An error has occurred.", "innererror": {
        "message": message, "type": "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException",
        "stacktrace": ""}}}), {"Content-Type": "application/json; odata.metadata=minimal"})


class FinanceOperationsSimulator(BusinessCentralSimulator):
    """One F&O environment: FreeTextInvoiceHeaders / FreeTextInvoiceLines on /data, Entra tokens as for
    Business Central. What the entities do beyond their CDM attribute lists is NOT confirmed and is
    modelled here as invoicer assumes it (see docs/providers/dynamics365.md): the line finds its header by
    dataAreaId + ExternalInvoiceId, TransactionCurrencyAmount = Quantity x UnitPrice rounded to the
    currency, SalesTaxAmount from the line's item sales tax group; nothing is posted through the entities.
    Request bodies must use attribute names of the CDM definitions (when ../shared is here)."""

    def __init__(self, customers=("US-001", "US-002"), main_accounts=("401100", "222200", "403300"),
                 item_tax_groups: dict | None = None, **kwargs):
        self.customer_accounts = set(customers)
        self.main_accounts = set(main_accounts)
        self.item_tax_groups = {k: Decimal(str(v)) for k, v in (item_tax_groups or {"NONTAX": 0, "FULL": "0.08"}).items()}
        super().__init__(**kwargs)

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.headers: dict[str, dict] = {}
            self.fo_lines: list[dict] = []

    def platform(self, url: str) -> dict:
        return {"provider": "dynamics365", "edition": "finance_operations", "base_url": url,
                "token_url": f"{url}/{self.tenant}/oauth2/v2.0/token", "tenant_id": self.tenant, "company": FO_COMPANY,
                "lines": {"labor": "401100", "material": "401100", "fee": "401100"},
                "tax_codes": {"exempt": "NONTAX"}, "tax_account": "222200", "discount_account": "403300"}

    def handle(self, request: Request) -> Reply:
        if request.path.endswith("/oauth2/v2.0/token"):
            return self._token(request)
        with self.lock:
            refused = self._refused(request)
            if refused:
                return refused
            return Simulator.handle(self, request)

    def _fields(self, request: Request, entity: str) -> dict | Reply:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return fo_error(400, "The request body is not valid JSON.")
        known = cdm_attributes(entity)
        for name in body:
            if known is not None and name not in known | BASE_FIELDS:
                return Reply(400, dumps({"error": {"code": "", "message": f"The property '{name}' does not exist on "
                                                                         f"type 'Microsoft.Dynamics.DataEntities.{entity}'."}}))
        if str(body.get("dataAreaId", "")).lower() != FO_COMPANY:
            return fo_error(400, f"Company '{body.get('dataAreaId')}' does not exist.")
        return body

    def _rows(self, rows: list[dict], request: Request) -> Reply:
        text = (request.query.get("$filter") or [""])[0]
        try:
            terms = parse_filter(text) if text else []
        except ValueError as exc:
            return fo_error(400, f"Invalid filter: {exc}")
        return ok({"value": [dict(r) for r in rows if all(str(r.get(k, "")).lower() == v.lower() if k == "dataAreaId"
                                                           else str(r.get(k, "")) == v for k, v in terms)]})

    def list_headers(self, request: Request) -> Reply:
        return self._rows(list(self.headers.values()), request)

    def create_header(self, request: Request) -> Reply:
        body = self._fields(request, "FreeTextInvoiceHeaderEntity")
        if isinstance(body, Reply):
            return body
        if body.get("CustomerAccount") not in self.customer_accounts:
            return fo_error(400, f"Customer account {body.get('CustomerAccount')} does not exist.")
        if not money.is_currency(str(body.get("CurrencyCode") or "")):
            return fo_error(400, f"Currency {body.get('CurrencyCode')} does not exist.")
        self._seq["draft"] += 1
        number = f"FTI-{self._seq['draft']:06d}"
        header = {**body, "dataAreaId": FO_COMPANY, "FreeTextNumber": number, "InvoiceIdentifier": str(uuid.uuid4()),
                  "IsPosted": "No", "InvoiceId": ""}
        self.headers[number] = header
        return ok(dict(header), 201)

    def list_lines(self, request: Request) -> Reply:
        return self._rows(self.fo_lines, request)

    def create_line(self, request: Request) -> Reply:
        body = self._fields(request, "FreeTextInvoiceLineEntity")
        if isinstance(body, Reply):
            return body
        header = next((h for h in self.headers.values() if h.get("ExternalInvoiceId") == body.get("ExternalInvoiceId")
                       and h.get("ExternalInvoiceId")), None)
        if header is None:
            return fo_error(400, "The free text invoice header for this line was not found.")
        if header["IsPosted"] == "Yes":
            return fo_error(400, "The invoice has been posted and cannot be changed.")
        if body.get("MainAccountDisplayValue") not in self.main_accounts:
            return fo_error(400, f"Main account {body.get('MainAccountDisplayValue')} does not exist.")
        group = body.get("SalesTaxItemGroupId") or ""
        if group not in self.item_tax_groups:
            return fo_error(400, f"Item sales tax group {group} does not exist.")
        if len(body.get("Description") or "") > 60:
            return fo_error(400, "The Description field can hold 60 characters.")
        mine = [l for l in self.fo_lines if l["ExternalInvoiceId"] == header["ExternalInvoiceId"]]
        if any(dec(l["LineNumber"]) == dec(body.get("LineNumber")) for l in mine):
            return fo_error(400, f"Line number {body.get('LineNumber')} already exists.")
        amount = money.round_money(dec(body.get("Quantity")) * dec(body.get("UnitPrice")), header["CurrencyCode"])
        line = {**body, "dataAreaId": FO_COMPANY, "CurrencyCode": header["CurrencyCode"],
                "TransactionCurrencyAmount": amount,
                "SalesTaxAmount": money.round_money(amount * self.item_tax_groups[group], header["CurrencyCode"])}
        self.fo_lines.append(line)
        return ok(dict(line), 201)

    routes = [
        ("GET", r"/data/FreeTextInvoiceHeaders", list_headers),
        ("POST", r"/data/FreeTextInvoiceHeaders", create_header),
        ("GET", r"/data/FreeTextInvoiceLines", list_lines),
        ("POST", r"/data/FreeTextInvoiceLines", create_line),
    ]


SIMULATOR = BusinessCentralSimulator
