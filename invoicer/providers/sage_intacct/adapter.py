"""Sage Intacct (XML gateway, Web Services DTD 3.0): sessions and HTTP; the XML is in transform.py.

Tenant options (platforms.<name> in the tenants file):
  provider: sage_intacct
  company_id        the Sage Intacct company id (required)
  gl_accounts       {labor, material, fee, discount, tax}: the GL account number for each kind of line
                    (discount and tax: needed once an invoice has a discount / tax; tax is the sales tax
                    payable account)
  use_our_number    true: invoiceno = our invoice number; default false: the company's document sequence
                    numbers it. Our number is always the invoice's reference number (DOCNUMBER).
  base_currency     the company's base currency; set it on multi-currency companies (then basecurr/currency
                    and the Intacct Daily Rate are sent)
  term, location_id, department_id   optional payment term name and dimensions for every line
  concurrency       requests invoicer may have in flight on the company (default 2)
  sender_id_env, sender_password_env, user_id_env, user_password_env   environment variables with the Web
                    Services sender id/password and the company's Web Services user id/password (default
                    INVOICER_SAGE_INTACCT_SENDER_ID, ..._SENDER_PASSWORD, ..._USER_ID, ..._USER_PASSWORD)
  base_url          default https://api.intacct.com (else env INVOICER_SAGE_INTACCT_BASE_URL); the gateway
                    is POST {base_url}/ia/xml/xmlgw.phtml

Session: `getAPISession` with the user's login, cached (encrypted) in the credentials table with its
expiry, renewed under the row lock when it is about to expire or when the gateway refuses it (once).

Exactly once: the create request's control id is derived from the delivery's idempotency key and sent with
uniqueid=true, so the gateway refuses to run the same request twice; that refusal is read as "done
before" and the invoice is looked up by our reference (DOCNUMBER = our number, same customer) with
readByQuery. Before any retry the pipeline calls find_invoice, the same lookup.
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import requests

from ...errors import AuthFailed, RateLimited, Rejected, Unavailable
from .. import http
from ..base import Created, PaymentStatus
from ..common import MappedProvider, cached_credential, env_secrets, mapped, known_customer, option_problems
from ..oauth import epoch
from ..registry import register
from . import transform
from .transform import Answer

SLUG = "sage_intacct"
API_URL = "https://api.intacct.com"
GATEWAY = "/ia/xml/xmlgw.phtml"
CONCURRENCY = 2
RETRY_AFTER = 10.0
SESSION_TTL = 30 * 60  # used when the gateway does not say when the session ends (not confirmed)
EARLY = 60
SECRETS = (("sender_id_env", "SENDER_ID"), ("sender_password_env", "SENDER_PASSWORD"),
           ("user_id_env", "USER_ID"), ("user_password_env", "USER_PASSWORD"))
RATE_CODES = ("GW-0010",)
AUTH_CODES = ("XL03000006", "XL03000005")  # sender not authorised; invalid sender credentials
DUPLICATE_CODES = ("XL03000009",)  # the control id of a uniqueid=true request was used before (not confirmed)


def _limited(errors: list[dict]) -> bool:
    text = transform.error_text(errors).lower()
    return any(e.get("errorno") in RATE_CODES for e in errors) or "too many" in text or "concurrent" in text


def _duplicate(errors: list[dict]) -> bool:
    text = transform.error_text(errors).lower()
    return any(e.get("errorno") in DUPLICATE_CODES for e in errors) or ("control" in text and "already" in text)


class DoneBefore(Exception):
    """The gateway refused a uniqueid=true request because its control id ran before."""


@register
class SageIntacct(MappedProvider):
    slug = SLUG
    capabilities = frozenset({"create_invoice", "find_invoice", "payment_status"})
    mapping_class = transform.Mapping

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        return option_problems(options, name, {"company_id": "the Sage Intacct company id"}, "gl_accounts",
                               transform.KINDS)

    # ------------------------------------------------------------ capabilities

    def check_invoice(self, invoice: dict) -> None:
        transform.create_invoice(invoice, self.mapping, "C")

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        query = f"DOCNUMBER = {transform.quote(transform.reference(invoice))}"
        rows = self._one(transform.read_by_query("ARINVOICE", query, transform.INVOICE_FIELDS), "read").data
        customer = self.ctx.refs.get("customer", invoice["customer"]["id"])
        ours = [r for r in rows if transform.is_ours(r, invoice, customer)]
        if rows and not ours:
            raise Rejected(f'Sage Intacct has invoice {rows[0].get("RECORDNO")} with reference '
                           f'{transform.reference(invoice)} for another customer; invoicer did not make it')
        return transform.created(ours[0], invoice) if ours else None

    def create_invoice(self, invoice: dict, key: str) -> Created:
        transform.create_invoice(invoice, self.mapping, "C")  # a missing mapping fails before any call
        body = transform.create_invoice(invoice, self.mapping, self._customer(invoice))
        try:
            result = self._one(body, transform.control_id(key), unique=True)
        except DoneBefore:
            found = self.find_invoice(invoice, key)
            if found is None:
                raise Rejected("Sage Intacct refused the create as already run (same control id) but has no "
                               f"invoice with reference {transform.reference(invoice)}") from None
            return found
        return transform.created(self._invoice(result.key or ""), invoice)

    def payment_status(self, external_id: str) -> PaymentStatus:
        return transform.payment_status(self._invoice(external_id))

    def _invoice(self, recordno: str) -> dict:
        rows = self._one(transform.read("ARINVOICE", recordno, transform.INVOICE_FIELDS), "read").data
        if not rows:
            raise Rejected(f"Sage Intacct has no AR invoice {recordno}")
        return rows[0]

    # ------------------------------------------------------------ customers

    def _customer(self, doc: dict) -> str:
        c = doc["customer"]
        theirs = known_customer(self.ctx, c, SLUG, self.platform)
        if not theirs:
            cid = transform.customer_id(c)
            query = f"CUSTOMERID = {transform.quote(cid)}"
            rows = self._one(transform.read_by_query("CUSTOMER", query, ("RECORDNO", "CUSTOMERID")), "read").data
            if not rows:
                try:
                    self._one(transform.create_customer(doc, cid), transform.control_id(
                        f"{self.ctx.tenant}|{c['id']}", "customer"), unique=True)
                except DoneBefore:
                    pass  # made by an earlier try
                except Rejected as exc:
                    if "already exists" not in str(exc).lower():  # made by a concurrent worker
                        raise
            theirs = cid
        return self.ctx.refs.put("customer", c["id"], str(theirs))

    # ------------------------------------------------------------ session and HTTP

    @property
    def company_id(self) -> str:
        return str(mapped(self.options, "company_id",
                          f"platforms.{self.platform}.company_id: the Sage Intacct company id is not set"))

    def _secrets(self) -> list[str]:
        return env_secrets(SLUG, self.options, self.platform, SECRETS)

    def _url(self) -> str:
        return http.base_url(SLUG, self.options, API_URL) + GATEWAY

    def _login(self, current: dict | None = None) -> dict:
        """A new API session for the company's Web Services user."""
        sender, sender_password, user, password = self._secrets()
        data = transform.request(sender_id=sender, sender_password=sender_password,
                                 control=f"invoicer-session-{time.time_ns()}", unique=False,
                                 functions=[transform.function("session", transform.get_api_session())],
                                 login={"userid": user, "companyid": self.company_id, "password": password})
        answer = self._post(data)
        self._raise_top(answer, login=True)
        result = answer.results[0] if answer.results else None
        if result is None or not result.ok or not answer.session.get("sessionid"):
            raise AuthFailed(f"sage_intacct: no API session ({result.text() if result else 'empty answer'})")
        expires = answer.session.get("sessiontimeout")
        try:
            expires_at = epoch(expires) if expires else time.time() + SESSION_TTL
        except ValueError:
            expires_at = time.time() + SESSION_TTL
        return {"sessionid": answer.session["sessionid"], "endpoint": answer.session.get("endpoint", ""),
                "expires_at": expires_at}

    def _session(self, refused: str | None = None) -> str:
        return cached_credential(self.ctx.credentials, "sessionid", self._login, refused, EARLY)

    def _post(self, data: bytes) -> Answer:
        limit = int(self.options.get("concurrency") or CONCURRENCY)
        headers = {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"}
        with self.ctx.limiter.slot(f"{SLUG}:{self.company_id}", [], concurrency=limit):
            try:
                resp = http.call("POST", self._url(), slug=SLUG, data=data, headers=headers, message=_message)
            except RateLimited as exc:
                raise RateLimited(str(exc), retry_after=exc.retry_after or RETRY_AFTER, status=exc.status) from exc
        try:
            return transform.parse(resp.content)
        except ValueError as exc:
            raise Unavailable(f"sage_intacct answered {resp.status_code} without XML") from exc

    def _raise_top(self, answer: Answer, login: bool = False) -> None:
        """The typed error for a failure at the control or authentication level."""
        if answer.control_ok and answer.auth_ok is not False:
            return
        text = f"sage_intacct: {transform.error_text(answer.errors) or 'request failed'}"
        if _limited(answer.errors):
            raise RateLimited(text, retry_after=RETRY_AFTER)
        if not answer.control_ok and _duplicate(answer.errors):
            raise DoneBefore(text)
        if not answer.control_ok and not any(e.get("errorno") in AUTH_CODES for e in answer.errors):
            raise Rejected(text)
        raise AuthFailed(text)

    def _one(self, body: ET.Element, control: str, unique: bool = False) -> transform.Result:
        """Run one function in a session; a refused session is renewed once."""
        sender, sender_password, _, _ = self._secrets()
        refused = None
        for attempt in (1, 2):
            session = self._session(refused)
            data = transform.request(sender_id=sender, sender_password=sender_password, control=control,
                                     unique=unique, session_id=session,
                                     functions=[transform.function(control[:64], body)])
            answer = self._post(data)
            if answer.control_ok and answer.auth_ok is False and attempt == 1 \
                    and not _limited(answer.errors):
                refused = session  # expired or ended: a new session, once
                continue
            self._raise_top(answer)
            if not answer.results:
                raise Unavailable("sage_intacct answered without a result")
            result = answer.results[0]
            if not result.ok:
                text = f"sage_intacct: {result.text() or 'function failed'}"
                if _limited(result.errors):
                    raise RateLimited(text, retry_after=RETRY_AFTER)
                raise Rejected(text)
            return result
        raise AssertionError("unreachable")


def _message(resp: requests.Response) -> str:
    try:
        return transform.error_text(transform.parse(resp.content).errors) or resp.text[:300]
    except ValueError:
        return resp.text[:300]
