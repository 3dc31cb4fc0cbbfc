"""Pure mapping for SMTP: our Message -> a MIME email (no I/O).

The Message-ID is ours, derived from the delivery key (`<key@domain>`), so every attempt of one
delivery carries the same id: a mail store or client that de-duplicates by Message-ID shows one copy
even where an unknown outcome made us send twice (SMTP has no way to ask whether a message went).
"""
from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from invoicer.errors import MappingMissing
from invoicer.providers.base import Message

DELIVERY_HEADER = "X-Invoicer-Delivery"


def domain_of(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "invoicer.local"


def message_id(key: str, domain: str) -> str:
    return f"<{key}@{domain}>"


def sender(options: dict) -> str:
    value = options.get("from")
    if not value or "@" not in parseaddr(str(value))[1]:
        raise MappingMissing("smtp: channel option `from` (the sender address) is not set")
    return str(value)


def to_mime(message: Message, options: dict, now: float | None = None) -> EmailMessage:
    """A multipart email: text, HTML alternative when there is one, the PDF attached when given."""
    mail = EmailMessage()
    mail["From"] = sender(options)
    mail["To"] = Address(addr_spec=message.to)
    if options.get("reply_to"):
        mail["Reply-To"] = str(options["reply_to"])
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(now, localtime=False)
    mail["Message-ID"] = message_id(message.key, options.get("message_id_domain") or domain_of(mail["From"]))
    mail[DELIVERY_HEADER] = message.key
    mail.set_content(message.text)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    if message.attachment:
        name, data = message.attachment
        mail.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return mail
