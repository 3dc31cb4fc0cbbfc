"""A small, faithful stand-in for the parts of Sage Intacct's XML gateway invoicer uses (tests and
`invoicer sandbox` only).

Endpoint (same path as Sage Intacct): POST /ia/xml/xmlgw.phtml, one <request> per call.

What it reproduces, and from where (developer.intacct.com: web-services/requests, web-services/error-handling,
support/faq, api/accounts-receivable/invoices; the official .NET SDK's ControlBlock/InvoiceCreate/
InvoiceLineCreate for element names and order):
- Every answer is HTTP 200 with <response><control><status>; failures are in <errormessage><error>
  (<errorno>, <description>, <description2>, <correction>) at the control level (bad sender credentials:
  XL03000006 "Invalid Web Services Authorization"), the authentication level (bad login, unknown or expired
  session), or per function (<result><status>failure</status>...). Rate limiting is HTTP 429 with a gateway
  error GW-0010 (error-handling page; the 429's body here is an assumption).
- <control>: senderid/password checked; controlid required; dtdversion 3.0. With uniqueid=true a control id
  that has already run successfully is refused at the control level with XL03000009 ("not confirmed": the
  error number and wording are this simulator's, and whether a failed request's control id is kept is not
  documented: here it is not, so a retry after a failure runs).
- <authentication>: <login> (userid, companyid, password) or <sessionid> from getAPISession (which answers
  <api><sessionid>, <endpoint>, <sessiontimeout>); sessions expire after `session_ttl` seconds.
- Functions: getAPISession; create_invoice (children in the DTD's order, customer must exist, GL accounts
  must exist, amounts with at most 2 decimals, invoiceno unique when given, else the company's document
  sequence numbers it); create of CUSTOMER (CUSTOMERID unique); read / readByQuery of ARINVOICE and CUSTOMER
  with `FIELD = 'value'` queries (AND-joined).
- Requests in flight per company are limited (`flight.limit`); one more gets the 429.
It stores what it received (`invoices`, `customers`) so tests assert on Sage Intacct's side.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation

from defusedxml.ElementTree import fromstring

from ..common import InFlight, SecretsFromEnv
from ..simulate import Reply, Request, Simulator

GATEWAY = "/ia/xml/xmlgw.phtml"
COMPANY = "invoicer-sim"
INVOICE_ORDER = ("customerid", "datecreated", "dateposted", "datedue", "termname", "action", "batchkey",
                 "invoiceno", "ponumber", "onhold", "description", "externalid", "billto", "shipto", "basecurr",
                 "currency", "exchratedate", "exchratetype", "nogl", "supdocid", "customfields", "invoiceitems")
LINE_ORDER = ("glaccountno", "accountlabel", "offsetglaccountno", "amount", "allocationid", "memo", "locationid",
              "departmentid", "key", "totalpaid", "totaldue", "customfields", "revrectemplate", "defrevaccount",
              "revrecstartdate", "revrecenddate", "projectid", "customerid", "vendorid", "employeeid", "itemid",
              "classid", "contractid", "warehouseid")
_TERM = re.compile(r"\s*([A-Z_]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*")


class Failure(Exception):
    def __init__(self, errorno: str, description2: str, description: str = "", correction: str = ""):
        super().__init__(description2)
        self.error = {"errorno": errorno, "description": description, "description2": description2,
                      "correction": correction}


def _text(parent: ET.Element, tag: str, value) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = "" if value is None else (format(value, "f") if isinstance(value, Decimal) else str(value))
    return el


def _errormessage(parent: ET.Element, errors: list[dict]) -> None:
    em = ET.SubElement(parent, "errormessage")
    for e in errors:
        err = ET.SubElement(em, "error")
        for k in ("errorno", "description", "description2", "correction"):
            _text(err, k, e.get(k, ""))


def _xml(root: ET.Element, status: int = 200) -> Reply:
    return Reply(status, ET.tostring(root, encoding="utf-8", xml_declaration=True),
                 {"Content-Type": "text/xml; charset=UTF-8"})


def _date(el: ET.Element | None) -> date | None:
    if el is None:
        return None
    return date(int(el.findtext("year")), int(el.findtext("month")), int(el.findtext("day")))


def _ordered(el: ET.Element, order: tuple[str, ...], where: str) -> None:
    positions = []
    for child in el:
        if child.tag not in order:
            raise Failure("XL03000003", f"XML Parse schema error: Element '{child.tag}' is not allowed in {where}.")
        positions.append(order.index(child.tag))
    if positions != sorted(positions):
        raise Failure("XL03000003", f"XML Parse schema error: the children of {where} are out of the DTD's order.")


class SageIntacctSimulator(SecretsFromEnv, Simulator):
    """One Sage Intacct company with GL accounts, customers and AR invoices."""
    sandbox_slug = "sage_intacct"

    def __init__(self, company: str = COMPANY):
        super().__init__()
        self.company = company
        self.sender_id, self.sender_password = "invoicer-sim-sender", "sp-" + uuid.uuid4().hex
        self.user_id, self.user_password = "ws_invoicer", "up-" + uuid.uuid4().hex
        self.state = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.state, self.lock:
            self.forget()
            self.flight = InFlight(2)
            self.session_ttl = 3600.0
            self.sessions: dict[str, float] = {}
            self.logins = 0
            self.used_controls: set[str] = set()
            self.accounts = {"4000", "4100", "4200", "4900", "2200"}
            self.currencies = {"USD", "EUR", "CAD", "GBP", "AUD", "JPY"}
            self.customers: dict[str, dict] = {}
            self.invoices: dict[str, dict] = {}
            self.next_recordno = 1001
            self.next_number = 1
            self.creates = 0

    # ------------------------------------------------------------ the sandbox hook

    def platform(self, url: str) -> dict:
        return {"provider": "sage_intacct", "company_id": self.company, "base_url": url,
                "gl_accounts": {"labor": "4000", "material": "4100", "fee": "4200", "discount": "4900",
                                "tax": "2200"}, **self.secret_options()}

    def secret_values(self) -> dict[str, str]:  # sessions are made on demand: tokens() is None
        return {"sender_id_env": self.sender_id, "sender_password_env": self.sender_password,
                "user_id_env": self.user_id, "user_password_env": self.user_password}

    # ------------------------------------------------------------ test helpers

    def expire_sessions(self) -> None:
        with self.state:
            self.sessions = {k: 0.0 for k in self.sessions}

    def pay(self, recordno: str, amount: Decimal) -> dict:
        with self.state:
            inv = self.invoices[recordno]
            inv["TOTALPAID"] = inv["TOTALPAID"] + amount
            inv["TOTALDUE"] = inv["TOTALENTERED"] - inv["TOTALPAID"]
            inv["STATE"] = "Paid" if inv["TOTALDUE"] <= 0 else "Partially Paid"
            return inv

    def rate_limited(self, request: Request) -> Reply:
        root = ET.Element("response")
        ctl = ET.SubElement(root, "control")
        _text(ctl, "status", "failure")
        _errormessage(root, [{"errorno": "GW-0010", "description": "Rate limit exceeded",
                              "description2": "Too many requests in a short period of time; retry later."}])
        return _xml(root, 429)

    # ------------------------------------------------------------ the gateway

    def handle(self, request: Request) -> Reply:
        if request.path != GATEWAY or request.method != "POST":
            return Reply(404, "Not Found")
        with self.flight.enter(lambda: self.rate_limited(request)) as refused:
            if refused:
                return refused
            with self.state:
                return _xml(self._gateway(request.body))

    def _gateway(self, body: bytes) -> ET.Element:
        root = ET.Element("response")
        ctl = ET.SubElement(root, "control")
        status = _text(ctl, "status", "failure")
        try:
            req = fromstring(body)
        except Exception as exc:
            _errormessage(root, [{"errorno": "XL03000003", "description2": f"XML Parse error: {exc}"}])
            return root
        control = req.find("control")
        cid = (control.findtext("controlid") if control is not None else "") or ""
        unique = ((control.findtext("uniqueid") if control is not None else "") or "").strip().lower() == "true"
        for name in ("senderid", "controlid", "uniqueid", "dtdversion"):
            _text(ctl, name, (control.findtext(name) if control is not None else "") or "")
        problem = None
        if control is None or control.findtext("senderid") != self.sender_id \
                or control.findtext("password") != self.sender_password:
            problem = {"errorno": "XL03000006", "description": "Invalid Web Services Authorization",
                       "description2": f"The sender ID '{control.findtext('senderid') if control is not None else ''}'"
                                       f" is not authorized to make Web Services requests to company ID "
                                       f"'{self.company}'."}
        elif not cid.strip():
            problem = {"errorno": "XL03000003", "description2": "XML Parse schema error: controlid is required."}
        elif control.findtext("dtdversion") != "3.0":
            problem = {"errorno": "XL03000003", "description2": "Only dtdversion 3.0 is served here."}
        elif unique and cid in self.used_controls:
            problem = {"errorno": "XL03000009", "description": "Duplicate control id",
                       "description2": f"A request with control ID {cid} has already been processed "
                                       f"successfully (uniqueid is true)."}
        if problem:
            _errormessage(root, [problem])
            return root
        status.text = "success"
        op_in = req.find("operation")
        op = ET.SubElement(root, "operation")
        auth = ET.SubElement(op, "authentication")
        user = self._authenticate(op_in.find("authentication") if op_in is not None else None)
        if isinstance(user, dict):
            _text(auth, "status", "failure")
            _errormessage(op, [user])
            return root
        _text(auth, "status", "success")
        _text(auth, "userid", self.user_id)
        _text(auth, "companyid", self.company)
        all_ok = True
        for fn in op_in.find("content") if op_in.find("content") is not None else []:
            all_ok &= self._function(op, fn, user)
        if unique and all_ok:
            self.used_controls.add(cid)
        return root

    def _authenticate(self, auth: ET.Element | None) -> str | dict:
        bad = {"errorno": "XL03000006", "description": "Sign-in information is incorrect",
               "description2": "Sign-in information is incorrect. Check the user ID, company ID and password."}
        if auth is None:
            return bad
        session = auth.findtext("sessionid")
        if session is not None:
            if self.sessions.get(session, 0) <= time.time():
                return {"errorno": "XL03000006", "description": "Invalid session",
                        "description2": "Your session has expired or is invalid. Sign in again."}
            return session
        login = auth.find("login")
        if login is None or login.findtext("userid") != self.user_id or login.findtext("companyid") != self.company \
                or login.findtext("password") != self.user_password:
            return bad
        return ""

    def _function(self, op: ET.Element, fn: ET.Element, session: str) -> bool:
        res = ET.SubElement(op, "result")
        body = fn[0] if len(fn) else None
        status = _text(res, "status", "success")
        _text(res, "function", body.tag if body is not None else "")
        _text(res, "controlid", fn.get("controlid", ""))
        try:
            if body is None:
                raise Failure("XL03000003", "A function needs one operation.")
            handler = {"getAPISession": self._session, "create_invoice": self._create_invoice,
                       "create": self._create, "read": self._read, "readByQuery": self._read_by_query}.get(body.tag)
            if handler is None:
                raise Failure("XL03000003", f"Unknown function {body.tag}.")
            handler(res, body)
            return True
        except Failure as exc:
            status.text = "failure"
            _errormessage(res, [exc.error])
            return False

    # ------------------------------------------------------------ functions

    def _session(self, res: ET.Element, body: ET.Element) -> None:
        sid = "sim-session-" + uuid.uuid4().hex
        expires = time.time() + self.session_ttl
        self.sessions[sid] = expires
        self.logins += 1
        api = ET.SubElement(ET.SubElement(res, "data"), "api")
        _text(api, "sessionid", sid)
        _text(api, "endpoint", "https://api.intacct.com/ia/xml/xmlgw.phtml")
        _text(api, "locationid", "")
        _text(api, "sessiontimeout", datetime.fromtimestamp(expires, timezone.utc).isoformat())

    def _create_invoice(self, res: ET.Element, body: ET.Element) -> None:
        _ordered(body, INVOICE_ORDER, "create_invoice")
        customer = body.findtext("customerid") or ""
        if customer not in self.customers:
            raise Failure("BL01001973", f"Invalid Customer '{customer}' specified.", "Could not create invoice.")
        created = _date(body.find("datecreated"))
        if created is None:
            raise Failure("XL03000003", "datecreated is required.")
        currency = body.findtext("currency") or "USD"
        if currency not in self.currencies:
            raise Failure("BL01001973", f"Invalid currency '{currency}'.")
        number = body.findtext("invoiceno")
        if number and any(i["RECORDID"] == number for i in self.invoices.values()):
            raise Failure("BL01001973", f"The invoice number {number} is already in use.",
                          "Could not create invoice.", "Use a unique invoice number.")
        lines = []
        for i, li in enumerate(body.findall("invoiceitems/lineitem"), 1):
            _ordered(li, LINE_ORDER, "lineitem")
            account = li.findtext("glaccountno") or ""
            if account not in self.accounts:
                raise Failure("BL01001973", f"Invalid GL account '{account}' on line {i}.",
                              "Could not create invoice.", "Enter a valid account number and try again.")
            try:
                amount = Decimal(li.findtext("amount") or "")
            except InvalidOperation:
                raise Failure("XL03000003", f"Line {i}: amount is not a number.") from None
            if amount.as_tuple().exponent < -2:
                raise Failure("BL01001973", f"Line {i}: amount {amount} has more than 2 decimal places.")
            lines.append({"GLACCOUNTNO": account, "AMOUNT": amount, "MEMO": li.findtext("memo") or ""})
        if not lines:
            raise Failure("BL01001973", "An invoice needs at least one line item.")
        total = sum((li["AMOUNT"] for li in lines), Decimal(0))
        if not number:
            number = f"INV-{self.next_number:05d}"  # the company's document sequence
            self.next_number += 1
        recordno = str(self.next_recordno)
        self.next_recordno += 1
        due = _date(body.find("datedue"))
        self.invoices[recordno] = {
            "RECORDNO": recordno, "RECORDID": number, "DOCNUMBER": body.findtext("ponumber") or "",
            "CUSTOMERID": customer, "STATE": "Posted", "CURRENCY": currency, "DESCRIPTION":
                body.findtext("description") or "", "WHENCREATED": created.isoformat(),
            "WHENDUE": due.isoformat() if due else "", "TOTALENTERED": total, "TOTALPAID": Decimal(0),
            "TOTALDUE": total, "TRX_TOTALENTERED": total, "_lines": lines}
        self.creates += 1
        _text(res, "key", recordno)

    def _create(self, res: ET.Element, body: ET.Element) -> None:
        record = body[0] if len(body) else None
        if record is None or record.tag != "CUSTOMER":
            raise Failure("XL03000003", "Only CUSTOMER can be created here.")
        cid = record.findtext("CUSTOMERID") or ""
        if not cid or not record.findtext("NAME"):
            raise Failure("BL01001973", "CUSTOMERID and NAME are required.")
        if cid in self.customers:
            raise Failure("BL01001973", f"A customer with ID {cid} already exists.", "Could not create Customer.")
        recordno = str(self.next_recordno)
        self.next_recordno += 1
        self.customers[cid] = {"RECORDNO": recordno, "CUSTOMERID": cid, "NAME": record.findtext("NAME"),
                               "EMAIL1": record.findtext("DISPLAYCONTACT/EMAIL1") or ""}
        data = ET.SubElement(res, "data")
        cust = ET.SubElement(data, "customer")
        _text(cust, "RECORDNO", recordno)
        _text(cust, "CUSTOMERID", cid)

    def _rows(self, obj: str) -> list[dict]:
        if obj == "ARINVOICE":
            return list(self.invoices.values())
        if obj == "CUSTOMER":
            return list(self.customers.values())
        raise Failure("XL03000003", f"Unknown object {obj}.")

    def _data(self, res: ET.Element, obj: str, rows: list[dict], fields: str) -> None:
        names = [f.strip() for f in fields.split(",") if f.strip()]
        data = ET.SubElement(res, "data", {"listtype": obj.lower(), "count": str(len(rows)),
                                           "totalcount": str(len(rows)), "numremaining": "0"})
        for row in rows:
            el = ET.SubElement(data, obj.lower())
            for k, v in row.items():
                if not k.startswith("_") and ("*" in names or k in names):
                    _text(el, k, v)

    def _read(self, res: ET.Element, body: ET.Element) -> None:
        obj = body.findtext("object") or ""
        keys = {k.strip() for k in (body.findtext("keys") or "").split(",")}
        self._data(res, obj, [r for r in self._rows(obj) if r["RECORDNO"] in keys], body.findtext("fields") or "*")

    def _read_by_query(self, res: ET.Element, body: ET.Element) -> None:
        obj = body.findtext("object") or ""
        query = (body.findtext("query") or "").strip()
        terms = []
        for part in re.split(r"\s+AND\s+", query) if query else []:
            m = _TERM.fullmatch(part)
            if not m:
                raise Failure("BL01001973", f"Invalid query: {query}")
            terms.append((m.group(1), re.sub(r"\\(.)", r"\1", m.group(2))))
        rows = [r for r in self._rows(obj) if all(str(r.get(k, "")) == v for k, v in terms)]
        self._data(res, obj, rows, body.findtext("fields") or "*")

    def lines(self, recordno: str) -> list[dict]:
        return list(self.invoices[recordno]["_lines"])


SIMULATOR = SageIntacctSimulator
