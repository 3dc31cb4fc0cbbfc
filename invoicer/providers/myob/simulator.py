"""A stand-in for the parts of the MYOB Business / AccountRight API v2 invoicer uses (tests and sandbox only).

MYOB publishes no machine-readable spec here (../shared/vendor-specs/myob/SOURCE.txt); this follows MYOB's
SDK contracts (myob-oss/AccountRight_Live_API_.Net_SDK: Sale/Invoice/ServiceInvoiceLine/SaleEmail, the
SaleEmailService route) and MYOB's API overview (developer.myob.com: headers, OData $filter, Location on
create, rate limits).

Endpoints, under /accountright/{company_file_id}: GET/POST Contact/Customer, GET GeneralLedger/TaxCode/{UID},
GET Sale/Invoice ($filter), POST Sale/Invoice/Service, GET/PUT Sale/Invoice/Service/{UID},
POST Sale/Invoice/Service/{UID}/Email; and POST /oauth2/v1/authorize (secure.myob.com; form) for tokens.
What it reproduces:
- Every call needs `Authorization: Bearer`, `x-myobapi-key` (the app's API key = client id) and
  `x-myobapi-version: v2`; a bad or expired token is 401 {"Errors": [{"Name": "OAuthTokenIsInvalid", ...}]};
  a missing key 403. Access tokens live 20 minutes; refresh tokens rotate.
- Creates answer 201 with an empty body and `Location: .../{UID}`; PUT needs the current RowVersion (409
  otherwise) and answers 200 with no body. Errors are `{"Errors": [{"Name", "Message", "AdditionalDetails",
  "ErrorCode", "Severity"}], "Information"}` with HTTP 400.
- Sale numbers longer than 13 characters are refused; accounts and tax codes must exist.
- Tax: each line's tax is its Total x its tax code's rate, rounded half-even per line (MYOB's rounding is
  not documented: per line is the less forgiving choice); TotalTax = their sum; TotalAmount = Subtotal +
  TotalTax.
- `$filter` of `Field eq 'value'` terms joined by `and` (quotes doubled inside values).
- Limits per API key: 8 calls a second and a daily cap (`quota`); a breach answers 403 from the gateway
  with `X-Mashery-Error-Code: ERR_403_DEVELOPER_OVER_QPS` (or `_OVER_RATE`) and an HTML body.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ..simkit import AccountingSimulator, Quota
from ..simulate import Reply, Request
from ..jsonmoney import dumps, loads

CF = "a1b2c3d4-0000-4000-8000-00000000cf01"
ACCESS_TTL = 1200
BASE = r"/accountright/(?P<cf>[^/]+)"
GST, FRE = "00000000-0000-4000-8000-0000000000a1", "00000000-0000-4000-8000-0000000000a2"
ACCOUNTS = {"labor": "00000000-0000-4000-8000-0000000000b1", "material": "00000000-0000-4000-8000-0000000000b2",
            "fee": "00000000-0000-4000-8000-0000000000b3", "discount": "00000000-0000-4000-8000-0000000000b4"}
_TERM = re.compile(r"\s*([A-Za-z][A-Za-z0-9/]*)\s+eq\s+'((?:[^']|'')*)'\s*")


def parse_filter(text: str) -> list[tuple[str, str]]:
    terms = []
    for part in re.split(r"\s+and\s+", text.strip()):
        m = _TERM.fullmatch(part)
        if not m:
            raise ValueError(f"unsupported $filter {text!r}")
        terms.append((m.group(1), m.group(2).replace("''", "'")))
    return terms


@dataclass
class CompanyFile:
    id: str
    tax_codes: dict[str, dict] = field(default_factory=dict)
    accounts: set[str] = field(default_factory=set)
    customers: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    emails: list[str] = field(default_factory=list)


def _errors(status: int, name: str, message: str, code: int, details: str = "") -> Reply:
    return Reply(status, dumps({"Errors": [{"Name": name, "Message": message, "AdditionalDetails": details,
                                            "ErrorCode": code, "Severity": "Error"}],
                                "Information": "Warning, error messages have not been finalised in this release "
                                               "and may change"}).encode(), {"Content-Type": "application/json"})


def _json(body: Any, status: int = 200) -> Reply:
    return Reply(status, dumps(body).encode(), {"Content-Type": "application/json"})


class MyobSimulator(AccountingSimulator):
    def __init__(self, company_files: tuple[str, ...] = (CF,), *, client_id: str = "sim-myob-api-key",
                 client_secret: str = "sim-myob-secret", gst: Decimal = Decimal("10")):
        super().__init__()
        self.client_id, self.client_secret, self.gst = client_id, client_secret, gst
        self._files = tuple(company_files)
        self.reset()

    def fresh(self) -> None:
        self.access: dict[str, float] = {}
        self.refresh: set[str] = set()
        self.key_quota = Quota(minute=8, per=1.0, day=1_000_000, concurrent=10**6)
        self.files = {}
        for cf in self._files:
            f = CompanyFile(cf, accounts=set(ACCOUNTS.values()))
            f.tax_codes[GST] = {"UID": GST, "Code": "GST", "Description": "Goods & Services Tax", "Rate": self.gst,
                                "Type": "GST_VAT"}
            f.tax_codes[FRE] = {"UID": FRE, "Code": "FRE", "Description": "GST Free", "Rate": Decimal("0"),
                                "Type": "GST_VAT"}
            self.files[cf] = f

    # ------------------------------------------------------------ sandbox hook and helpers

    def platform(self, url: str) -> dict:
        return {"provider": "myob", "company_file_id": self._files[0], "base_url": url,
                "token_url": f"{url}/oauth2/v1/authorize", "accounts": dict(ACCOUNTS),
                "tax_codes": {"taxable": GST, "exempt": FRE}, "currency": "AUD"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_MYOB_CLIENT_ID": self.client_id, "INVOICER_MYOB_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> dict:
        return self.grant()

    def company_file(self, cf: str | None = None) -> CompanyFile:
        return self.files[cf or self._files[0]]

    def grant(self) -> dict:
        with self.state:
            pair = self._mint()
            return {**pair, "expires_at": time.time() + ACCESS_TTL}

    def _mint(self) -> dict:
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        self.access[access] = self.now() + ACCESS_TTL
        self.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh}

    def pay(self, uid: str, paid: Decimal, cf: str | None = None) -> dict:
        with self.state:
            inv = self.company_file(cf).invoices[uid]
            inv["BalanceDueAmount"] -= paid
            inv["Status"] = "Closed" if inv["BalanceDueAmount"] <= 0 else "Open"
            inv["RowVersion"] = str(int(inv["RowVersion"]) + 1)
            return inv

    # ------------------------------------------------------------ auth, limits, token

    def authorise(self, request: Request):
        if request.headers.get("x-myobapi-key") != self.client_id:
            return None, Reply(403, b"<h1>Developer Inactive</h1>", {"X-Mashery-Error-Code": "ERR_403_DEVELOPER_INACTIVE",
                                                                     "Content-Type": "text/html"})
        auth = request.headers.get("authorization", "")
        expires = self.access.get(auth[7:].strip() if auth.startswith("Bearer ") else "")
        if expires is None or self.now() >= expires:
            return None, _errors(401, "OAuthTokenIsInvalid", "The supplied OAuth token (Bearer) is not valid", 31001)
        if request.headers.get("x-myobapi-version") != "v2":
            return None, _errors(400, "ApiVersionMissing", "x-myobapi-version: v2 is required", 400)
        cf = self.files.get(request.params.get("cf", ""))
        if cf is None:
            return None, _errors(404, "CompanyFileNotFound", "The company file was not found", 1002)
        return cf, None

    def quota(self, cf: CompanyFile) -> Quota:
        return self.key_quota

    def over_limit(self, limit: str, retry_after: float) -> Reply:
        code, text = ("ERR_403_DEVELOPER_OVER_RATE", "Developer Over Rate") if limit == "day" else \
            ("ERR_403_DEVELOPER_OVER_QPS", "Developer Over Qps")
        return Reply(403, f"<h1>{text}</h1>".encode(), {"X-Mashery-Error-Code": code, "Content-Type": "text/html"})

    def not_found(self, request: Request) -> Reply:
        return _errors(404, "ResourceNotFound", f"{request.path} was not found", 404)

    def token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _json({"error": "invalid_client"}, 400)
        with self.state:
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.refresh:
                return _json({"error": "invalid_grant"}, 400)
            self.refresh.discard(form["refresh_token"])
            pair = self._mint()
        return _json({**pair, "token_type": "bearer", "expires_in": str(ACCESS_TTL), "scope": "sme-sales sme-contacts"})

    # ------------------------------------------------------------ helpers

    def _uri(self, cf: CompanyFile, path: str) -> str:
        return f"https://api.myob.com/accountright/{cf.id}/{path}"

    @staticmethod
    def _body(request: Request) -> tuple[Any, Reply | None]:
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return None, _errors(400, "InvalidJson", "The request body is not valid JSON", 400)
        return (body, None) if isinstance(body, dict) else (None, _errors(400, "InvalidJson", "Not an object", 400))

    @staticmethod
    def _filtered(items: list[dict], request: Request) -> Reply:
        text = (request.query.get("$filter") or [""])[0]
        if text:
            try:
                terms = parse_filter(text)
            except ValueError as exc:
                return _errors(400, "InvalidFilter", str(exc), 400)
            items = [i for i in items if all(str(i.get(k, "")) == v for k, v in terms)]
        return _json({"Items": items, "NextPageLink": None, "Count": len(items)})

    # ------------------------------------------------------------ customers, tax codes

    def get_customers(self, cf: CompanyFile, request: Request) -> Reply:
        return self._filtered(list(cf.customers.values()), request)

    def post_customer(self, cf: CompanyFile, request: Request) -> Reply:
        body, bad = self._body(request)
        if bad:
            return bad
        if not (body.get("CompanyName") or body.get("LastName")):
            return _errors(400, "ValidationError", "CompanyName or LastName is required", 4000)
        selling = body.get("SellingDetails") or {}
        for name in ("TaxCode", "FreightTaxCode"):
            if (selling.get(name) or {}).get("UID") not in cf.tax_codes:
                return _errors(400, "ValidationError", f"SellingDetails.{name} is required", 4001)
        if body.get("DisplayID") and any(c.get("DisplayID") == body["DisplayID"] for c in cf.customers.values()):
            return _errors(400, "DuplicateCardId", f"Card ID {body['DisplayID']} is already used", 4002)
        uid = str(uuid.uuid4())
        cf.customers[uid] = {**body, "UID": uid, "RowVersion": "1", "URI": self._uri(cf, f"Contact/Customer/{uid}")}
        return Reply(201, b"", {"Location": self._uri(cf, f"Contact/Customer/{uid}")})

    def get_tax_code(self, cf: CompanyFile, request: Request) -> Reply:
        code = cf.tax_codes.get(request.params["uid"])
        return _json(code) if code else self.not_found(request)

    # ------------------------------------------------------------ invoices

    def _sale(self, cf: CompanyFile, body: dict) -> dict | Reply:
        number = str(body.get("Number") or "")
        if len(number) > 13:
            return _errors(400, "ValidationError", "Number must be 13 characters or fewer", 4100, "Number")
        if (body.get("Customer") or {}).get("UID") not in cf.customers:
            return _errors(400, "ValidationError", "Customer was not found", 4101, "Customer")
        lines, subtotal, tax = [], Decimal(0), Decimal(0)
        for n, line in enumerate(body.get("Lines") or []):
            try:
                total = Decimal(str(line.get("Total")))
            except InvalidOperation:
                return _errors(400, "ValidationError", f"Lines[{n}].Total is not a number", 4102)
            if total != total.quantize(Decimal("0.01")):
                return _errors(400, "ValidationError", f"Lines[{n}].Total has more than 2 decimals", 4102)
            if (line.get("Account") or {}).get("UID") not in cf.accounts:
                return _errors(400, "ValidationError", f"Lines[{n}].Account was not found", 4103)
            code = cf.tax_codes.get((line.get("TaxCode") or {}).get("UID"))
            if code is None:
                return _errors(400, "ValidationError", f"Lines[{n}].TaxCode was not found", 4104)
            line_tax = (total * code["Rate"] / 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
            lines.append({**line, "RowID": n + 1, "RowVersion": "1"})
            subtotal += total
            tax += line_tax
        if not lines:
            return _errors(400, "ValidationError", "A sale needs at least one line", 4105)
        return {**body, "Lines": lines, "Subtotal": subtotal, "TotalTax": tax, "TotalAmount": subtotal + tax,
                "Freight": Decimal("0.00"), "IsTaxInclusive": bool(body.get("IsTaxInclusive", False))}

    def post_invoice(self, cf: CompanyFile, request: Request) -> Reply:
        body, bad = self._body(request)
        if bad:
            return bad
        sale = self._sale(cf, body)
        if isinstance(sale, Reply):
            return sale
        uid = str(uuid.uuid4())
        uri = self._uri(cf, f"Sale/Invoice/Service/{uid}")
        cf.invoices[uid] = {**sale, "UID": uid, "URI": uri, "RowVersion": "1", "Status": "Open",
                            "InvoiceType": "Service", "BalanceDueAmount": sale["TotalAmount"],
                            "InvoiceDeliveryStatus": body.get("InvoiceDeliveryStatus", "Print")}
        return Reply(201, b"", {"Location": uri})

    def put_invoice(self, cf: CompanyFile, request: Request) -> Reply:
        inv = cf.invoices.get(request.params["uid"])
        if inv is None:
            return self.not_found(request)
        body, bad = self._body(request)
        if bad:
            return bad
        if body.get("RowVersion") != inv["RowVersion"]:
            return _errors(409, "ConcurrencyError", "The RowVersion does not match; the record has changed", 409)
        sale = self._sale(cf, body)
        if isinstance(sale, Reply):
            return sale
        paid = inv["TotalAmount"] - inv["BalanceDueAmount"]
        inv.update({**sale, "UID": inv["UID"], "URI": inv["URI"], "RowVersion": str(int(inv["RowVersion"]) + 1),
                    "BalanceDueAmount": sale["TotalAmount"] - paid})
        return Reply(200, b"")

    def get_invoices(self, cf: CompanyFile, request: Request) -> Reply:
        return self._filtered(list(cf.invoices.values()), request)

    def get_invoice(self, cf: CompanyFile, request: Request) -> Reply:
        inv = cf.invoices.get(request.params["uid"])
        return _json(inv) if inv else self.not_found(request)

    def email_invoice(self, cf: CompanyFile, request: Request) -> Reply:
        inv = cf.invoices.get(request.params["uid"])
        if inv is None:
            return self.not_found(request)
        body, bad = self._body(request)
        if bad:
            return bad
        if not body.get("To") or not all((to or {}).get("Email") for to in body["To"]):
            return _errors(400, "ValidationError", "At least one recipient with an email is required", 4200, "To")
        if body.get("EntityUid") != inv["UID"] or body.get("ResourceType") != "Invoice":
            return _errors(400, "ValidationError", "EntityUid/ResourceType do not match the route", 4201)
        cf.emails.append(inv["UID"])
        inv["InvoiceDeliveryStatus"] = "Nothing"  # "already printed or sent"
        return _json({"Sent": True})

    outside = {("POST", "/oauth2/v1/authorize"): token}
    routes = [
        ("GET", f"{BASE}/Contact/Customer", get_customers),
        ("POST", f"{BASE}/Contact/Customer", post_customer),
        ("GET", f"{BASE}/GeneralLedger/TaxCode/(?P<uid>[^/]+)", get_tax_code),
        ("GET", f"{BASE}/Sale/Invoice", get_invoices),
        ("POST", f"{BASE}/Sale/Invoice/Service", post_invoice),
        ("GET", f"{BASE}/Sale/Invoice/Service/(?P<uid>[^/]+)", get_invoice),
        ("PUT", f"{BASE}/Sale/Invoice/Service/(?P<uid>[^/]+)", put_invoice),
        ("POST", f"{BASE}/Sale/Invoice/Service/(?P<uid>[^/]+)/Email", email_invoice),
    ]


SIMULATOR = MyobSimulator
