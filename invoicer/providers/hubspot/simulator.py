"""A small, faithful stand-in of HubSpot's CRM API for exactly what the adapter uses.

Follows HubSpot's invoices, line items, contacts, notes, search and associations v4 guides
(developers.hubspot.com/docs/api-reference/...) and the request/response models of the
`hubspot-api-client` package. What it does:
- auth: `Authorization: Bearer <token>`, a private app token or an OAuth access token (expiring);
  `POST /oauth/v1/token` trades a refresh token for a new access token (client id and secret as form
  fields); a bad token gets HubSpot's 401 body (category INVALID_AUTHENTICATION);
- objects: contacts (email unique, case-insensitive: a second one is 409 CONFLICT "Contact already
  exists. Existing ID: n"), invoices (draft on create; a unique custom property, `invoicer_reference` by
  default, whose taken value is 409 CONFLICT), line items (single and batch create with associations,
  batch read), notes; every property value a string; unknown properties -> 400 VALIDATION_ERROR
  (PROPERTY_DOESNT_EXIST), read-only ones (hs_amount_billed, hs_number, amount) -> 400 READ_ONLY_VALUE;
- bodies checked for the top-level names HubSpot's models declare (properties, associations,
  objectWriteTraceId; filterGroups, sorts, query, properties, limit, after; inputs);
- invoices: hs_amount_billed and hs_subtotal computed from the associated line items (amount =
  quantity x (price - hs_discount), unconfirmed how HubSpot rounds); `hs_invoice_status: open` needs a
  contact, at least one line item and hs_due_date (else 400 VALIDATION_ERROR) and assigns hs_number;
- search (`filterGroups` with EQ / CONTAINS_TOKEN), optionally lagging writes by `search_lag` seconds as
  HubSpot's search index does;
- limits: `per_10s` requests per rolling 10 s per token and 4 per second on search endpoints, with
  HubSpot's 429 body {status: "error", message, errorType: "RATE_LIMIT", correlationId, policyName};
- faults from the base simulator, plus `fault_on(method, path regex, fault)` for one endpoint.
Not modelled: properties/schema APIs, companies, quotes, payments, HubSpot's own tax rates and discounts.
"""
from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from invoicer.providers.simulate import Reply, Request, Simulator

PORTAL = "24681357"
CREATE_KEYS = {"properties", "associations", "objectWriteTraceId"}
SEARCH_KEYS = {"filterGroups", "sorts", "query", "properties", "limit", "after"}
BATCH_READ_KEYS = {"inputs", "properties", "propertiesWithHistory", "idProperty"}
PROPERTIES = {
    "contacts": {"email", "firstname", "lastname", "phone", "address", "city", "state", "zip", "country", "company"},
    "invoices": {"hs_currency", "hs_invoice_date", "hs_due_date", "hs_comments", "hs_purchase_order_number",
                 "hs_invoice_status", "hs_number", "hs_amount_billed", "hs_subtotal", "hs_balance_due"},
    "line_items": {"name", "quantity", "price", "hs_discount", "hs_sku", "description", "amount",
                   "hs_product_id", "hs_tax_rate_group_id"},
    "notes": {"hs_timestamp", "hs_note_body"},
}
READ_ONLY = {"invoices": {"hs_number", "hs_amount_billed", "hs_subtotal", "hs_balance_due"},
             "line_items": {"amount"}}
NUMBERS = {"quantity", "price", "hs_discount"}
# association type ids the simulator accepts, (from, to) -> id
TYPES = {("invoices", "contacts"): 177, ("invoices", "deals"): 175, ("line_items", "invoices"): 410,
         ("notes", "contacts"): 202}
STATUSES = {"draft", "open", "paid", "voided"}


def _error(status: int, message: str, category: str, errors: list | None = None, headers=None, **extra) -> Reply:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category,
            **extra}
    if errors:
        body["errors"] = errors
    return Reply(status, body, headers or {})


class _Fail(Exception):
    def __init__(self, reply: Reply):
        self.reply = reply


def _validation(message: str, code: str = "INVALID_VALUE", name: str | None = None) -> _Fail:
    errors = [{"message": message, "code": code, **({"context": {"propertyName": [name]}} if name else {})}]
    return _Fail(_error(400, f"Property values were not valid: {message}", "VALIDATION_ERROR", errors))


class HubSpotSimulator(Simulator):
    """HubSpot for tests and the sandbox. `objects[type][id]` holds what it was sent."""

    def __init__(self, private_tokens=("pat-na1-sim-token",), client_id: str = "hubspot-sim-client",
                 client_secret: str = "hubspot-sim-secret", per_10s: int = 100,
                 unique_property: str = "invoicer_reference", portal: str = PORTAL, clock=time.time):
        super().__init__()
        self.private_tokens = set(private_tokens)
        self.client_id, self.client_secret = client_id, client_secret
        self.per_10s, self.unique_property, self.portal = per_10s, unique_property, portal
        self._state = threading.RLock()
        self.reset(clock)

    def reset(self, clock=time.time) -> None:
        with self.lock, self._state:
            self.forget()
            self.stall_seconds = 35.0
            self.clock = clock
            self.objects: dict[str, dict[str, dict]] = {t: {} for t in PROPERTIES}
            self.assoc: dict[tuple[str, str, str], dict[str, int]] = {}  # (from type, id, to type) -> {to id: type}
            self.access: dict[str, float] = {}  # OAuth access token -> expiry (epoch)
            self.refresh_tokens: set[str] = set()
            self.search_lag = 0.0
            self.rate_limits = True
            self.token_calls = 0
            self._hits: dict[str, deque] = {}
            self._ids = itertools.count(1001)
            self._numbers = itertools.count(1)

    # ------------------------------------------------------------ helpers for tests and the sandbox

    def issue_tokens(self, expires_in: float = 1800) -> dict:
        """An OAuth token pair as the consent flow would store it."""
        access, refresh = "CO" + secrets.token_urlsafe(24), "na1-" + secrets.token_urlsafe(16)
        with self._state:
            self.access[access] = self.clock() + expires_in
            self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_at": self.clock() + expires_in}

    def expire(self, access_token: str) -> None:
        with self._state:
            self.access[access_token] = 0

    def add(self, kind: str, **properties) -> dict:
        with self._state:
            return self._store(kind, {k: str(v) for k, v in properties.items()})

    def associated(self, kind: str, ident: str, to: str) -> list[str]:
        return list(self.assoc.get((kind, str(ident), to), {}))

    def lines_of(self, invoice_id: str) -> list[dict]:
        return [self.objects["line_items"][i] for i in self.associated("invoices", invoice_id, "line_items")]

    # the sandbox hook (invoicer.sandbox): a tenants-file entry, environment and tokens for this simulator
    def platform(self, url: str) -> dict:
        return {"provider": "hubspot", "base_url": url, "token_url": f"{url}/oauth/v1/token",
                "portal_id": self.portal, "note": True}

    def env(self) -> dict[str, str]:
        return {"INVOICER_HUBSPOT_CLIENT_ID": self.client_id, "INVOICER_HUBSPOT_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> dict:
        return self.issue_tokens()

    # ------------------------------------------------------------ plumbing

    def rate_limited(self, request: Request) -> Reply:
        return Reply(429, {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                           "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                           "policyName": "TEN_SECONDLY_ROLLING"},
                     {"X-HubSpot-RateLimit-Max": str(self.per_10s), "X-HubSpot-RateLimit-Remaining": "0",
                      "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})

    def _auth(self, request: Request) -> str | Reply:
        value = request.headers.get("authorization", "")
        token = value[7:].strip() if value.startswith("Bearer ") else ""
        if token in self.private_tokens or self.access.get(token, 0) > self.clock():
            return token
        if not token:
            return _error(401, "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                               "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                               "oauth-overview", "INVALID_AUTHENTICATION")
        expired = token in self.access
        return _error(401, "The OAuth token used to make this call expired" if expired else
                      "Authentication credentials not found.", "EXPIRED_AUTHENTICATION" if expired
                      else "INVALID_AUTHENTICATION")

    def _over_limit(self, request: Request, token: str) -> bool:
        now = self.clock()
        buckets = [(token, self.per_10s, 10.0)]
        if request.path.endswith("/search"):
            buckets.append((f"{token}:search", 4, 1.0))
        with self._state:
            for name, limit, window in buckets:
                hits = self._hits.setdefault(name, deque())
                while hits and hits[0] <= now - window:
                    hits.popleft()
                if len(hits) >= limit:
                    return True
            for name, _, _ in buckets:
                self._hits[name].append(now)
        return False

    def handle(self, request: Request) -> Reply:
        if request.path == "/oauth/v1/token":
            return self._token(request)
        token = self._auth(request)
        if isinstance(token, Reply):
            return token
        if self.rate_limits and self._over_limit(request, token):
            return self.rate_limited(request)
        with self._state:
            try:
                if request.method in ("POST", "PATCH"):
                    if "application/json" not in request.headers.get("content-type", ""):
                        raise _Fail(_error(415, "Unsupported Media Type: use application/json", "VALIDATION_ERROR"))
                    try:
                        body = request.json()
                    except ValueError:
                        raise _Fail(_error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")) from None
                    if not isinstance(body, dict):
                        raise _Fail(_error(400, "Invalid input JSON: expected an object", "VALIDATION_ERROR"))
                    request.body_json = body
                reply = Simulator.handle(self, request)
            except _Fail as fail:
                return fail.reply
        if reply.status == 404 and isinstance(reply.body, dict) and "category" not in reply.body:
            return _error(404, f"Unable to infer object type from: {request.path}", "OBJECT_NOT_FOUND")
        return reply

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        with self._state:
            self.token_calls += 1
            if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                return Reply(400, {"status": "BAD_CLIENT_ID", "message": "missing or unknown client_id"})
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.refresh_tokens:
                return Reply(400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"})
            access = "CO" + secrets.token_urlsafe(24)
            self.access[access] = self.clock() + 1800
        # HubSpot's refresh tokens do not rotate: the same one comes back
        return Reply(200, {"token_type": "bearer", "access_token": access, "expires_in": 1800,
                           "refresh_token": form["refresh_token"]})

    # ------------------------------------------------------------ objects

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock(), tz=timezone.utc).isoformat(timespec="milliseconds") \
            .replace("+00:00", "Z")

    def _store(self, kind: str, props: dict) -> dict:
        ident = str(next(self._ids))
        obj = {"id": ident, "properties": {**props, "hs_object_id": ident}, "createdAt": self._now_iso(),
               "updatedAt": self._now_iso(), "archived": False, "_created": self.clock()}
        self.objects[kind][ident] = obj
        return obj

    def _view(self, kind: str, obj: dict, wanted=None) -> dict:
        props = dict(obj["properties"])
        if kind == "invoices":
            props.update(self._totals(obj["id"]))
        if kind == "line_items":
            props["amount"] = format(self._amount(props), "f")
        if wanted is not None:
            props = {k: v for k, v in props.items() if k in set(wanted) | {"hs_object_id", "createdate"}}
        return {"id": obj["id"], "properties": props, "createdAt": obj["createdAt"], "updatedAt": obj["updatedAt"],
                "archived": obj["archived"]}

    @staticmethod
    def _amount(props: dict) -> Decimal:
        qty, price = Decimal(props.get("quantity") or "1"), Decimal(props.get("price") or "0")
        return qty * (price - Decimal(props.get("hs_discount") or "0"))

    def _totals(self, invoice_id: str) -> dict:
        lines = self.lines_of(invoice_id)
        billed = sum((self._amount(li["properties"]) for li in lines), Decimal(0))
        subtotal = sum((Decimal(li["properties"].get("quantity") or "1") * Decimal(li["properties"].get("price")
                                                                                    or "0") for li in lines),
                       Decimal(0))
        return {"hs_amount_billed": format(billed, "f"), "hs_subtotal": format(subtotal, "f"),
                "hs_balance_due": format(billed, "f")}

    def _properties(self, kind: str, props, creating: bool) -> dict:
        if not isinstance(props, dict):
            raise _validation("properties must be an object of strings")
        known = PROPERTIES[kind] | ({self.unique_property} if kind == "invoices" else set())
        out = {}
        for name, value in props.items():
            if name not in known:
                raise _validation(f"Property \"{name}\" does not exist", "PROPERTY_DOESNT_EXIST", name)
            if name in READ_ONLY.get(kind, ()):
                raise _validation(f"\"{name}\" is a read only property; its value cannot be set.",
                                  "READ_ONLY_VALUE", name)
            if not isinstance(value, str):
                raise _validation(f"{value!r} was not a valid string for {name}", "INVALID_STRING", name)
            if name in NUMBERS:
                try:
                    number = Decimal(value)
                except InvalidOperation:
                    raise _validation(f"{value!r} was not a valid number.", "INVALID_DECIMAL", name) from None
                if name == "price" and number < 0:
                    raise _validation("price cannot be negative", "INVALID_DECIMAL", name)
            out[name] = value
        if kind == "invoices":
            if creating and not out.get("hs_currency"):
                raise _validation("hs_currency is required", "REQUIRED_PROPERTY", "hs_currency")
            if "hs_invoice_status" in out and out["hs_invoice_status"] not in STATUSES:
                raise _validation(f"{out['hs_invoice_status']} was not one of the allowed options",
                                  "INVALID_OPTION", "hs_invoice_status")
            ref = out.get(self.unique_property)
            if ref is not None:
                for other in self.objects["invoices"].values():
                    if other["properties"].get(self.unique_property) == ref:
                        raise _Fail(_error(409, f"A invoice with '{self.unique_property}={ref}' already exists. "
                                                f"Existing object ID: {other['id']}", "CONFLICT"))
        if kind == "contacts" and out.get("email"):
            for other in self.objects["contacts"].values():
                if (other["properties"].get("email") or "").lower() == out["email"].lower():
                    raise _Fail(_error(409, f"Contact already exists. Existing ID: {other['id']}", "CONFLICT"))
        return out

    def _associate(self, kind: str, ident: str, associations) -> None:
        for a in associations or []:
            to_id = str((a.get("to") or {}).get("id") or "")
            for t in a.get("types") or []:
                type_id = t.get("associationTypeId")
                target = next((to for (f, to), i in TYPES.items() if f == kind and i == type_id), None)
                if t.get("associationCategory") != "HUBSPOT_DEFINED" or target is None:
                    raise _Fail(_error(400, f"invalid association type {type_id} from {kind}", "VALIDATION_ERROR"))
                if target in self.objects and to_id not in self.objects[target]:
                    raise _Fail(_error(400, f"{target} {to_id} does not exist", "VALIDATION_ERROR"))
                self.assoc.setdefault((kind, ident, target), {})[to_id] = type_id
                self.assoc.setdefault((target, to_id, kind), {})[ident] = type_id  # associations go both ways

    def _create_one(self, kind: str, body: dict) -> dict:
        extra = set(body) - CREATE_KEYS
        if extra:
            raise _Fail(_error(400, f"Invalid input JSON: Unrecognized field \"{sorted(extra)[0]}\"",
                               "VALIDATION_ERROR"))
        props = self._properties(kind, body.get("properties") or {}, creating=True)
        if kind == "invoices":
            props.setdefault("hs_invoice_status", "draft")
            if props["hs_invoice_status"] != "draft":
                raise _validation("a new invoice is a draft", "INVALID_OPTION", "hs_invoice_status")
        self._check_associations(kind, body.get("associations"))
        obj = self._store(kind, props)
        self._associate(kind, obj["id"], body.get("associations"))
        return obj

    def _check_associations(self, kind: str, associations) -> None:
        for a in associations or []:
            if not isinstance(a, dict) or set(a) - {"to", "types"} or not isinstance(a.get("to"), dict):
                raise _validation("associations: each needs `to` and `types`")
            for t in (a or {}).get("types") or []:
                if not any(f == kind and i == t.get("associationTypeId") for (f, _), i in TYPES.items()):
                    raise _Fail(_error(400, f"invalid association type {t.get('associationTypeId')} from {kind}",
                                       "VALIDATION_ERROR"))

    def _create(self, request: Request) -> Reply:
        kind = request.params["kind"]
        return Reply(201, self._view(kind, self._create_one(kind, request.body_json)))

    def _batch_create(self, request: Request) -> Reply:
        kind = request.params["kind"]
        inputs = request.body_json.get("inputs")
        if set(request.body_json) - {"inputs"} or not isinstance(inputs, list) or not inputs:
            raise _validation("inputs: a non-empty list")
        if len(inputs) > 100:
            raise _Fail(_error(400, "Batch input limit is 100", "VALIDATION_ERROR"))
        for body in inputs:  # all checked before any is made
            self._properties(kind, (body or {}).get("properties") or {}, creating=True)
            self._check_associations(kind, (body or {}).get("associations"))
        now = self._now_iso()
        results = [self._view(kind, self._create_one(kind, body)) for body in inputs]
        return Reply(201, {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})

    def _object(self, kind: str, ident: str) -> dict:
        obj = self.objects[kind].get(ident)
        if obj is None or obj["archived"]:
            raise _Fail(_error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND"))
        return obj

    def _get(self, request: Request) -> Reply:
        kind = request.params["kind"]
        wanted = request.query.get("properties")
        names = [n for v in wanted for n in v.split(",")] if wanted else None
        return Reply(200, self._view(kind, self._object(kind, request.params["id"]), names))

    def _patch(self, request: Request) -> Reply:
        kind = request.params["kind"]
        obj = self._object(kind, request.params["id"])
        if set(request.body_json) - {"properties", "objectWriteTraceId"}:
            raise _validation("only properties can be updated")
        props = self._properties(kind, request.body_json.get("properties") or {}, creating=False)
        if kind == "invoices" and props.get("hs_invoice_status") == "open" \
                and obj["properties"].get("hs_invoice_status") != "open":
            if not self.associated("invoices", obj["id"], "contacts"):
                raise _validation("An invoice needs an associated contact to be opened", "INVALID_OPTION",
                                  "hs_invoice_status")
            if not self.lines_of(obj["id"]):
                raise _validation("An invoice needs at least one line item to be opened", "INVALID_OPTION",
                                  "hs_invoice_status")
            if not obj["properties"].get("hs_due_date"):
                raise _validation("hs_due_date is required to open an invoice", "REQUIRED_PROPERTY", "hs_due_date")
            obj["properties"]["hs_number"] = f"INV-{next(self._numbers):04d}"
        obj["properties"].update(props)
        obj["updatedAt"] = self._now_iso()
        return Reply(200, self._view(kind, obj))

    def _batch_read(self, request: Request) -> Reply:
        kind = request.params["kind"]
        body = request.body_json
        if set(body) - BATCH_READ_KEYS:
            raise _validation(f"Unrecognized field \"{sorted(set(body) - BATCH_READ_KEYS)[0]}\"")
        results = [self._view(kind, self.objects[kind][str(i.get("id"))], body.get("properties"))
                   for i in body.get("inputs") or [] if str(i.get("id")) in self.objects[kind]]
        now = self._now_iso()
        return Reply(200, {"status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now})

    def _search(self, request: Request) -> Reply:
        kind = request.params["kind"]
        body = request.body_json
        if set(body) - SEARCH_KEYS:
            raise _validation(f"Unrecognized field \"{sorted(set(body) - SEARCH_KEYS)[0]}\"")
        limit = int(body.get("limit") or 10)
        if limit > 200:
            raise _validation("limit must be at most 200")
        visible = [o for o in self.objects[kind].values()
                   if not o["archived"] and o["_created"] <= self.clock() - self.search_lag]

        def hit(obj, f) -> bool:
            value = str(obj["properties"].get(f.get("propertyName"), "") or "")
            wanted = str(f.get("value") or "")
            if f.get("operator") == "EQ":
                return value.lower() == wanted.lower()
            if f.get("operator") == "CONTAINS_TOKEN":
                return wanted.lower() in re.findall(r"[\w-]+", value.lower())
            raise _validation(f"operator {f.get('operator')} is not supported by this simulator")

        groups = body.get("filterGroups") or []
        found = [o for o in visible if not groups or any(all(hit(o, f) for f in g.get("filters") or [])
                                                          for g in groups)]
        found.sort(key=lambda o: int(o["id"]))
        return Reply(200, {"total": len(found), "results": [self._view(kind, o, body.get("properties") or None)
                                                            for o in found[:limit]]})

    def _associations(self, request: Request) -> Reply:
        pairs = self.assoc.get((request.params["kind"], request.params["id"], request.params["to"]), {})
        self._object(request.params["kind"], request.params["id"])
        return Reply(200, {"results": [{"toObjectId": i, "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None}]} for i, t in pairs.items()]})

    _KIND = r"(?P<kind>contacts|invoices|line_items|notes)"
    routes = [
        ("POST", rf"/crm/v3/objects/{_KIND}", _create),
        ("POST", rf"/crm/v3/objects/{_KIND}/batch/create", _batch_create),
        ("POST", rf"/crm/v3/objects/{_KIND}/batch/read", _batch_read),
        ("POST", rf"/crm/v3/objects/{_KIND}/search", _search),
        ("GET", rf"/crm/v3/objects/{_KIND}/(?P<id>\d+)", _get),
        ("PATCH", rf"/crm/v3/objects/{_KIND}/(?P<id>\d+)", _patch),
        ("GET", rf"/crm/v4/objects/{_KIND}/(?P<id>\d+)/associations/(?P<to>\w+)", _associations),
    ]


SIMULATOR = HubSpotSimulator
