"""Salesforce (REST API): the invoice upserted by external id into the tenant's org, with its lines, and
our PDF attached as a ContentVersion; auth, limits and HTTP here, the mapping in transform.py.

Salesforce is a CRM here: it gets the invoice once it exists (after our PDF; capability `attach_pdf`)
and gives no payment link.

Tenant options (platforms.<name> in the tenants file):
  provider: salesforce
  object             custom (Invoice__c + Invoice_Line__c, default), order (Order + OrderItem) or
                     workorder (WorkOrder + WorkOrderLineItem, Field Service)
  invoice_object, reference_field, line_object, line_reference_field, parent_relationship,
  account_reference_field   other names for the objects and fields (defaults in transform.Layout)
  account            false: no Account upsert for the custom object (always on for orders)
  multi_currency     true: CurrencyIsoCode is set (orgs with multiple currencies enabled)
  pricebook_id, pricebook_entries {labor, material, fee, discount, tax}   for object: order or workorder
  attach_pdf         false: no ContentVersion (default true)
  auth               client_credentials (default) or jwt
  login_url          https://login.salesforce.com (test.salesforce.com for sandboxes, or the My Domain URL)
  client_id_env, client_secret_env   env vars with the connected app's consumer key and secret
                     (default INVOICER_SALESFORCE_CLIENT_ID / _CLIENT_SECRET)
  private_key_env    jwt: env var with the PEM private key whose certificate the connected app holds
                     (default INVOICER_SALESFORCE_PRIVATE_KEY); username: the user to act as;
                     audience: default login_url
  api_version        default transform.DEFAULT_VERSION
  stop_at            stop calling at this share of the org's daily API requests (default 0.9)

create_invoice: one POST /composite (all or none, 25 subrequests each): PATCH Account by
Invoicer_Customer_Id__c, PATCH the invoice by Invoicer_Reference__c, PATCH each line by
Invoicer_Line_Reference__c, GET the invoice back by external id; its total must equal ours. Then the PDF:
a SOQL query for a ContentVersion with our title on the record, and only if there is none, POST
/sobjects/ContentVersion with FirstPublishLocationId = the record. Upserts make every retry safe.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import requests

from ...errors import AuthFailed, ProviderError, RateLimited, Rejected
from .. import http
from ..base import Created, Provider
from ..common import ProcessTokens, env_value
from ..registry import register
from . import transform

SLUG = "salesforce"
DEFAULT_LOGIN = "https://login.salesforce.com"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
log = logging.getLogger("invoicer.providers.salesforce")

_tokens = ProcessTokens()  # per process: (token url, client id, user) -> {access_token, instance_url}
_usage: dict[str, tuple[int, int]] = {}  # per process: instance url -> the last Sforce-Limit-Info api-usage
_lock = threading.Lock()


def usage(resp: requests.Response) -> tuple[int, int] | None:
    """`Sforce-Limit-Info: api-usage=18/15000` as (18, 15000)."""
    value = resp.headers.get("Sforce-Limit-Info") or ""
    for part in value.split(","):
        name, _, figures = part.strip().partition("=")
        if name == "api-usage" and "/" in figures:
            used, _, cap = figures.partition("/")
            try:
                return int(used), int(cap)
            except ValueError:
                return None
    return None


@register
class Salesforce(Provider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "attach_pdf"})

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.platform = getattr(ctx, "platform", "") or SLUG
        self.layout = transform.Layout.from_options(self.options, self.platform)
        self.version = str(self.options.get("api_version") or transform.DEFAULT_VERSION)
        self.login_url = str(self.options.get("login_url") or os.environ.get("INVOICER_SALESFORCE_LOGIN_URL")
                             or DEFAULT_LOGIN).rstrip("/")

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        kind = options.get("object", "custom")
        if kind not in transform.LAYOUTS:
            problems.append(f"platforms.{name}.object: {transform.OBJECTS}, not {kind!r}")
        elif transform.LAYOUTS[kind].priced:
            if not options.get("pricebook_id"):
                problems.append(f"platforms.{name}.pricebook_id: the Pricebook2 id for "
                                f"{transform.LAYOUTS[kind].invoice_object} is not set")
            for k in transform.KINDS:
                if not (options.get("pricebook_entries") or {}).get(k):
                    problems.append(f"platforms.{name}.pricebook_entries.{k} is not set")
        auth = options.get("auth", "client_credentials")
        if auth not in ("client_credentials", "jwt"):
            problems.append(f"platforms.{name}.auth: 'client_credentials' or 'jwt', not {auth!r}")
        if auth == "jwt" and not options.get("username"):
            problems.append(f"platforms.{name}.username: the user the JWT bearer flow acts as is not set")
        stop = options.get("stop_at", 0.9)
        if not isinstance(stop, (int, float)) or not 0 < stop <= 1:
            problems.append(f"platforms.{name}.stop_at: a share of the daily API requests, above 0 and at most 1")
        return problems

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        transform.plan(invoice, self.layout)

    def create_invoice(self, invoice: dict, key: str) -> Created:
        plan = transform.plan(invoice, self.layout)  # MappingMissing / Rejected before anything is sent
        record = None
        for body in transform.composites(plan, self.layout, self.version):
            answer = self._request("POST", f"/services/data/{self.version}/composite", body=body, what="composite")
            record = self._composite(answer) or record
        transform.check_total(record, plan, self.layout)
        detail = {}
        pdf = invoice.get("pdf")
        if pdf and pdf.get("data") and self.options.get("attach_pdf", True):
            detail["content_version"] = self._attach(record["Id"], invoice, pdf)
        detail["api_usage"] = self._usage_text()  # Sforce-Limit-Info as of the last answer
        return transform.created(record, plan, self.layout, self._session()["instance_url"], detail)

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        """The record if an earlier try made it, brought up to date (every step is an upsert, the PDF is
        looked up before it is attached); None if nothing was made."""
        plan = transform.plan(invoice, self.layout)
        path = transform.check_path(self.layout, plan.reference, self.version)
        try:
            self._request("GET", path, what="lookup")
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise
        return self.create_invoice(invoice, key)

    def _composite(self, answer: dict) -> dict | None:
        """The invoice record read back by the last subrequest; the typed error of the first that failed."""
        record = None
        subs = answer.get("compositeResponse") or []
        failed = [s for s in subs if int(s.get("httpStatusCode") or 0) >= 300]
        if failed:
            real = [s for s in failed if any(e.get("errorCode") != transform.HALTED
                                             for e in transform.errors_of(s.get("body")))] or failed
            s = real[0]
            raise transform.typed(int(s["httpStatusCode"]), transform.errors_of(s.get("body")),
                                  f"composite subrequest {s.get('referenceId')}",
                                  (self.layout.reference_field, self.layout.line_reference_field,
                                   self.layout.account_reference_field))
        for s in subs:
            if s.get("referenceId") == "check":
                record = s.get("body")
        return record

    def _attach(self, record_id: str, doc: dict, pdf: dict) -> str:
        """Our PDF as a ContentVersion on the record, once: looked up by title on the record first."""
        found = self._request("GET", f"/services/data/{self.version}/query", what="query",
                              params={"q": transform.pdf_query(record_id, doc)})
        if found.get("records"):
            return str(found["records"][0]["Id"])
        made = self._request("POST", f"/services/data/{self.version}/sobjects/ContentVersion", what="ContentVersion",
                             body=transform.content_version(record_id, doc, pdf))
        return str(made["id"])

    # ------------------------------------------------------------ auth

    def _env(self, option: str, default: str, what: str) -> str:
        return env_value(self.options, self.platform, option, default, what)

    def _cache_key(self) -> tuple:
        return (self.login_url, self.options.get("client_id_env") or "", self.options.get("username") or "",
                self.options.get("auth") or "client_credentials")

    def _session(self, refused: str | None = None) -> dict:
        """{access_token, instance_url}: cached per process, fetched again once a token is refused."""
        return _tokens.get(self._cache_key(), self._fetch_token, refused)

    def _fetch_token(self) -> dict:
        client_id = self._env("client_id_env", "INVOICER_SALESFORCE_CLIENT_ID", "the connected app's consumer key")
        if (self.options.get("auth") or "client_credentials") == "jwt":
            import jwt  # PyJWT, with cryptography for RS256

            key = self._env("private_key_env", "INVOICER_SALESFORCE_PRIVATE_KEY", "the JWT signing key")
            assertion = jwt.encode({"iss": client_id, "sub": self.options.get("username"),
                                    "aud": self.options.get("audience") or self.login_url,
                                    "exp": int(time.time()) + 180}, key, algorithm="RS256")
            data = {"grant_type": JWT_GRANT, "assertion": assertion}
        else:
            data = {"grant_type": "client_credentials", "client_id": client_id,
                    "client_secret": self._env("client_secret_env", "INVOICER_SALESFORCE_CLIENT_SECRET",
                                               "the connected app's consumer secret")}
        try:
            resp = http.call("POST", f"{self.login_url}/services/oauth2/token", slug=SLUG, data=data,
                             message=_oauth_message, headers={"Accept": "application/json"})
        except Rejected as exc:  # 400 invalid_client / invalid_grant: the connected app or user must be fixed
            raise AuthFailed(f"salesforce refused the token request ({exc})", status=exc.status) from None
        token = resp.json()
        instance = str(self.options.get("instance_url") or token.get("instance_url") or "").rstrip("/")
        if not instance:
            raise AuthFailed("salesforce: the token answer has no instance_url")
        return {"access_token": token["access_token"], "instance_url": instance}

    # ------------------------------------------------------------ HTTP and limits

    def _usage_text(self) -> str | None:
        seen = _usage.get(self._session()["instance_url"])
        return f"{seen[0]}/{seen[1]}" if seen else None

    def _guard(self, instance: str) -> None:
        """Stop early near the org's daily cap (24 h rolling): other integrations need what is left."""
        seen = _usage.get(instance)
        stop = float(self.options.get("stop_at", 0.9))
        if seen and seen[1] and seen[0] >= seen[1] * stop:
            raise RateLimited(f"salesforce: the org has used {seen[0]} of its {seen[1]} daily API requests "
                              f"(stop_at {stop:g}); waiting", retry_after=3600.0)

    def _request(self, method: str, path: str, *, what: str, body=None, params: dict | None = None) -> dict:
        refused = None
        for attempt in (1, 2):
            session = self._session(refused)
            instance = session["instance_url"]
            self._guard(instance)
            seen: dict = {}

            def message(resp: requests.Response) -> str:
                seen["resp"] = resp
                return transform.error_text(transform.errors_of(_json(resp)), resp.text)

            headers = {"Authorization": f"Bearer {session['access_token']}", "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                resp = http.call(method, instance + path, slug=SLUG, message=message, params=params,
                                 headers=headers, data=transform.dumps(body).encode() if body is not None else None)
            except ProviderError as exc:
                resp = seen.get("resp")
                if resp is None:  # nothing answered (refused, dropped, timed out): as http.py says
                    raise
                self._record(instance, resp)
                better = transform.typed(resp.status_code, transform.errors_of(_json(resp)), what,
                                         retry_after=exc.retry_after)
                if isinstance(better, AuthFailed) and resp.status_code == 401 and attempt == 1:
                    refused = session["access_token"]  # INVALID_SESSION_ID: a new token once, then repeat
                    continue
                raise better from exc
            self._record(instance, resp)
            if resp.status_code == 300:
                raise transform.typed(300, [{"errorCode": "MULTIPLE_CHOICES", "message": resp.text[:200]}], what)
            return transform.loads(resp.content) if resp.content else {}
        raise AssertionError("unreachable")

    def _record(self, instance: str, resp: requests.Response | None) -> None:
        seen = usage(resp) if resp is not None else None
        if seen:
            with _lock:
                _usage[instance] = seen
            if seen[1] and seen[0] >= seen[1] * 0.8:
                log.warning("salesforce api-usage %s/%s for tenant %s", seen[0], seen[1],
                            getattr(self.ctx, "tenant", ""))


def _json(resp: requests.Response):
    try:
        return transform.loads(resp.content)
    except ValueError:
        return None


def _oauth_message(resp: requests.Response) -> str:
    body = _json(resp)
    if isinstance(body, dict):
        return f"{body.get('error')}: {body.get('error_description')}"
    return resp.text[:300]
