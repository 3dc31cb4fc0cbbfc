"""A small, faithful stand-in of a Salesforce org's REST API for exactly what the adapter uses.

Follows the REST API Developer Guide (developer.salesforce.com/docs/platform/api-rest/guide: "Insert or
Update (Upsert) a Record Using an External ID", "Composite", "Status Codes and Error Responses",
"Limits" / Sforce-Limit-Info, "Insert a ContentVersion"), and the OAuth 2.0 client credentials and JWT
bearer flows. No spec of an org exists to check against (see ../shared/vendor-specs/salesforce/), so the
org's objects are declared here: Account, our custom Invoice__c / Invoice_Line__c (as docs/providers/
salesforce.md tells an admin to create them), Order / OrderItem / PricebookEntry, WorkOrder /
WorkOrderLineItem (Field Service; their standard fields from the Object Reference), ContentVersion.
What it does:
- `POST /services/oauth2/token`: client_credentials (client id and secret in the form) or the JWT bearer
  grant (RS256 assertion checked with the connected app's certificate key: iss, sub, aud, exp); answers
  {access_token, instance_url, token_type, issued_at, id, signature}; errors {error, error_description};
- bearer auth on /services/data/vXX.X/...; an expired session is 401 [{errorCode: INVALID_SESSION_ID}];
- upsert `PATCH /sobjects/{Object}/{ExternalIdField}/{value}`: 201 {id, success, errors, created: true}
  when made, 200 {..., created: false} when updated; the field must be an external id; unknown fields are
  400 INVALID_FIELD, a missing required field on create 400 REQUIRED_FIELD_MISSING (fields named), a
  relationship given by external id (`Invoice__r: {Invoicer_Reference__c: v}`) must resolve; number
  fields keep their declared scale (half up, as Salesforce rounds); 300 when the value matches several;
- `GET /sobjects/{Object}/{ExternalIdField}/{value}?fields=` and `GET /sobjects/{Object}/{Id}`; 404
  [{errorCode: NOT_FOUND}];
- `POST /composite` (at most 25 subrequests, allOrNone rolls every change back and marks the others
  PROCESSING_HALTED) answering {compositeResponse: [{body, httpHeaders, httpStatusCode, referenceId}]};
- Order.TotalAmount = sum of its OrderItems' Quantity x UnitPrice, in the currency's decimals; WorkOrder's
  Subtotal/TotalPrice the same over its WorkOrderLineItems (GrandTotal adds Tax), WorkOrderNumber and
  LineItemNumber auto numbers, Status "New" by default;
- `POST /sobjects/ContentVersion` (VersionData base64, FirstPublishLocationId) and the SOQL query the
  adapter makes for it (`SELECT ... FROM ContentVersion WHERE FirstPublishLocationId = '..' AND Title = '..'`);
- every answer carries `Sforce-Limit-Info: api-usage=N/M`; past the daily cap M: 403
  [{errorCode: REQUEST_LIMIT_EXCEEDED, message: "TotalRequests Limit exceeded."}]; the base fault "429"
  answers Salesforce's concurrent-request limit the same way;
- faults from the base simulator, plus `fault_on(method, path regex, fault)`.
"""
from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import secrets
import threading
import time
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import unquote

from invoicer import money
from invoicer.providers.salesforce import transform
from invoicer.providers.simulate import Reply, Request, Simulator

ORG = "00D5j000000SIMORG"
TEXT, NUMBER, DATE, BOOL, REF = "text", "number", "date", "bool", "ref"


def F(type_: str, required: bool = False, scale: int | None = None, external: bool = False, to: str | None = None,
      relationship: str | None = None, readonly: bool = False) -> dict:
    return {"type": type_, "required": required, "scale": scale, "external": external, "to": to,
            "relationship": relationship, "readonly": readonly}


def default_schema() -> dict[str, dict[str, dict]]:
    """The org's objects and fields, as our docs page tells an admin to set them up."""
    return {
        "Account": {"Name": F(TEXT, True), "Phone": F(TEXT), "BillingStreet": F(TEXT), "BillingCity": F(TEXT),
                    "BillingState": F(TEXT), "BillingPostalCode": F(TEXT), "BillingCountry": F(TEXT),
                    "Invoicer_Customer_Id__c": F(TEXT, external=True)},
        "Invoice__c": {"Name": F(TEXT, True), "Invoicer_Reference__c": F(TEXT, external=True),
                       "Account__c": F(REF, to="Account", relationship="Account__r"),
                       "Invoice_Date__c": F(DATE, True), "Due_Date__c": F(DATE), "Currency__c": F(TEXT),
                       "Subtotal__c": F(NUMBER, scale=3), "Discount__c": F(NUMBER, scale=3),
                       "Tax__c": F(NUMBER, scale=3), "Total__c": F(NUMBER, True, scale=3),
                       "Job_Number__c": F(TEXT), "PO_Number__c": F(TEXT), "Summary__c": F(TEXT), "Customer_Email__c": F(TEXT),
                       "Status__c": F(TEXT), "Pay_URL__c": F(TEXT)},
        "Invoice_Line__c": {"Name": F(TEXT, True), "Invoicer_Line_Reference__c": F(TEXT, external=True),
                            "Invoice__c": F(REF, True, to="Invoice__c", relationship="Invoice__r"),
                            "Position__c": F(NUMBER, scale=0), "Kind__c": F(TEXT), "Description__c": F(TEXT),
                            "Quantity__c": F(NUMBER, scale=4), "Unit_Price__c": F(NUMBER, scale=6),
                            "Amount__c": F(NUMBER, scale=3), "Taxable__c": F(BOOL), "SKU__c": F(TEXT)},
        "Order": {"Name": F(TEXT), "Invoicer_Reference__c": F(TEXT, external=True),
                  "AccountId": F(REF, True, to="Account", relationship="Account"),
                  "EffectiveDate": F(DATE, True), "Status": F(TEXT, True), "Pricebook2Id": F(TEXT),
                  "Description": F(TEXT), "PoNumber": F(TEXT), "CurrencyIsoCode": F(TEXT),
                  "TotalAmount": F(NUMBER, readonly=True)},
        "OrderItem": {"Invoicer_Line_Reference__c": F(TEXT, external=True),
                      "OrderId": F(REF, True, to="Order", relationship="Order"),
                      "PricebookEntryId": F(TEXT, True), "Quantity": F(NUMBER, True, scale=2),
                      "UnitPrice": F(NUMBER, True, scale=3), "Description": F(TEXT)},
        # Field Service: the standard fields we use, as the Object Reference lists them (WorkOrder,
        # WorkOrderLineItem), plus the two external id fields our docs page asks an admin to add
        "WorkOrder": {"Invoicer_Reference__c": F(TEXT, external=True),
                      "AccountId": F(REF, to="Account", relationship="Account"), "Subject": F(TEXT),
                      "Description": F(TEXT), "Pricebook2Id": F(TEXT), "Status": F(TEXT), "CurrencyIsoCode": F(TEXT),
                      "Tax": F(NUMBER, scale=2), "WorkOrderNumber": F(TEXT, readonly=True),
                      "Subtotal": F(NUMBER, readonly=True), "TotalPrice": F(NUMBER, readonly=True),
                      "GrandTotal": F(NUMBER, readonly=True)},
        "WorkOrderLineItem": {"Invoicer_Line_Reference__c": F(TEXT, external=True),
                              "WorkOrderId": F(REF, True, to="WorkOrder", relationship="WorkOrder"),
                              "PricebookEntryId": F(TEXT), "Quantity": F(NUMBER, scale=2),
                              "UnitPrice": F(NUMBER, scale=3), "Description": F(TEXT), "Status": F(TEXT),
                              "LineItemNumber": F(TEXT, readonly=True), "Subtotal": F(NUMBER, readonly=True),
                              "TotalPrice": F(NUMBER, readonly=True)},
        "ContentVersion": {"Title": F(TEXT, True), "PathOnClient": F(TEXT, True), "VersionData": F(TEXT, True),
                           "FirstPublishLocationId": F(TEXT), "Description": F(TEXT),
                           "ContentDocumentId": F(TEXT, readonly=True)},
    }


PREFIX = {"Account": "001", "Invoice__c": "a0A", "Invoice_Line__c": "a0B", "Order": "801", "OrderItem": "802",
          "WorkOrder": "0WO", "WorkOrderLineItem": "1WL",
          "ContentVersion": "068", "ContentDocument": "069"}


def _err(status: int, message: str, code: str, fields: list | None = None, headers=None) -> Reply:
    return Reply(status, [{"message": message, "errorCode": code, **({"fields": fields} if fields is not None
                                                                      else {})}], headers or {})


class _Fail(Exception):
    def __init__(self, reply: Reply):
        self.reply = reply


class SalesforceSimulator(Simulator):
    """A Salesforce org for tests and the sandbox. `records[Object][Id]` holds what it was sent."""

    def __init__(self, client_id: str = "3MVG9sim.consumer.key", client_secret: str = "sim-consumer-secret",
                 username: str = "integration@acme.example", daily_limit: int = 15000, key_bits: int = 2048):
        super().__init__()
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.client_id, self.client_secret, self.username = client_id, client_secret, username
        self.daily_limit = daily_limit
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
        self.private_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
        self.public_key = key.public_key()
        self.url = ""  # set by the sandbox or a test: the instance_url the token answer names
        self._state = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock, self._state:
            self.forget()
            self.stall_seconds = 35.0
            self.schema = default_schema()
            self.records: dict[str, dict[str, dict]] = {name: {} for name in self.schema}
            self.files: dict[str, bytes] = {}  # ContentVersion id -> PDF bytes
            self.sessions: set[str] = set()
            self.used = 0
            self.token_calls = 0
            self.pricebook_entries = {"01uSIMLABOR", "01uSIMMATERIAL", "01uSIMFEE", "01uSIMDISCOUNT", "01uSIMTAX"}
            self._ids = itertools.count(1)

    # ------------------------------------------------------------ helpers for tests and the sandbox

    def issue_session(self) -> str:
        token = f"{ORG}!AQ" + secrets.token_urlsafe(40)
        with self._state:
            self.sessions.add(token)
        return token

    def expire_sessions(self) -> None:
        with self._state:
            self.sessions.clear()

    def by_ref(self, obj: str, field: str, value: str) -> list[dict]:
        return [r for r in self.records[obj].values() if r.get(field) == value]

    def children(self, obj: str, parent_field: str, parent_id: str) -> list[dict]:
        return sorted((r for r in self.records[obj].values() if r.get(parent_field) == parent_id),
                      key=lambda r: r["Id"])

    def platform(self, url: str) -> dict:
        self.url = url
        return {"provider": "salesforce", "login_url": url, "auth": "client_credentials"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SALESFORCE_CLIENT_ID": self.client_id,
                "INVOICER_SALESFORCE_CLIENT_SECRET": self.client_secret,
                "INVOICER_SALESFORCE_PRIVATE_KEY": self.private_key_pem}

    def tokens(self) -> None:
        return None  # the adapter fetches its own tokens with the connected app's credentials

    # ------------------------------------------------------------ plumbing

    def _limit_headers(self) -> dict:
        return {"Sforce-Limit-Info": f"api-usage={self.used}/{self.daily_limit}"}

    def rate_limited(self, request: Request) -> Reply:
        return _err(403, "ConcurrentPerOrgLongTxn Limit exceeded.", "REQUEST_LIMIT_EXCEEDED",
                    headers=self._limit_headers())

    def handle(self, request: Request) -> Reply:
        if request.path == "/services/oauth2/token":
            return self._token(request)
        value = request.headers.get("authorization", "")
        if not value.startswith("Bearer ") or value[7:].strip() not in self.sessions:
            return _err(401, "Session expired or invalid", "INVALID_SESSION_ID")
        with self._state:
            if self.used >= self.daily_limit:
                return _err(403, "TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED",
                            headers=self._limit_headers())
            self.used += 1
            if request.method in ("POST", "PATCH"):
                try:
                    request.body_json = json.loads(request.body or b"null", parse_float=Decimal)
                except ValueError:
                    return _err(400, "Unexpected character: was expecting a JSON value", "JSON_PARSER_ERROR")
            reply = self._route(request)
        reply.headers.update(self._limit_headers())
        if isinstance(reply.body, (dict, list)):  # numbers as Salesforce writes them: exact, never via float
            reply.body = transform.dumps(reply.body).encode()
            reply.headers["Content-Type"] = "application/json;charset=UTF-8"
        return reply

    def _route(self, request: Request) -> Reply:
        try:
            reply = Simulator.handle(self, request)
        except _Fail as fail:
            return fail.reply
        if reply.status == 404 and isinstance(reply.body, dict):
            return _err(404, "The requested resource does not exist", "NOT_FOUND")
        return reply

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        with self._state:
            self.token_calls += 1
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if form.get("client_id") != self.client_id:
                return Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
            if form.get("client_secret") != self.client_secret:
                return Reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            import jwt

            try:
                claims = jwt.decode(form.get("assertion", ""), self.public_key, algorithms=["RS256"],
                                    audience=self.url or None, options={"require": ["exp", "iss", "sub", "aud"]})
            except jwt.PyJWTError as exc:
                return Reply(400, {"error": "invalid_grant", "error_description": f"invalid assertion: {exc}"})
            if claims["iss"] != self.client_id:
                return Reply(400, {"error": "invalid_client_id", "error_description": "client identifier invalid"})
            if claims["sub"] != self.username:
                return Reply(400, {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"})
        else:
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})
        return Reply(200, {"access_token": self.issue_session(), "instance_url": self.url, "token_type": "Bearer",
                           "issued_at": str(int(time.time() * 1000)), "signature": "sim",
                           "id": f"{self.url}/id/{ORG}/005SIMUSER"})

    # ------------------------------------------------------------ records

    def _new_id(self, obj: str) -> str:
        return f"{PREFIX[obj]}5j{next(self._ids):010d}AAA"

    def _object(self, name: str) -> dict:
        if name not in self.schema:
            raise _Fail(_err(404, f"The requested resource does not exist: sObject type '{name}' is not supported.",
                             "NOT_FOUND"))
        return self.schema[name]

    def _value(self, name: str, spec: dict, value):
        if value is None:
            return None
        kind = spec["type"]
        if kind == NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                raise _Fail(_err(400, f"Cannot deserialize instance of double from {type(value).__name__} value "
                                      f"{value!r}", "JSON_PARSER_ERROR"))
            number = Decimal(value)
            scale = spec["scale"]
            return number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP) if scale is not None else number
        if kind == BOOL:
            if not isinstance(value, bool):
                raise _Fail(_err(400, f"Cannot deserialize instance of boolean from {value!r}", "JSON_PARSER_ERROR"))
            return value
        if kind == DATE:
            if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise _Fail(_err(400, f"{name}: value not of required type: {value}", "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                 [name]))
            return value
        if not isinstance(value, str):
            raise _Fail(_err(400, f"{name}: value not of required type: {value!r}", "INVALID_TYPE_ON_FIELD_IN_RECORD",
                             [name]))
        return value

    def _fields(self, obj: str, body: dict, creating: bool) -> dict:
        schema = self._object(obj)
        relationships = {s["relationship"]: (n, s) for n, s in schema.items() if s["relationship"]}
        out = {}
        for name, value in body.items():
            if name == "attributes":
                continue
            if name in relationships:
                field, spec = relationships[name]
                if not isinstance(value, dict) or len(value) != 1:
                    raise _Fail(_err(400, f"{name}: a relationship is set with one external id field",
                                     "INVALID_FIELD"))
                [(ext, ext_value)] = value.items()
                target = self.schema[spec["to"]]
                if not (target.get(ext) or {}).get("external"):
                    raise _Fail(_err(400, f"Invalid foreign key relationship name {name}.{ext}", "INVALID_FIELD"))
                found = self.by_ref(spec["to"], ext, str(ext_value))
                if not found:
                    raise _Fail(_err(400, f"Foreign key external ID: {ext_value} not found for field {ext} in entity "
                                          f"{spec['to']}", "INVALID_FIELD"))
                out[field] = found[0]["Id"]
                continue
            spec = schema.get(name)
            if spec is None:
                raise _Fail(_err(400, f"No such column '{name}' on sobject of type {obj}", "INVALID_FIELD"))
            if spec["readonly"]:
                raise _Fail(_err(400, f"Unable to create/update fields: {name}. Please check the security settings "
                                      f"of this field and verify that it is read/write for your profile or "
                                      f"permission set.", "INVALID_FIELD_FOR_INSERT_UPDATE", [name]))
            if spec["type"] == REF and value is not None and not any(value in recs for recs in self.records.values()):
                raise _Fail(_err(400, f"{name}: id value of incorrect type: {value}", "MALFORMED_ID", [name]))
            out[name] = self._value(name, spec, value)
        if creating:
            missing = [n for n, s in schema.items() if s["required"] and out.get(n) in (None, "")
                       and not s["readonly"]]
            if missing:
                raise _Fail(_err(400, f"Required fields are missing: [{', '.join(missing)}]", "REQUIRED_FIELD_MISSING",
                                 missing))
        return out

    def _check_order_item(self, fields: dict) -> None:
        entry = fields.get("PricebookEntryId")
        if entry is not None and entry not in self.pricebook_entries:
            raise _Fail(_err(400, "field integrity exception: PricebookEntryId (pricebook entry is in a different "
                                  "pricebook than the one assigned to the order, or Pricebook2Id is not set)",
                             "FIELD_INTEGRITY_EXCEPTION", ["PricebookEntryId"]))

    def _upsert(self, request: Request) -> Reply:
        obj, field, value = request.params["object"], request.params["field"], unquote(request.params["value"])
        schema = self._object(obj)
        if field != "Id" and not (schema.get(field) or {}).get("external"):
            return _err(404, f"Provided external ID field does not exist or is not accessible: {field}", "NOT_FOUND")
        body = request.body_json
        if not isinstance(body, dict):
            return _err(400, "Can not deserialize SObject out of START_ARRAY token", "JSON_PARSER_ERROR")
        if field in body:
            return _err(400, f"{field}: the external id is given in the URL; it must not be in the body too",
                        "INVALID_FIELD")
        found = self.by_ref(obj, field, value)
        if len(found) > 1:
            return Reply(300, [f"/services/data/{request.params['v']}/sobjects/{obj}/{r['Id']}" for r in found])
        fields = self._fields(obj, body, creating=not found)
        if obj in ("OrderItem", "WorkOrderLineItem"):
            self._check_order_item(fields)
        if found:
            found[0].update(fields)
            record, status = found[0], 200
        else:
            record = {"Id": self._new_id(obj), field: value, **self._defaults(obj), **fields}
            self.records[obj][record["Id"]] = record
            status = 201
        self._totals()
        return Reply(status, {"id": record["Id"], "success": True, "errors": [], "created": status == 201})

    def _defaults(self, obj: str) -> dict:
        """What Salesforce fills in on create: auto numbers, the default status."""
        if obj == "WorkOrder":
            return {"WorkOrderNumber": f"{len(self.records[obj]) + 1:08d}", "Status": "New"}
        if obj == "WorkOrderLineItem":
            return {"LineItemNumber": f"{len(self.records[obj]) + 1:08d}", "Status": "New"}
        return {}

    def _totals(self) -> None:
        """Order.TotalAmount and WorkOrder's Subtotal, TotalPrice, GrandTotal (+ Tax), computed from the items
        (no line item discounts here: the adapter sends none) in the currency's decimals."""
        def places(record: dict) -> Decimal:
            currency = record.get("CurrencyIsoCode") or "USD"
            return Decimal(1).scaleb(-(money.minor_unit(currency) if money.is_currency(currency) else 2))

        for order in self.records["Order"].values():
            items = self.children("OrderItem", "OrderId", order["Id"])
            total = sum((i["Quantity"] * i["UnitPrice"] for i in items), Decimal(0))
            order["TotalAmount"] = total.quantize(places(order), rounding=ROUND_HALF_UP)
        for wo in self.records["WorkOrder"].values():
            for item in self.children("WorkOrderLineItem", "WorkOrderId", wo["Id"]):
                line = ((item.get("Quantity") or Decimal(1)) * (item.get("UnitPrice") or Decimal(0)))
                item["Subtotal"] = item["TotalPrice"] = line.quantize(places(wo), rounding=ROUND_HALF_UP)
            total = sum((i["TotalPrice"] for i in self.children("WorkOrderLineItem", "WorkOrderId", wo["Id"])),
                        Decimal(0))
            wo["Subtotal"] = wo["TotalPrice"] = total
            wo["GrandTotal"] = total + (wo.get("Tax") or Decimal(0))

    def _view(self, obj: str, record: dict, fields: list[str] | None, version: str) -> dict:
        out = {"attributes": {"type": obj, "url": f"/services/data/{version}/sobjects/{obj}/{record['Id']}"}}
        names = fields or ["Id", *self.schema[obj]]
        for name in names:
            if name != "Id" and name not in self.schema[obj]:
                raise _Fail(_err(400, f"No such column '{name}' on entity '{obj}'", "INVALID_FIELD"))
            value = record.get(name)
            out[name] = value if name != "VersionData" else f"/services/data/{version}/sobjects/{obj}/{record['Id']}/VersionData"
        return out

    def _get(self, request: Request) -> Reply:
        obj, version = request.params["object"], request.params["v"]
        self._object(obj)
        fields = [f for v in request.query.get("fields", []) for f in v.split(",") if f] or None
        if request.params.get("field"):
            found = self.by_ref(obj, request.params["field"], unquote(request.params["value"]))
            if len(found) > 1:
                return Reply(300, [f"/services/data/{version}/sobjects/{obj}/{r['Id']}" for r in found])
            record = found[0] if found else None
        else:
            record = self.records[obj].get(request.params["value"])
        if record is None:
            return _err(404, "The requested resource does not exist", "NOT_FOUND")
        return Reply(200, self._view(obj, record, fields, version))

    def _create(self, request: Request) -> Reply:
        obj = request.params["object"]
        if obj != "ContentVersion":
            return _err(405, "HTTP Method 'POST' not allowed here; this simulator creates ContentVersion only",
                        "METHOD_NOT_ALLOWED")
        fields = self._fields(obj, request.body_json, creating=True)
        try:
            data = base64.b64decode(fields["VersionData"], validate=True)
        except ValueError:
            return _err(400, "VersionData: not valid base64", "INVALID_TYPE_ON_FIELD_IN_RECORD", ["VersionData"])
        where = fields.get("FirstPublishLocationId")
        if where and not any(where in recs for recs in self.records.values()):
            return _err(400, f"FirstPublishLocationId: id value of incorrect type: {where}", "MALFORMED_ID",
                        ["FirstPublishLocationId"])
        record = {"Id": self._new_id(obj), **fields, "VersionData": None, "ContentDocumentId":
                  self._new_id("ContentDocument")}
        self.records[obj][record["Id"]] = record
        self.files[record["Id"]] = data
        return Reply(201, {"id": record["Id"], "success": True, "errors": []})

    _QUERY = re.compile(r"SELECT\s+(?P<fields>[\w, ]+)\s+FROM\s+ContentVersion\s+WHERE\s+"
                        r"FirstPublishLocationId\s*=\s*'(?P<where>(?:[^'\\]|\\.)*)'\s+AND\s+Title\s*=\s*"
                        r"'(?P<title>(?:[^'\\]|\\.)*)'\s*$", re.I)

    def _query(self, request: Request) -> Reply:
        q = (request.query.get("q") or [""])[0]
        m = self._QUERY.match(q)
        if not m:
            return _err(400, f"this simulator answers only the adapter's ContentVersion query, not: {q[:80]}",
                        "MALFORMED_QUERY")
        unescape = lambda s: re.sub(r"\\(.)", r"\1", s)  # noqa: E731
        fields = [f.strip() for f in m["fields"].split(",")]
        hits = [r for r in self.records["ContentVersion"].values()
                if r.get("FirstPublishLocationId") == unescape(m["where"]) and r.get("Title") == unescape(m["title"])]
        return Reply(200, {"totalSize": len(hits), "done": True,
                           "records": [self._view("ContentVersion", r, fields, request.params["v"]) for r in hits]})

    def _composite(self, request: Request) -> Reply:
        body = request.body_json
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            return _err(400, "compositeRequest: a list of subrequests is required", "INVALID_INPUT")
        if len(subs) > 25:
            return _err(400, "Too many subrequests: at most 25", "LIMIT_EXCEEDED")
        all_or_none = bool(body.get("allOrNone"))
        snapshot = copy.deepcopy((self.records, self.files))
        out = []
        for sub in subs:
            url = sub.get("url") or ""
            path, _, query = url.partition("?")
            inner = Request(sub.get("method", "GET"), path, {k: [v] for k, v in
                                                          (p.split("=", 1) for p in query.split("&") if "=" in p)},
                            {}, b"")
            inner.body_json = sub.get("body")
            reply = self._route(inner)
            out.append({"body": reply.body, "httpHeaders": {}, "httpStatusCode": reply.status,
                        "referenceId": sub.get("referenceId")})
            if reply.status >= 400 and all_or_none:
                self.records, self.files = snapshot
                halted = [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since "
                           "another operation in the same transaction failed."}]
                out = [o if o["httpStatusCode"] >= 400 else {**o, "body": halted, "httpStatusCode": 400} for o in out]
                out += [{"body": halted, "httpHeaders": {}, "httpStatusCode": 400,
                         "referenceId": s.get("referenceId")} for s in subs[len(out):]]
                break
        return Reply(200, {"compositeResponse": out})

    _V = r"/services/data/(?P<v>v\d+\.\d)"
    routes = [
        ("PATCH", _V + r"/sobjects/(?P<object>\w+)/(?P<field>\w+)/(?P<value>[^/]+)", _upsert),
        ("GET", _V + r"/sobjects/(?P<object>\w+)/(?P<field>\w+)/(?P<value>[^/]+)", _get),
        ("GET", _V + r"/sobjects/(?P<object>\w+)/(?P<value>[A-Za-z0-9]{15,18})", _get),
        ("POST", _V + r"/sobjects/(?P<object>\w+)", _create),
        ("GET", _V + r"/query", _query),
        ("POST", _V + r"/composite", _composite),
    ]


SIMULATOR = SalesforceSimulator
