"""Google Workspace: Gmail as an email channel (`gmail`) and Drive for filing the PDFs (`drive`).

Both act as the tenant's user through a service account with domain-wide delegation (auth.py). The
Workspace admin grants the service account's client id the scopes
`https://www.googleapis.com/auth/gmail.send`, `https://www.googleapis.com/auth/gmail.metadata` (Gmail)
and `https://www.googleapis.com/auth/drive.file` (Drive).

Gmail channel options (tenants file, `channels.email: {provider: gmail, ...}`):
  service_account_env  environment variable holding the service account's JSON key (required)
  user                 the Workspace user the mail is sent as (required)
  from                 "Name <address>" (default: the user; another address must be one of its send-as aliases)
  reply_to             optional
  message_id_domain    the domain of our Message-ID (default: the sender's)
  quota_per_minute     Gmail quota units this user may spend a minute (default 6000; a send is 100)
  base_url             API root (default https://gmail.googleapis.com)
  token_url            where the assertion is traded (default: the key's token_uri, Google's token endpoint)

Drive platform options (tenants file, `platforms.<name>: {provider: drive, ...}`):
  service_account_env, user   as above (the files belong to the user)
  folder_id            the folder (or shared-drive folder) the PDFs go in (default: the user's My Drive)
  name                 file name pattern (default "{number}.pdf"; also {tenant}, {customer}, {job}, {issued})
  share                none (default) | anyone (anyone with the link can view) | domain (with share_domain)
  link_in_messages     true: the Drive link stands in for our signed link in the customer's messages
                       (needs share; the filing then runs before the messages)
  base_url             API root (default https://www.googleapis.com)

Sent once: our Message-ID is derived from the delivery key; after an attempt whose outcome is unknown
(a timeout, a connection lost after sending, a 5xx, a worker killed mid-send) the next one searches the user's mailbox (`messages.list?q=rfc822msgid:<id>`) and records the message
it finds instead of sending a second copy. Filed once: the file id is reserved with `files.generateIds`
and kept on the delivery before the upload; a retry uploads under the same id, and Drive answers 409
when an earlier attempt made it, so the file is read back instead.
"""
from __future__ import annotations

from datetime import date

import requests

from invoicer.errors import MappingMissing, OutcomeUnknown, ProviderError, Rejected, Unavailable
from invoicer.providers import http
from invoicer.providers.base import Created, Message, Provider, Sent
from invoicer.providers.google import transform
from invoicer.providers.google.auth import ServiceAccountToken
from invoicer.providers.ratelimit import limiter, within
from invoicer.providers.registry import register

GMAIL_BASE = "https://gmail.googleapis.com"
DRIVE_BASE = "https://www.googleapis.com"
SEND_UNITS, LIST_UNITS = 100, 5  # Gmail quota units per method (usage limits page)
DRIVE_PER_MINUTE = 12000  # Drive queries per minute per user


def _json(resp: requests.Response):
    try:
        return resp.json()
    except ValueError:
        return None


def _common_problems(options: dict, name: str) -> list[str]:
    problems = []
    if not options.get("service_account_env"):
        problems.append(f"{name}.service_account_env: name the environment variable with the service account key")
    if "@" not in str(options.get("user") or ""):
        problems.append(f"{name}.user: the Workspace user to act as (an email address) is not set")
    return problems


class _Google(Provider):
    """What Gmail and Drive share: the delegated token, the limiter, Google's errors."""
    scopes: list[str] = []
    default_base = ""

    def _base(self) -> str:
        return http.base_url(self.slug, self.options, self.default_base)

    def _user(self) -> str:
        user = str(self.options.get("user") or "")
        if "@" not in user:
            raise MappingMissing(f"{self.slug}: option `user` (the Workspace user to act as) is not set")
        return user

    def _rates(self) -> list:
        """The user's per-minute limit (Drive: queries; Gmail overrides it in quota units)."""
        return [within(DRIVE_PER_MINUTE, 60, 100)]

    def _call(self, method: str, path: str, *, what: str, cost: int = 1, **kwargs) -> requests.Response:
        """One API call as the user: a token (renewed once if refused), the shared limit, typed errors."""
        auth = ServiceAccountToken(self.slug, self.options, self.scopes)
        rates = self._rates()
        extra = kwargs.pop("headers", {})
        refused = None
        for attempt in (1, 2):
            token = auth.get(refused)
            seen: dict = {}

            def message(resp: requests.Response) -> str:
                seen["resp"] = resp
                return transform.error_text(_json(resp), resp.text[:200])

            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **extra}
            with limiter().slot(f"{self.slug}:{self._user()}", rates, cost=cost):
                try:
                    return http.call(method, self._base() + path, slug=self.slug, message=message, headers=headers,
                                     **kwargs)
                except ProviderError as exc:
                    resp = seen.get("resp")
                    if resp is None:  # nothing answered (refused, dropped, timed out): as http.py says
                        raise
                    if resp.status_code == 401 and attempt == 1:
                        refused = token  # an expired or revoked token: a new one once, then repeat
                        continue
                    raise transform.typed(resp.status_code, _json(resp), what, exc.retry_after) from exc
        raise AssertionError("unreachable")


@register
class Gmail(_Google):
    slug = "gmail"
    capabilities = frozenset({"send_email", "find_message"})
    scopes = [transform.GMAIL_SEND, transform.GMAIL_READ]
    default_base = GMAIL_BASE

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = _common_problems(options, name)
        units = options.get("quota_per_minute", 6000)
        if not isinstance(units, int) or units < SEND_UNITS * 2:
            problems.append(f"{name}.quota_per_minute: a whole number of quota units, at least {SEND_UNITS * 2}")
        return problems

    def _rates(self) -> list:
        units = int(self.options.get("quota_per_minute", 6000))
        return [within(units, 60, min(units // 2, 10 * SEND_UNITS))]  # counted in units: a send takes 100

    def send_email(self, message: Message) -> Sent:
        user = self._user()
        raw = transform.mime(message, self.options, user)
        try:
            resp = self._call("POST", "/upload/gmail/v1/users/me/messages/send", what="messages.send",
                              cost=SEND_UNITS, params={"uploadType": "media"}, data=raw,
                              headers={"Content-Type": "message/rfc822"})
        except Unavailable as exc:
            if exc.status is None or exc.status < 500 or isinstance(exc, OutcomeUnknown):
                raise
            # a 5xx may come after Gmail took the message: the next attempt searches before sending
            raise OutcomeUnknown(f"{exc}; it may have been sent", status=exc.status) from exc
        body = resp.json()
        return Sent(external_id=str(body["id"]), detail={"thread_id": body.get("threadId"),
                                                         "message_id": transform.message_id(message, self.options,
                                                                                            user)})

    def find_message(self, message: Message, kind: str) -> Sent | None:
        """The message an earlier attempt sent, found in the user's mailbox by our Message-ID."""
        msgid = transform.message_id(message, self.options, self._user())
        resp = self._call("GET", "/gmail/v1/users/me/messages", what="messages.list", cost=LIST_UNITS,
                          params={"q": transform.search_query(msgid), "includeSpamTrash": "true", "maxResults": 10})
        found = (resp.json() or {}).get("messages") or []
        if not found:
            return None
        return Sent(external_id=str(found[0]["id"]), detail={"thread_id": found[0].get("threadId"),
                                                             "message_id": msgid})


@register
class Drive(_Google):
    slug = "drive"
    capabilities = frozenset({"create_invoice", "find_invoice", "attach_pdf"})
    scopes = [transform.DRIVE_FILE]
    default_base = DRIVE_BASE

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        name = f"platforms.{name}"
        problems = _common_problems(options, name)
        share = options.get("share", "none")
        if share not in ("none", "anyone", "domain", None):
            problems.append(f"{name}.share: one of none, anyone, domain (got {share!r})")
        if share == "domain" and "." not in str(options.get("share_domain") or ""):
            problems.append(f"{name}.share_domain: the domain to share with is not set")
        if options.get("link_in_messages") and share in ("none", None):
            problems.append(f"{name}.link_in_messages: the customer cannot open an unshared file; set share")
        try:
            transform.file_name({"number": "INV-1", "tenant": "t", "customer": {"name": "c"}, "job": {"number": "1"},
                                 "issued_on": date(2026, 1, 1)}, options)
        except (KeyError, IndexError, ValueError) as exc:
            problems.append(f"{name}.name: the pattern does not fit ({type(exc).__name__}: {exc})")
        return problems

    def _generate_id(self) -> str:
        resp = self._call("GET", "/drive/v3/files/generateIds", what="files.generateIds",
                          params={"count": 1, "space": "drive", "type": "files"})
        return str(resp.json()["ids"][0])

    def _file_id(self, make: bool = True) -> str | None:
        """The id reserved for this delivery's file: kept on the delivery before the first upload, so
        every retry (and a second copy running at once) uploads under the same id."""
        reserve = getattr(self.ctx, "reserve", None)
        if reserve is None:  # outside the pipeline (adapter tests): a fresh id each call
            return self._generate_id() if make else None
        return reserve("drive_file_id", self._generate_id if make else None)

    def _get(self, file_id: str) -> dict | None:
        try:
            return self._call("GET", f"/drive/v3/files/{file_id}", what="files.get",
                              params={"fields": transform.FILE_FIELDS, "supportsAllDrives": "true"}).json()
        except Rejected as exc:
            if exc.status == 404:
                return None
            raise

    def _share(self, file: dict) -> bool:
        body = transform.permission(self.options)
        if body is None:
            return False
        # repeating it is harmless: Drive keeps one anyone (or domain) permission per role
        self._call("POST", f"/drive/v3/files/{file['id']}/permissions", what="permissions.create", json=body,
                   params={"supportsAllDrives": "true", "fields": "id,type,role"})
        return True

    def _created(self, file: dict, found: bool) -> Created:
        shared = self._share(file)
        return Created(external_id=str(file["id"]), url=file.get("webViewLink"),
                       detail={"name": file.get("name"), "folder": (file.get("parents") or [None])[0],
                               "md5": file.get("md5Checksum"), "shared": self.options.get("share") if shared else None,
                               "found_existing": found})

    def find_invoice(self, invoice: dict, key: str) -> Created | None:
        file_id = self._file_id(make=False)
        file = self._get(file_id) if file_id else None
        return self._created(file, True) if file else None

    def create_invoice(self, invoice: dict, key: str) -> Created:
        pdf = invoice.get("pdf")
        if not pdf or not pdf.get("data"):
            raise Rejected("drive: the invoice has no rendered PDF to file")
        file_id = self._file_id()
        body, ctype = transform.multipart(transform.file_metadata(invoice, self.options, file_id, key), pdf["data"])
        try:
            resp = self._call("POST", "/upload/drive/v3/files", what="files.create", data=body,
                              headers={"Content-Type": ctype},
                              params={"uploadType": "multipart", "supportsAllDrives": "true",
                                      "fields": transform.FILE_FIELDS})
        except Unavailable as exc:
            if exc.status != 409:
                raise
            file = self._get(file_id)  # an earlier attempt made it: the reserved id is taken by our file
            if file is None:
                raise
            return self._created(file, True)
        return self._created(resp.json(), False)
