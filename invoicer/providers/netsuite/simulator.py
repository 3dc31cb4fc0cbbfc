"""A small, faithful stand-in for the parts of NetSuite's REST record service invoicer uses (tests and
`invoicer sandbox` only).

Endpoints (same paths as NetSuite): PUT /services/rest/record/v1/{invoice|customer}/eid:{externalId}
(upsert), GET /services/rest/record/v1/{invoice|customer}/{id | eid:externalId}, and the OAuth 2.0 token
endpoint POST /services/rest/auth/oauth2/v1/token (client credentials with a JWT assertion).

What it reproduces, and from which of Oracle's NetSuite help pages (docs.oracle.com/.../ns-online-help):
- Token-based authentication ("The Authorization Headers", "The Signature for Web Services and RESTlets"):
  `Authorization: OAuth realm="<ACCOUNT>", oauth_consumer_key, oauth_token, oauth_nonce, oauth_timestamp,
  oauth_signature_method="HMAC-SHA256", oauth_version="1.0", oauth_signature`. The signature is verified for
  real (RFC 5849 base string of method, URL and query and oauth parameters; key = consumer secret & token
  secret). HMAC-SHA1 is refused (support ended in 2023.1). A wrong realm, key, token or signature, a nonce
  seen before or a timestamp more than 5 minutes off answers 401 with NetSuite's body
  ({"type", "title": "Unauthorized", "status": 401, "o:errorDetails": [{"detail": "Invalid login attempt.
  ...", "o:errorCode": "INVALID_LOGIN"}]}, "Error Handling in REST Web Services").
- OAuth 2.0 client credentials ("POST Request to the Token Endpoint", "The Request Token Structure"): the
  assertion's signature is verified against the mapped certificate named by `kid` (PS256/384/512 or
  ES256/384/512), `iss` = the client id, `aud` = the token URL, `scope` with rest_webservices, exp at most
  60 minutes after iat; else 400 {"error": "invalid_grant"}. Access tokens last 3600 s (`expire_tokens()`
  ends them early); an unknown or ended bearer token gets the 401 INVALID_LOGIN body.
- Errors use that body: 400 INVALID_CONTENT with o:errorPath for a bad field value, 404 for an unknown id.
- Upsert ("Using the Upsert Operation", "Using External IDs"): PUT on eid:{externalId} creates the record
  or updates the one with that external id; external ids are letters, digits, _ and -. An update of a
  sublist APPENDS its lines unless the request names it in `replace` ("Updating a Sublist", "Replacing a
  Sublist": non-keyed lines are always appended). Answers 204 No Content with Location .../{type}/{id}.
- Concurrency governance ("Concurrency Governance and Session Management"): requests in flight per account
  are limited (`flight.limit`, default 5: the shared tier without SuiteCloud Plus); one more answers
  429 with o:errorCode CONCURRENCY_LIMIT_EXCEEDED. The status (429 or 400) and the body's wording are from
  third-party client code, not Oracle's pages: not confirmed.
- Invoices: line amount = quantity x rate rounded to the currency's precision when no amount is given; tax
  per line from its tax code's rate (rounded half-up per line); total = lines + tax. tranId from the
  account's numbering (INV1, INV2, ...) unless the request gives one; `toBeEmailed` with an email records
  an email sent on save (the field exists on transactions; that REST saves send it is not confirmed).
It stores what it received (`invoices`, `customers`, `emails`) so tests assert on NetSuite's side.
"""
from __future__ import annotations

import threading
import time
import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from ..common import InFlight, SecretsFromEnv
from ..simulate import Reply, Request, Simulator
from .adapter import realm
from .transform import dumps, loads

RECORD = r"/services/rest/record/v1"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ACCOUNT = "TSTDRV2710001"
NONCE_WINDOW = 300
INVOICE_FIELDS = {"entity", "tranDate", "dueDate", "memo", "item", "currency", "tranId", "otherRefNum",
                  "toBeEmailed", "email", "externalId", "subsidiary", "terms", "location", "department", "class"}
LINE_FIELDS = {"item", "quantity", "rate", "amount", "description", "taxCode", "location", "department", "class"}
CUSTOMER_FIELDS = {"companyName", "firstName", "lastName", "isPerson", "email", "phone", "comments", "subsidiary",
                   "currency", "externalId", "entityId"}
LOGIN = ("Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > "
         "Users/Roles > User Management > View Login Audit Trail.")


def _error(status: int, title: str, code: str, detail: str, **where) -> Reply:
    entry = {"detail": detail, "o:errorCode": code, **{f"o:{k}": v for k, v in where.items()}}
    body = {"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4", "title": title,
            "status": status, "o:errorDetails": [entry]}
    return Reply(status, dumps(body), {"Content-Type": "application/vnd.oracle.resource+json; type=error"})


def _invalid(detail: str, path: str) -> Reply:
    return _error(400, "Bad Request", "INVALID_CONTENT", f"Error while accessing resource: {detail}", errorPath=path)


class NetSuiteSimulator(SecretsFromEnv, Simulator):
    """One NetSuite account with items, tax codes, currencies, customers and invoices."""
    sandbox_slug = "netsuite"

    def __init__(self, account: str = ACCOUNT):
        super().__init__()
        self.account = account
        self.consumer_key, self.consumer_secret = "ns-ck-" + uuid.uuid4().hex, "ns-cs-" + uuid.uuid4().hex
        self.token_id, self.token_secret = "ns-tk-" + uuid.uuid4().hex, "ns-ts-" + uuid.uuid4().hex
        # OAuth 2.0 client credentials: the integration's client id and one mapped certificate (an EC P-256
        # key here; tests may map more with `map_certificate`)
        self.client_id = "ns-client-" + uuid.uuid4().hex
        key = ec.generate_private_key(ec.SECP256R1())
        self.private_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
        self.certificates = {"sim-cert-1": key.public_key()}
        self.certificate_id = "sim-cert-1"
        self.state = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.state, self.lock:
            self.forget()
            self.flight = InFlight(5)  # the shared tier's account limit
            self.nonces: set[tuple[str, str]] = set()
            self.access_tokens: dict[str, float] = {}  # bearer token -> expires at
            self.grants = 0
            # labor, material, fee, discount, tax items; a zero-rate and an 8 % tax code; USD (2) and JPY (0)
            self.items = {"11": "Service", "12": "InvtPart", "13": "OthCharge", "14": "Discount", "15": "OthCharge"}
            self.tax_codes = {"-7": Decimal(0), "-8": Decimal(0), "20": Decimal("0.08")}
            self.currencies = {"1": ("USD", 2), "2": ("JPY", 0), "3": ("EUR", 2)}
            self.base_currency = "1"
            self.customers: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self.emails: list[tuple[str, str]] = []
            self.next_id = 100
            self.next_number = 1
            self.writes = 0

    # ------------------------------------------------------------ the sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "netsuite", "account_id": self.account, "base_url": url, "currency": "USD",
                "currencies": {"JPY": "2", "EUR": "3"},
                "items": {"labor": "11", "material": "12", "fee": "13", "discount": "14", "tax": "15"},
                "tax_codes": {"taxable": "-7", "non_taxable": "-8"}, **self.secret_options()}

    def secret_values(self) -> dict[str, str]:  # TBA keys: env() gives them to the adapter, tokens() is None
        return {"consumer_key_env": self.consumer_key, "consumer_secret_env": self.consumer_secret,
                "token_id_env": self.token_id, "token_secret_env": self.token_secret,
                "client_id_env": self.client_id, "private_key_env": self.private_key_pem}

    def map_certificate(self, kid: str, public_key) -> None:
        self.certificates[kid] = public_key

    def expire_tokens(self) -> None:
        with self.state:
            self.access_tokens = {k: 0.0 for k in self.access_tokens}

    # ------------------------------------------------------------ test helpers

    def pay(self, invoice_id: str, amount: Decimal) -> dict:
        with self.state:
            inv = self.invoices[invoice_id]
            inv["amountPaid"] += amount
            inv["amountRemaining"] = inv["total"] - inv["amountPaid"]
            inv["status"] = {"id": "B", "refName": "Paid In Full"} if inv["amountRemaining"] <= 0 else inv["status"]
            return inv

    def by_external_id(self, kind: str, eid: str) -> dict | None:
        table = self.invoices if kind == "invoice" else self.customers
        return next((r for r in table.values() if r.get("externalId") == eid), None)

    def rate_limited(self, request: Request) -> Reply:
        return _error(429, "Too Many Requests", "CONCURRENCY_LIMIT_EXCEEDED",
                      "Concurrent request limit exceeded. Request blocked.")

    # ------------------------------------------------------------ dispatch

    def handle(self, request: Request) -> Reply:
        if request.path == TOKEN_PATH and request.method == "POST":
            return self.token(request)
        denied = self._authenticate(request)
        if denied:
            return denied
        with self.flight.enter(lambda: self.rate_limited(request)) as refused:
            if refused:
                return refused
            with self.state:
                return super().handle(request) if self._route(request) else \
                    _error(404, "Not Found", "NONEXISTENT_ID", f"Invalid record type or path {request.path}.")

    def _route(self, request: Request) -> bool:
        return any(m == request.method and p.match(request.path) for m, p, _ in self._compiled)

    def _authenticate(self, request: Request) -> Reply | None:
        denied = _error(401, "Unauthorized", "INVALID_LOGIN", LOGIN)
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            with self.state:
                return None if self.access_tokens.get(header[7:].strip(), 0) > time.time() else denied
        if not header.startswith("OAuth "):
            return denied
        params = {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(header)}
        if (params.get("realm") != realm(self.account) or params.get("oauth_consumer_key") != self.consumer_key
                or params.get("oauth_token") != self.token_id or params.get("oauth_version", "1.0") != "1.0"
                or params.get("oauth_signature_method") != "HMAC-SHA256"):
            return denied
        try:
            stamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            return denied
        if abs(time.time() - stamp) > NONCE_WINDOW:
            return denied
        host = request.headers.get("host", "")
        query = "&".join(f"{k}={v}" for k, vs in request.query.items() for v in vs)
        uri = f"http://{host}{request.path}" + (f"?{query}" if query else "")
        signed = OAuthRequest(uri, request.method, headers={"Authorization": header})
        signed.params = oauth_signature.collect_parameters(uri_query=query, headers={"Authorization": header},
                                                           exclude_oauth_signature=True, with_realm=False)
        signed.signature = params.get("oauth_signature", "")
        if not oauth_signature.verify_hmac_sha256(signed, self.consumer_secret, self.token_secret):
            return denied
        with self.state:
            nonce = (params.get("oauth_nonce", ""), str(stamp))
            if nonce in self.nonces:
                return denied
            self.nonces.add(nonce)
        return None

    def token(self, request: Request) -> Reply:
        """POST /services/rest/auth/oauth2/v1/token, client credentials with a JWT assertion ("POST Request to
        the Token Endpoint", "The Request Token Structure"): kid = a mapped certificate, iss = the client id,
        aud = this endpoint, scope includes rest_webservices, exp less than 60 minutes after iat."""
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != \
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return Reply(400, {"error": "unsupported_grant_type"})
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            key = self.certificates.get(header.get("kid", ""))
            if key is None or header.get("alg") not in ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512"):
                return Reply(400, {"error": "invalid_grant"})
            claims = jwt.decode(assertion, key, algorithms=[header["alg"]],
                                audience=f"http://{request.headers.get('host', '')}{TOKEN_PATH}",
                                options={"require": ["iss", "aud", "iat", "exp", "scope"]})
        except jwt.PyJWTError:
            return Reply(400, {"error": "invalid_grant"})
        scopes = claims["scope"] if isinstance(claims["scope"], list) else str(claims["scope"]).split(",")
        if claims["iss"] != self.client_id or "rest_webservices" not in [s.strip() for s in scopes] \
                or claims["exp"] - claims["iat"] > 3600:
            return Reply(400, {"error": "invalid_grant"})
        access = "ns-at-" + uuid.uuid4().hex
        with self.state:
            self.access_tokens[access] = time.time() + 3600
            self.grants += 1
        return Reply(200, {"access_token": access, "expires_in": "3600", "token_type": "bearer"})

    # ------------------------------------------------------------ records

    def _find(self, table: dict, ref: str) -> dict | None:
        if ref.startswith("eid:"):
            return next((r for r in table.values() if r.get("externalId") == ref[4:]), None)
        return table.get(ref)

    def get_record(self, request: Request) -> Reply:
        table = self.invoices if request.params["type"] == "invoice" else self.customers
        record = self._find(table, request.params["ref"])
        if record is None:
            return _error(404, "Not Found", "NONEXISTENT_ID",
                          "The record instance does not exist. Provide a valid record instance ID.",
                          urlPath=request.path)
        return Reply(200, dumps(self._view(record, request)), {"Content-Type": "application/vnd.oracle.resource+json"})

    def upsert(self, request: Request) -> Reply:
        kind, ref = request.params["type"], request.params["ref"]
        eid = ref[4:]
        if not ref.startswith("eid:") or not eid or not all(c.isalnum() or c in "_-" for c in eid):
            return _error(400, "Bad Request", "INVALID_ID", "The external ID may contain letters, numbers, "
                                                            "underscore and hyphen only.", urlPath=request.path)
        try:
            body = loads(request.body or b"{}")
        except ValueError:
            return _error(400, "Bad Request", "INVALID_CONTENT", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "Bad Request", "INVALID_CONTENT", "The request body must be a JSON object.")
        allowed = INVOICE_FIELDS if kind == "invoice" else CUSTOMER_FIELDS
        unknown = sorted(set(body) - allowed)
        if unknown:
            return _invalid(f"Invalid field {unknown[0]}.", unknown[0])
        replace = {s for v in request.query.get("replace", []) for s in v.split(",")}
        table = self.invoices if kind == "invoice" else self.customers
        existing = self._find(table, ref)
        made = self._invoice(body, existing, "item" in replace) if kind == "invoice" else \
            self._customer(body, existing)
        if isinstance(made, Reply):
            return made
        if existing is None:
            made["id"] = str(self.next_id)
            self.next_id += 1
        made["externalId"] = eid
        table[made["id"]] = made
        self.writes += 1
        if kind == "invoice" and made.get("toBeEmailed") and made.get("email") and not made.get("_emailed"):
            self.emails.append((made["id"], made["email"]))
            made["_emailed"] = True
        host = request.headers.get("host", "")
        return Reply(204, b"", {"Location": f"http://{host}/services/rest/record/v1/{kind}/{made['id']}"})

    def _customer(self, body: dict, existing: dict | None) -> dict | Reply:
        if not (body.get("companyName") or existing):
            return _invalid("Please enter value(s) for: Company Name", "companyName")
        currency = (body.get("currency") or {}).get("id")
        if currency and currency not in self.currencies:
            return _invalid(f"You have entered an Invalid Field Value {currency} for the following field: currency",
                            "currency")
        return {**(existing or {}), **body}

    def _invoice(self, body: dict, existing: dict | None, replace_items: bool) -> dict | Reply:
        entity = (body.get("entity") or (existing or {}).get("entity") or {}).get("id")
        if entity not in self.customers:
            return _invalid(f"You have entered an Invalid Field Value {entity} for the following field: entity",
                            "entity")
        customer = self.customers[entity]
        currency = (body.get("currency") or {}).get("id") or (customer.get("currency") or {}).get("id") \
            or self.base_currency
        if currency not in self.currencies:
            return _invalid(f"You have entered an Invalid Field Value {currency} for the following field: currency",
                            "currency")
        code, places = self.currencies[currency]
        quantum = Decimal(1).scaleb(-places)
        for name in ("tranDate", "dueDate"):
            if body.get(name):
                try:
                    date.fromisoformat(str(body[name]))
                except ValueError:
                    return _invalid(f"Invalid date value {body[name]}.", name)
        sent = (body.get("item") or {}).get("items")
        if sent is not None and not isinstance(sent, list):
            return _invalid("item.items must be an array.", "item.items")
        lines = [] if replace_items or existing is None else list(existing["_lines"])
        for i, li in enumerate(sent or []):
            bad = sorted(set(li) - LINE_FIELDS)
            if bad:
                return _invalid(f"Invalid field {bad[0]}.", f"item.items[{i}].{bad[0]}")
            item = (li.get("item") or {}).get("id")
            if item not in self.items:
                return _invalid(f"You have entered an Invalid Field Value {item} for the following field: item",
                                f"item.items[{i}].item")
            tax_code = (li.get("taxCode") or {}).get("id")
            if tax_code is not None and tax_code not in self.tax_codes:
                return _invalid(f"You have entered an Invalid Field Value {tax_code} for the following field: "
                                f"taxcode", f"item.items[{i}].taxCode")
            qty = Decimal(str(li.get("quantity", 1)))
            rate = Decimal(str(li["rate"])) if li.get("rate") is not None else None
            if li.get("amount") is not None:
                amount = Decimal(str(li["amount"])).quantize(quantum, ROUND_HALF_UP)
            elif rate is not None:
                amount = (qty * rate).quantize(quantum, ROUND_HALF_UP)
            else:
                return _invalid("Please enter value(s) for: Amount", f"item.items[{i}].amount")
            if self.items[item] == "Discount" and amount > 0:
                amount = -amount
            tax = (amount * self.tax_codes.get(tax_code, Decimal(0))).quantize(quantum, ROUND_HALF_UP)
            lines.append({"item": {"id": item}, "quantity": qty, "rate": rate, "amount": amount, "tax1Amt": tax,
                          "description": li.get("description", ""), "taxCode": li.get("taxCode")})
        if not lines:
            return _invalid("You must enter at least one line item for this transaction.", "item")
        subtotal = sum((li["amount"] for li in lines), Decimal(0))
        tax = sum((li["tax1Amt"] for li in lines), Decimal(0))
        total = subtotal + tax
        if total < 0:
            return _invalid("The total can not be negative.", "item")
        fields = {k: v for k, v in body.items() if k != "item"}
        record = {**(existing or {}), **fields, "_lines": lines, "currency": {"id": currency, "refName": code},
                  "subtotal": subtotal, "taxTotal": tax, "total": total}
        if existing is None:
            if not record.get("tranId"):
                record["tranId"] = f"INV{self.next_number}"
                self.next_number += 1
            record.update(amountPaid=Decimal(0), status={"id": "A", "refName": "Open"},
                          createdDate=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        record["amountRemaining"] = total - record.get("amountPaid", Decimal(0))
        return record

    def _view(self, record: dict, request: Request) -> dict:
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        host = request.headers.get("host", "")
        kind = request.params["type"]
        out["links"] = [{"rel": "self", "href": f"http://{host}/services/rest/record/v1/{kind}/{record['id']}"}]
        if kind == "invoice":
            out["item"] = {"links": [{"rel": "self", "href": f"http://{host}/services/rest/record/v1/invoice/"
                                                             f"{record['id']}/item"}]}
        return out

    def lines(self, invoice_id: str) -> list[dict]:
        return list(self.invoices[invoice_id]["_lines"])

    routes = [
        ("PUT", f"{RECORD}/(?P<type>invoice|customer)/(?P<ref>[^/]+)", upsert),
        ("GET", f"{RECORD}/(?P<type>invoice|customer)/(?P<ref>[^/]+)", get_record),
    ]


SIMULATOR = NetSuiteSimulator
