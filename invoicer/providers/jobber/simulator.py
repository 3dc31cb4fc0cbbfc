"""A stand-in for the parts of Jobber's GraphQL API invoicer uses, and for Jobber's webhooks (tests and
`invoicer sandbox` only).

Jobber publishes no schema file (../shared/vendor-specs/jobber/SOURCE.txt). `SDL` is a hand-made subset: the
invoice-creation input types as the staged excerpt transcribes them (InvoiceCreateInput,
InvoiceCreationLineItemInput, InvoiceDueDetails, InvoiceCreatePayload/userErrors), and, UNCONFIRMED, the
query fields of visits, jobs, clients and invoices, the `input` argument of invoiceCreate, the values of
InvoiceOrigin and the fields of TaxInputType and DiscountInput. Every request is EXECUTED against it with
graphql-core, so a misspelt field fails here as at Jobber (HTTP 200 with `errors`). Jobber's `Float` money
fields are the scalar `Amount` here, read and written as exact decimals (the field types' names are not
visible to a client's documents).

Endpoints: POST /api/graphql, POST /api/oauth/token (form: client id and secret in the body).
What it reproduces:
- X-JOBBER-GRAPHQL-VERSION required and one of `versions` (else HTTP 400).
- Access tokens living an hour (HTTP 401 after); a refresh returns a new pair and retires the old refresh
  token (rotation), so a spent refresh token is `invalid_grant`.
- Jobber's two limits per app and account: the DDoS guard, 2,500 requests per 300 s (HTTP 429), and the
  query-cost leaky bucket (10,000 points, 500 restored a second): every answer carries `extensions.cost`
  {requestedQueryCost, actualQueryCost, throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}};
  a query costing more than is available answers HTTP 200 `errors: [{message: "Throttled",
  extensions: {code: "THROTTLED"}}]` and costs nothing. The cost is one point per selected field (two per
  field under a connection's nodes), ten more for a mutation: an approximation of Jobber's calculation.
- invoiceCreate: the client must exist, every job must be the client's, an invoiceNumber already used is a
  userError on `invoiceNumber`; line = quantity x unitPrice rounded half-up to the cent; an AMOUNT discount off
  the subtotal; tax = rate % of the taxable lines' share of the discounted subtotal, rounded once (Jobber's
  own rounding is not documented); markSent -> awaiting_payment, else draft.
- Webhooks: `webhook(topic, item_id)` makes the body and the X-Jobber-Hmac-SHA256 header Jobber would send.
"""
from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from ..inbound import sign
from ..jsonmoney import dumps
from ..simkit import AccountingSimulator, Quota
from ..simulate import Reply, Request
from .adapter import ACCESS_TTL, API_VERSION

ACCOUNT = "sim-jobber-account"
CENT = Decimal("0.01")

SDL = """
scalar EncodedId
scalar ISO8601DateTime
scalar Amount

enum ProductsAndServicesCategory { PRODUCT SERVICE }
enum InvoiceOrigin { API JOB VISIT QUOTE }
enum DiscountTypeEnum { AMOUNT PERCENT }
enum InvoiceStatusTypeEnum { draft awaiting_payment paid past_due bad_debt }

type Name { full: String! first: String last: String }
type User { id: EncodedId! name: Name! }
type UserConnection { nodes: [User!]! }
type Email { address: String! primary: Boolean! }
type ClientPhoneNumber { number: String! primary: Boolean! }
type Address { street1: String street2: String city: String province: String postalCode: String country: String }
type Client { id: EncodedId! name: String! companyName: String emails: [Email!]! phones: [ClientPhoneNumber!]!
  billingAddress: Address }
type Property { id: EncodedId! address: Address! }
type JobLineItem { id: EncodedId! name: String! description: String category: ProductsAndServicesCategory
  quantity: Amount! unitPrice: Amount! totalPrice: Amount! taxable: Boolean! }
type JobLineItemConnection { nodes: [JobLineItem!]! }
type Visit { id: EncodedId! title: String isComplete: Boolean! completedAt: ISO8601DateTime
  assignedUsers: UserConnection! job: Job! }
type VisitConnection { nodes: [Visit!]! }
type Invoice { id: EncodedId! invoiceNumber: String! subject: String! invoiceStatus: InvoiceStatusTypeEnum!
  subtotal: Amount! taxAmount: Amount! total: Amount! jobberWebUri: String! client: Client! }
type InvoiceConnection { nodes: [Invoice!]! }
type Job { id: EncodedId! jobNumber: Int! title: String instructions: String jobStatus: String!
  completedAt: ISO8601DateTime client: Client! property: Property lineItems: JobLineItemConnection!
  visits: VisitConnection! invoices: InvoiceConnection! total: Amount! }
type MutationErrors { message: String! path: [String!]! }
type InvoiceCreatePayload { invoice: Invoice userErrors: [MutationErrors!]! }

input InvoiceDueDetails { dueDate: ISO8601DateTime invoiceNet: Int }
input TaxInputType { name: String rate: Amount! }
input DiscountInput { discountType: DiscountTypeEnum! discountRate: Amount! }
input InvoiceCreationLineItemInput { name: String! category: ProductsAndServicesCategory cost: Amount
  description: String quantity: Amount unitPrice: Amount date: ISO8601DateTime taxable: Boolean
  jobLineItemId: EncodedId productOrServiceId: EncodedId }
input InvoiceCreateInput { message: String subject: String markSent: Boolean invoiceNumber: String
  issuedDate: ISO8601DateTime discount: DiscountInput origin: InvoiceOrigin! dueDetails: InvoiceDueDetails!
  propertyId: EncodedId jobId: EncodedId visitIds: [EncodedId!] clientId: EncodedId! tax: TaxInputType!
  jobIds: [EncodedId!] lineItems: [InvoiceCreationLineItemInput!]! }

type Query { visit(id: EncodedId!): Visit job(id: EncodedId!): Job }
type Mutation { invoiceCreate(input: InvoiceCreateInput!): InvoiceCreatePayload! }
"""


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):  # a float never reaches here: bodies parse to Decimal
        raise ValueError("Amount wants an exact number")
    return Decimal(str(value))


@lru_cache(maxsize=1)
def schema():
    from graphql import build_schema

    built = build_schema(SDL)
    amount = built.type_map["Amount"]
    amount.serialize = lambda v: Decimal(v)
    amount.parse_value = _amount
    amount.parse_literal = lambda node, _vars=None: _amount(getattr(node, "value", None))
    return built


_ids = itertools.count(1001)


def _gid(kind: str) -> str:
    """An EncodedId as Jobber makes them: base64 of a global id (gid://Jobber/<Kind>/<n>)."""
    return base64.b64encode(f"gid://Jobber/{kind}/{next(_ids)}".encode()).decode()


@dataclass
class Bucket:
    maximum: float = 10000.0
    restore: float = 500.0
    available: float = 10000.0
    at: float = 0.0

    def level(self, now: float) -> float:
        self.available = min(self.maximum, self.available + max(0.0, now - self.at) * self.restore)
        self.at = now
        return self.available


@dataclass
class Account:
    id: str
    clients: dict[str, dict] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    visits: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)
    bucket: Bucket = field(default_factory=Bucket)
    quota: Quota = field(default_factory=lambda: Quota(minute=2500, day=10**9, concurrent=50, per=300.0))
    numbers: int = 0


class JobberSimulator(AccountingSimulator):
    def __init__(self, *, client_id: str = "sim-jobber-client", client_secret: str = "sim-jobber-secret",
                 versions: tuple[str, ...] = (API_VERSION,)):
        super().__init__()
        self.client_id, self.client_secret, self.versions = client_id, client_secret, versions
        self.reset()

    def fresh(self) -> None:
        self.access: dict[str, dict] = {}
        self.refresh: dict[str, str] = {}
        self.accounts = {ACCOUNT: Account(ACCOUNT)}

    # ------------------------------------------------------------ sandbox hook and helpers

    def platform(self, url: str) -> dict:
        return {"provider": "jobber", "base_url": url, "currency": "USD", "tax_rate": "0.08",
                "tax_jurisdiction": "FL"}

    def env(self) -> dict[str, str]:
        return {"INVOICER_JOBBER_CLIENT_ID": self.client_id, "INVOICER_JOBBER_CLIENT_SECRET": self.client_secret}

    def tokens(self) -> dict:
        return self.grant()

    @property
    def account(self) -> Account:
        return self.accounts[ACCOUNT]

    def grant(self, account: str = ACCOUNT) -> dict:
        with self.state:
            return {**self._mint(account), "expires_at": time.time() + ACCESS_TTL}

    def _mint(self, account: str) -> dict:
        access, refresh = uuid.uuid4().hex, uuid.uuid4().hex
        self.access[access] = {"account": account, "expires": self.now() + ACCESS_TTL}
        self.refresh[refresh] = account
        return {"access_token": access, "refresh_token": refresh}

    def add_job(self, *, lines: list[dict] | None = None, visits: int = 1, email: str | None = "pat@example.com",
                phone: str | None = "+14075550142", title: str = "AC repair", country: str = "United States") -> dict:
        """A client, a property, a job with its line items and `visits` visits, none complete yet."""
        with self.state:
            acc = self.account
            acc.numbers += 1
            address = {"street1": "12 Palm Way", "street2": None, "city": "Orlando", "province": "FL",
                       "postalCode": "32801", "country": country}
            client = {"id": _gid("Client"), "name": "Pat Quinn", "companyName": None,
                      "emails": [{"address": email, "primary": True}] if email else [],
                      "phones": [{"number": phone, "primary": True}] if phone else [], "billingAddress": address}
            acc.clients[client["id"]] = client
            items = []
            for line in lines or [
                    {"name": "Diagnosis", "category": "SERVICE", "quantity": "1.5", "unitPrice": "90.00", "taxable": False},
                    {"name": "Capacitor", "category": "PRODUCT", "quantity": "1", "unitPrice": "45.50", "taxable": True,
                     "description": "45/5 MFD"}]:
                qty, unit = Decimal(line["quantity"]), Decimal(line["unitPrice"])
                items.append({"id": _gid("JobLineItem"), "name": line["name"], "description": line.get("description"),
                              "category": line.get("category"), "quantity": qty, "unitPrice": unit,
                              "totalPrice": (qty * unit).quantize(CENT, ROUND_HALF_UP), "taxable": line["taxable"]})
            job = {"id": _gid("Job"), "jobNumber": 100 + acc.numbers, "title": title,
                   "instructions": "Unit not cooling", "jobStatus": "active", "completedAt": None, "client": client,
                   "property": {"id": _gid("Property"), "address": address}, "_items": items, "_visits": []}
            acc.jobs[job["id"]] = job
            for n in range(visits):
                visit = {"id": _gid("Visit"), "title": f"Visit {n + 1}", "isComplete": False, "completedAt": None,
                         "_job": job["id"], "_users": [{"id": _gid("User"), "name": {"full": "Sam Ortiz"}}]}
                acc.visits[visit["id"]] = visit
                job["_visits"].append(visit["id"])
            return {"job": job["id"], "client": client["id"], "visits": list(job["_visits"])}

    def complete_visit(self, visit_id: str, at: str | None = None) -> None:
        with self.state:
            visit = self.account.visits[visit_id]
            visit.update(isComplete=True, completedAt=at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            job = self.account.jobs[visit["_job"]]
            if all(self.account.visits[v]["isComplete"] for v in job["_visits"]):
                job.update(jobStatus="requires_invoicing", completedAt=visit["completedAt"])

    def webhook(self, topic: str, item_id: str, occurred_at: str | None = None,
                secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the webhook Jobber sends for `topic` on `item_id`, signed with the app's
        client secret (or `secret`)."""
        event = {"topic": topic, "appId": self.client_id, "accountId": ACCOUNT, "itemId": item_id,
                 "occurredAt": occurred_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now()))}
        body = json.dumps({"data": {"webHookEvent": event}}).encode()
        return body, {"Content-Type": "application/json",
                      "X-Jobber-Hmac-SHA256": sign(secret or self.client_secret, body, "base64")}

    # ------------------------------------------------------------ auth, limits, token

    def authorise(self, request: Request):
        if request.headers.get("x-jobber-graphql-version") not in self.versions:
            return None, Reply(400, {"errors": [{"message": "X-JOBBER-GRAPHQL-VERSION is missing or not a "
                                                            "supported API version"}]})
        auth = request.headers.get("authorization", "")
        grant = self.access.get(auth[7:].strip() if auth.startswith("Bearer ") else "")
        if grant is None or self.now() >= grant["expires"]:
            return None, Reply(401, {"message": "Unauthorized"})
        return self.accounts[grant["account"]], None

    def quota(self, account: Account) -> Quota:
        return account.quota

    def over_limit(self, limit: str, retry_after: float) -> Reply:
        return Reply(429, {"errors": [{"message": "Too Many Requests"}]}, {"Retry-After": str(int(retry_after))})

    def not_found(self, request: Request) -> Reply:
        return Reply(404, {"message": "Not Found"})

    def token(self, request: Request) -> Reply:
        form = {k: v[0] for k, v in request.form().items()}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(401, {"error": "invalid_client"})
        with self.state:
            account = self.refresh.pop(form.get("refresh_token", ""), None)
            if form.get("grant_type") != "refresh_token" or account is None:
                return Reply(400, {"error": "invalid_grant"})
            return Reply(200, self._mint(account))

    # ------------------------------------------------------------ GraphQL

    @staticmethod
    def cost(document) -> int:
        from graphql import FieldNode, OperationDefinitionNode

        def walk(node, weight: int) -> int:
            total = 0
            for sel in getattr(getattr(node, "selection_set", None), "selections", None) or []:
                if isinstance(sel, FieldNode):
                    inner = weight * 2 if sel.name.value == "nodes" else weight
                    total += weight + walk(sel, inner)
            return total

        total = 0
        for op in document.definitions:
            if isinstance(op, OperationDefinitionNode):
                total += walk(op, 1) + (10 if op.operation.value == "mutation" else 0)
        return total

    def graphql(self, account: Account, request: Request) -> Reply:
        from graphql import GraphQLError, execute, parse, validate

        try:
            payload = json.loads(request.body or b"{}", parse_float=Decimal)
            document = parse(payload["query"])
            variables = payload.get("variables") or {}
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            return Reply(200, {"errors": [{"message": f"Invalid query: {exc}"}]})
        problems = validate(schema(), document)
        if problems:
            return self._answer({"errors": [{"message": p.message} for p in problems]})
        bucket, requested = account.bucket, self.cost(document)
        status = {"maximumAvailable": int(bucket.maximum), "currentlyAvailable": int(bucket.level(self.now())),
                  "restoreRate": int(bucket.restore)}
        if requested > bucket.available:
            return self._answer({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                                 "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": 0,
                                                         "throttleStatus": status}}})
        result = execute(schema(), document, root_value=_Root(self, account), variable_values=variables)
        bucket.available -= requested
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [dict(e.formatted) for e in result.errors]
        body["extensions"] = {"cost": {"requestedQueryCost": requested, "actualQueryCost": requested,
                                       "throttleStatus": {**status, "currentlyAvailable": int(bucket.available)}}}
        return self._answer(body)

    @staticmethod
    def _answer(body: dict) -> Reply:
        return Reply(200, dumps(body).encode(), {"Content-Type": "application/json"})

    outside = {("POST", "/api/oauth/token"): token}
    routes = [("POST", "/api/graphql", graphql)]


class _Root:
    """Query.visit, Query.job and Mutation.invoiceCreate over the simulator's state (under its lock)."""

    def __init__(self, sim: JobberSimulator, account: Account):
        self.sim, self.acc = sim, account

    def _job(self, job: dict) -> dict:
        acc = self.acc
        return {**job, "lineItems": {"nodes": job["_items"]},
                "visits": {"nodes": [self._visit(acc.visits[v], with_job=False) for v in job["_visits"]]},
                "invoices": {"nodes": [i for i in acc.invoices.values() if job["id"] in i["_jobs"]]},
                "total": sum((i["totalPrice"] for i in job["_items"]), Decimal(0))}

    def _visit(self, visit: dict, with_job: bool = True) -> dict:
        out = {**visit, "assignedUsers": {"nodes": visit["_users"]}}
        if with_job:
            out["job"] = self._job(self.acc.jobs[visit["_job"]])
        return out

    def visit(self, info, id):  # noqa: A002 -- GraphQL's argument name
        visit = self.acc.visits.get(id)
        return self._visit(visit) if visit else None

    def job(self, info, id):  # noqa: A002
        job = self.acc.jobs.get(id)
        return self._job(job) if job else None

    def invoiceCreate(self, info, input):  # noqa: N802,A002
        acc = self.acc

        def refused(message: str, *path: str) -> dict:
            return {"invoice": None, "userErrors": [{"message": message, "path": list(path)}]}

        client = acc.clients.get(input["clientId"])
        if client is None:
            return refused("Client not found", "clientId")
        for job_id in input.get("jobIds") or []:
            if acc.jobs.get(job_id, {}).get("client", {}).get("id") != client["id"]:
                return refused("Job not found for this client", "jobIds")
        acc.numbers += 1
        number = input.get("invoiceNumber") or str(acc.numbers)
        if any(i["invoiceNumber"] == number for i in acc.invoices.values()):
            return refused("Invoice number has already been taken", "invoiceNumber")
        if not input["lineItems"]:
            return refused("An invoice needs at least one line item", "lineItems")
        subtotal = taxable = Decimal(0)
        for item in input["lineItems"]:
            amount = (Decimal(item.get("quantity") or 1) * Decimal(item.get("unitPrice") or 0)).quantize(CENT, ROUND_HALF_UP)
            subtotal += amount
            taxable += amount if item.get("taxable") else 0
        discount = Decimal(0)
        if input.get("discount"):
            d = input["discount"]
            discount = (d["discountRate"] if d["discountType"] == "AMOUNT" else subtotal * d["discountRate"] / 100)
            discount = min(Decimal(discount).quantize(CENT, ROUND_HALF_UP), subtotal)
        rate = Decimal(input["tax"]["rate"]) / 100
        tax = (rate * taxable * (subtotal - discount) / subtotal).quantize(CENT, ROUND_HALF_UP) if subtotal else Decimal(0)
        inv = {"id": _gid("Invoice"), "invoiceNumber": number, "subject": input.get("subject") or "For Services Rendered",
               "invoiceStatus": "awaiting_payment" if input.get("markSent") else "draft", "subtotal": subtotal,
               "taxAmount": tax, "total": subtotal - discount + tax, "client": client,
               "jobberWebUri": f"https://secure.getjobber.com/invoices/{uuid.uuid4().hex[:8]}",
               "_jobs": list(input.get("jobIds") or []), "_input": input}
        acc.invoices[inv["id"]] = inv
        return {"invoice": inv, "userErrors": []}


SIMULATOR = JobberSimulator
