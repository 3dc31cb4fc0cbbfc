"""A stand-in for the parts of ServiceTitan's v2 tenant APIs invoicer uses, and for its V2 webhooks (tests and
`invoicer sandbox` only).

Follows the definitions in ../shared/vendor-specs/servicetitan (a third-party copy of ServiceTitan's published
OpenAPI files, Dec 2024): paths, query names, response shapes (PaginatedResponse {page, pageSize, hasMore,
data}; InvoiceResponse with items and decimal strings), and every PATCH body is checked against
`Accounting.V2.InvoiceUpdateRequest` (unknown fields and wrong types are a 400, as ServiceTitan answers).

Endpoints: POST /connect/token (client credentials, form; 15-minute tokens), GET jpm jobs/{id},
GET crm customers/{id}, customers/{id}/contacts, locations/{id}, GET accounting invoices?jobId=,
PATCH accounting invoices/{id}, DELETE accounting invoices/{id}/items/{itemId}.
What it reproduces: ST-App-Key and a bearer token on every API call (401 otherwise); 60 calls a second per
app and tenant (429 with Retry-After); PATCH items: an item with an `id` is updated, one without is added;
the total is the items' quantity x unitPrice (rounded half-up to the cent) plus the request's `tax` (else the
tax already on the invoice).
Webhooks: `webhook(event_type, job_id)` makes the body and signature header ServiceTitan is ASSUMED to send
(see webhooks.py: the header name, hash and payload are not confirmed by ServiceTitan's pages).
"""
from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal

from ..inbound import sign
from ..openapi import SPECS, errors, unknown, validator
from ..simulate import Reply, Request, Simulator

TENANT = "1000001"
SPEC = str(SPECS / "servicetitan" / "tenant-accounting-v2.yml")
CENT = Decimal("0.01")
_ids = itertools.count(5001)


def _money(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_UP), "f")


class ServiceTitanSimulator(Simulator):
    def __init__(self, *, app_key: str = "sim-st-app-key", client_id: str = "cid.sim-st-client",
                 client_secret: str = "cs1.sim-st-secret", hmac_key: str = "sim-servicetitan-hmac-key-0123456789ab",
                 per_second: int = 60):
        self.app_key, self.client_id, self.client_secret, self.hmac_key = app_key, client_id, client_secret, hmac_key
        self.per_second = per_second
        self.state = threading.RLock()
        super().__init__()
        self.reset()

    def reset(self) -> None:
        with self.state, self.lock:
            self.forget()
            self.tokens_issued: dict[str, float] = {}
            self.jobs: dict[int, dict] = {}
            self.customers: dict[int, dict] = {}
            self.contacts: dict[int, list] = {}
            self.locations: dict[int, dict] = {}
            self.invoices: dict[int, dict] = {}

    # ------------------------------------------------------------ sandbox hook and helpers

    def platform(self, url: str) -> dict:
        return {"provider": "servicetitan", "tenant_id": TENANT, "base_url": url, "token_url": f"{url}/connect/token",
                "currency": "USD"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SERVICETITAN_APP_KEY": self.app_key}

    def tokens(self) -> dict:
        return {"client_id": self.client_id, "client_secret": self.client_secret}

    def add_job(self, items: list[dict] | None = None, tax: str = "3.64", email: str = "kim@example.com") -> dict:
        """A customer with contacts, a location, a completed job and the invoice ServiceTitan made with it."""
        with self.state:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            address = {"street": "9 Oak Ave", "unit": "", "city": "Tampa", "state": "FL", "zip": "33602", "country": "USA"}
            cid, lid, jid, iid = next(_ids), next(_ids), next(_ids), next(_ids)
            self.customers[cid] = {"id": cid, "active": True, "name": "Kim Lee", "type": "Residential", "address": address,
                                   "customFields": [], "balance": 0, "doNotMail": False, "doNotService": False,
                                   "createdOn": now, "createdById": 1, "modifiedOn": now}
            self.contacts[cid] = [{"id": next(_ids), "type": "Email", "value": email, "modifiedOn": now,
                                   "phoneSettings": None},
                                  {"id": next(_ids), "type": "MobilePhone", "value": "+18135550177", "modifiedOn": now,
                                   "phoneSettings": None}]
            self.locations[lid] = {"id": lid, "customerId": cid, "active": True, "name": "Home", "address": address,
                                   "customFields": [], "createdOn": now, "createdById": 1, "modifiedOn": now}
            self.jobs[jid] = {"id": jid, "jobNumber": str(jid), "customerId": cid, "locationId": lid,
                              "jobStatus": "Completed", "completedOn": now, "businessUnitId": 1, "jobTypeId": 1,
                              "priority": "Normal", "campaignId": 1, "summary": "Replaced blower motor",
                              "customFields": [], "appointmentCount": 1, "firstAppointmentId": 1, "lastAppointmentId": 1,
                              "noCharge": False, "notificationsEnabled": True, "createdOn": now, "createdById": 1,
                              "modifiedOn": now, "tagTypeIds": [], "externalData": []}
            inv = {"id": iid, "referenceNumber": f"ST-{iid}", "job": {"id": jid, "number": str(jid), "type": "Service"},
                   "customer": {"id": cid, "name": "Kim Lee"}, "adjustmentToId": None, "_tax": Decimal(tax), "_items": []}
            for n, item in enumerate(items or [
                    {"type": "Service", "description": "Blower motor labour", "quantity": "2", "price": "95.00",
                     "taxable": False},
                    {"type": "Material", "skuName": "BM-1/2HP", "description": "Blower motor", "quantity": "1",
                     "price": "45.50", "taxable": True}]):
                inv["_items"].append({"id": next(_ids), "order": n, "type": item["type"], "skuName": item.get("skuName"),
                                      "skuId": 1, "description": item["description"], "quantity": Decimal(item["quantity"]),
                                      "price": Decimal(item["price"]), "taxable": item["taxable"]})
            self.invoices[iid] = inv
            return {"job": jid, "customer": cid, "invoice": iid}

    def view(self, inv: dict) -> dict:
        items = []
        subtotal = Decimal(0)
        for i in inv["_items"]:
            total = (i["quantity"] * i["price"]).quantize(CENT, ROUND_HALF_UP)
            subtotal += total
            items.append({"id": i["id"], "description": i["description"], "quantity": format(i["quantity"], "f"),
                          "price": _money(i["price"]), "total": _money(total), "type": i["type"],
                          "skuName": i["skuName"], "skuId": i["skuId"], "inventory": False, "taxable": i["taxable"],
                          "membershipTypeId": 0, "modifiedOn": "2026-11-20T15:00:00Z", "order": i["order"]})
        return {"id": inv["id"], "referenceNumber": inv["referenceNumber"], "job": inv["job"], "customer": inv["customer"],
                "adjustmentToId": inv["adjustmentToId"], "subTotal": _money(subtotal), "salesTax": _money(inv["_tax"]),
                "total": _money(subtotal + inv["_tax"]), "balance": _money(subtotal + inv["_tax"]), "items": items}

    def webhook(self, event_type: str, job_id: int, *, event_id: str | None = None, created_on: str | None = None,
                secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"eventId": event_id or str(uuid.uuid4()), "eventType": event_type, "tenantId": int(TENANT),
                           "createdOn": created_on or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "data": {"id": job_id}}).encode()
        return body, {"Content-Type": "application/json",
                      "X-ServiceTitan-Signature": sign(secret or self.hmac_key, body, "base64")}

    # ------------------------------------------------------------ HTTP

    def rate_limited(self, request: Request) -> Reply:
        return Reply(429, {"type": "https://tools.ietf.org/html/rfc6585#section-4", "title": "Too Many Requests",
                           "status": 429}, {"Retry-After": "1"})

    def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/connect/token":
            return self._token(request)
        if request.headers.get("st-app-key") != self.app_key:
            return Reply(401, {"title": "Unauthorized", "detail": "ST-App-Key is missing or not valid", "status": 401})
        auth = request.headers.get("authorization", "")
        with self.state:
            expires = self.tokens_issued.get(auth[7:] if auth.startswith("Bearer ") else "")
        if expires is None or expires < time.time():
            return Reply(401, {"title": "Unauthorized", "status": 401})
        if self.over_limit(f"{self.app_key}:{TENANT}", self.per_second, time.monotonic()):
            return self.rate_limited(request)
        with self.state:
            return super().handle(request)

    def _token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.client_id \
                or form.get("client_secret") != self.client_secret:
            return Reply(400, {"error": "invalid_client"})
        token = uuid.uuid4().hex
        with self.state:
            self.tokens_issued[token] = time.time() + 900
        return Reply(200, {"access_token": token, "expires_in": 900, "token_type": "Bearer", "scope": "tn.acc.invoices:rw"})

    @staticmethod
    def _missing(what: str) -> Reply:
        return Reply(404, {"title": "Not Found", "detail": f"{what} not found", "status": 404})

    def _tenant(self, request: Request) -> bool:
        return request.params.get("tenant") == TENANT

    def get_job(self, request: Request) -> Reply:
        job = self.jobs.get(int(request.params["id"])) if self._tenant(request) else None
        return Reply(200, job) if job else self._missing("Job")

    def get_customer(self, request: Request) -> Reply:
        c = self.customers.get(int(request.params["id"])) if self._tenant(request) else None
        return Reply(200, c) if c else self._missing("Customer")

    def get_contacts(self, request: Request) -> Reply:
        cid = int(request.params["id"])
        data = self.contacts.get(cid, []) if self._tenant(request) else []
        return Reply(200, {"page": 1, "pageSize": 50, "hasMore": False, "data": data})

    def get_location(self, request: Request) -> Reply:
        loc = self.locations.get(int(request.params["id"])) if self._tenant(request) else None
        return Reply(200, loc) if loc else self._missing("Location")

    def list_invoices(self, request: Request) -> Reply:
        job = request.query.get("jobId", [None])[0]
        data = [self.view(i) for i in self.invoices.values()
                if self._tenant(request) and (job is None or str(i["job"]["id"]) == job)]
        return Reply(200, {"page": 1, "pageSize": 50, "hasMore": False, "totalCount": len(data), "data": data})

    def patch_invoice(self, request: Request) -> Reply:
        inv = self.invoices.get(int(request.params["id"])) if self._tenant(request) else None
        if inv is None:
            return self._missing("Invoice")
        body = json.loads(request.body or b"null", parse_float=Decimal)
        problems = errors(validator(SPEC, "Accounting.V2.InvoiceUpdateRequest"), body) + \
            [f"{p}: not a field of InvoiceUpdateRequest" for p in unknown(SPEC, "Accounting.V2.InvoiceUpdateRequest", body)]
        if problems:
            return Reply(400, {"title": "One or more validation errors occurred.", "status": 400,
                               "errors": {"request": problems}})
        by_id = {i["id"]: i for i in inv["_items"]}
        for item in body.get("items") or []:
            if item.get("id") is not None:
                if item["id"] not in by_id:
                    return Reply(400, {"title": "Bad Request", "status": 400,
                                       "errors": {"items": [f"item {item['id']} is not on this invoice"]}})
                target = by_id[item["id"]]
            else:
                target = {"id": next(_ids), "order": len(inv["_items"]), "type": "Service", "skuName": None,
                          "skuId": 0, "taxable": False}
                inv["_items"].append(target)
            target.update(description=item["description"], quantity=Decimal(item["quantity"]),
                          price=Decimal(item.get("unitPrice") if item.get("unitPrice") is not None else target.get("price", 0)))
        if body.get("tax") is not None:
            inv["_tax"] = Decimal(body["tax"])
        return Reply(200, None)

    def delete_item(self, request: Request) -> Reply:
        inv = self.invoices.get(int(request.params["id"])) if self._tenant(request) else None
        if inv is None:
            return self._missing("Invoice")
        inv["_items"] = [i for i in inv["_items"] if i["id"] != int(request.params["item"])]
        return Reply(200, None)

    routes = [
        ("GET", r"/jpm/v2/tenant/(?P<tenant>\d+)/jobs/(?P<id>\d+)", get_job),
        ("GET", r"/crm/v2/tenant/(?P<tenant>\d+)/customers/(?P<id>\d+)", get_customer),
        ("GET", r"/crm/v2/tenant/(?P<tenant>\d+)/customers/(?P<id>\d+)/contacts", get_contacts),
        ("GET", r"/crm/v2/tenant/(?P<tenant>\d+)/locations/(?P<id>\d+)", get_location),
        ("GET", r"/accounting/v2/tenant/(?P<tenant>\d+)/invoices", list_invoices),
        ("PATCH", r"/accounting/v2/tenant/(?P<tenant>\d+)/invoices/(?P<id>\d+)", patch_invoice),
        ("DELETE", r"/accounting/v2/tenant/(?P<tenant>\d+)/invoices/(?P<id>\d+)/items/(?P<item>\d+)", delete_item),
    ]


SIMULATOR = ServiceTitanSimulator
