"""A stand-in for FieldEdge as invoicer reads it (tests only; not in `invoicer sandbox`: FieldEdge is no invoice
platform, so it has no tenants-file entry to serve).

MODELLED, not read from FieldEdge (no spec is published; see transform.py and webhooks.py): the token endpoint
(client credentials with HTTP Basic: client id + API key, 30-minute tokens, as compwright/oauth2-fieldedge
shows the legacy endpoint), GET /v1/workorders/{id}, GET /v1/invoices/{id} (the work order's id), GET
/v1/customers/{id}, and the signed webhook `webhook(event, work_order_id)`.
"""
from __future__ import annotations

import base64
import itertools
import json
import time
import uuid

from ..inbound import sign
from ..simulate import Reply, Request, Simulator

_ids = itertools.count(70001)


class FieldEdgeSimulator(Simulator):
    def __init__(self, *, client_id: str = "sim-fe-client", api_key: str = "sim-fe-api-key",
                 secret: str = "sim-fieldedge-webhook-secret"):
        self.client_id, self.api_key, self.secret = client_id, api_key, secret
        super().__init__()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.forget()
            self.issued: dict[str, float] = {}
            self.work_orders: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self.customers: dict[str, dict] = {}

    def env(self) -> dict[str, str]:
        return {}

    def tokens(self) -> dict:
        return {"client_id": self.client_id, "api_key": self.api_key}

    def add_work_order(self) -> str:
        wid, cid = str(next(_ids)), str(next(_ids))
        address = {"street": "3 Birch Rd", "city": "Austin", "state": "TX", "zip": "73301", "country": "US"}
        self.customers[cid] = {"id": cid, "name": "Lee Park", "email": "lee@example.com", "phone": "+15125550123",
                               "billingAddress": address}
        self.work_orders[wid] = {"id": wid, "number": f"WO-{wid}", "customerId": cid, "status": "Closed",
                                 "completedOn": "2026-11-20T15:00:00Z", "description": "Furnace tune-up",
                                 "technician": {"id": "77", "name": "Ana Ruiz"}, "serviceAddress": address}
        self.invoices[wid] = {"id": wid, "taxRate": "0.0825", "lines": [
            {"type": "Labor", "description": "Tune-up", "quantity": "1", "unitPrice": "129.00", "taxable": False},
            {"type": "Part", "description": "Filter", "itemCode": "F-16", "quantity": "2", "unitPrice": "12.50",
             "taxable": True}]}
        return wid

    def webhook(self, event: str, work_order_id: str, *, timestamp: str | None = None,
                secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"id": str(uuid.uuid4()), "event": event,
                           "timestamp": timestamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "data": {"workOrderId": work_order_id}}).encode()
        return body, {"Content-Type": "application/json", "X-FieldEdge-Signature": sign(secret or self.secret, body, "base64")}

    def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/token":
            basic = request.headers.get("authorization", "")
            given = base64.b64decode(basic[6:]).decode() if basic.startswith("Basic ") else ""
            if given != f"{self.client_id}:{self.api_key}":
                return Reply(400, {"error": "invalid_client"})
            token = uuid.uuid4().hex
            self.issued[token] = time.time() + 1800
            return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 1800})
        auth = request.headers.get("authorization", "")
        if self.issued.get(auth[7:] if auth.startswith("Bearer ") else "", 0) < time.time():
            return Reply(401, {"message": "Authorization has been denied for this request."})
        return super().handle(request)

    def _one(self, store: dict, key: str, what: str) -> Reply:
        found = store.get(key)
        return Reply(200, found) if found else Reply(404, {"message": f"{what} not found"})

    routes = [
        ("GET", r"/v1/workorders/(?P<id>[^/]+)", lambda self, r: self._one(self.work_orders, r.params["id"], "Work order")),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", lambda self, r: self._one(self.invoices, r.params["id"], "Invoice")),
        ("GET", r"/v1/customers/(?P<id>[^/]+)", lambda self, r: self._one(self.customers, r.params["id"], "Customer")),
    ]
