"""SMTP email through smtplib: any mail server, STARTTLS (587), implicit TLS (465) or plain (tests).

Channel options (tenants file, `channels.email: {provider: smtp, ...}`):
  host              the mail server (required)
  port              default 587 (starttls), 465 (ssl), 25 (none)
  security          starttls (default) | ssl | none
  username_env      environment variable holding the login name (no login when unset)
  password_env      environment variable holding the password
  from              the sender, "Name <address>" (required)
  reply_to          optional Reply-To
  message_id_domain the domain of our Message-ID (default: the sender's domain)
  ca_file           a CA bundle to trust instead of the system's (a private relay; tests)
  timeout           seconds for connect and each reply (default 30)
  per_minute        optional cap on messages per minute through this server (all workers)
  at_least_once     true: after an unknown outcome, send again (same Message-ID); default false:
                    the delivery waits for a person (review), so no second copy goes out

Errors: refused connection, 4xx replies -> Unavailable (retried); 5xx (a recipient or message the
server refuses) -> Rejected; a refused login -> AuthFailed; a connection lost or timed out after the
message data was sent -> OutcomeUnknown. SMTP cannot be asked whether a message went, so the delivery
goes to review rather than risk a second copy, unless the tenant chose at_least_once (see
docs/notifications.md).
"""
from __future__ import annotations

import os
import smtplib
import socket
from email import policy
import ssl
from contextlib import nullcontext

from invoicer.errors import AuthFailed, OutcomeUnknown, Rejected, Unavailable
from invoicer.providers.base import Message, Provider, Sent
from invoicer.providers.ratelimit import Rate
from invoicer.providers.registry import register
from invoicer.providers.smtp import transform

SLUG = "smtp"
PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def _reply_error(code: int, text, what: str):
    reason = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    detail = f"smtp: {what} refused: {code} {reason[:200]}"
    if code in (530, 534, 535, 538):
        return AuthFailed(detail, status=code)
    return Unavailable(detail, status=code) if 400 <= code < 500 else Rejected(detail, status=code)


@register
class Smtp(Provider):
    slug = SLUG
    capabilities = frozenset({"send_email"})
    resend_after_unknown = False  # SMTP has no look-up: review, unless the channel says at_least_once

    def __init__(self, options: dict | None = None, ctx=None):
        super().__init__(options, ctx)
        self.resend_after_unknown = bool(self.options.get("at_least_once", False))

    @classmethod
    def check_options(cls, options: dict, name: str) -> list[str]:
        problems = []
        if not options.get("host"):
            problems.append(f"{name}.host: the mail server is not set")
        if not options.get("from") or "@" not in str(options.get("from")):
            problems.append(f"{name}.from: the sender address is not set")
        if options.get("security", "starttls") not in PORTS:
            problems.append(f"{name}.security: one of {', '.join(PORTS)}")
        return problems

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.options.get("ca_file") or None)

    def _connect(self) -> smtplib.SMTP:
        security = self.options.get("security", "starttls")
        host, port = self.options["host"], int(self.options.get("port") or PORTS[security])
        timeout = float(self.options.get("timeout", 30))
        try:
            if security == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
                if security == "starttls":
                    smtp.starttls(context=self._tls())
            user = os.environ.get(self.options.get("username_env") or "", "")
            if user:
                smtp.login(user, os.environ.get(self.options.get("password_env") or "", ""))
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthFailed(f"smtp: login refused ({exc.smtp_code})", status=exc.smtp_code) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise Rejected(f"smtp: the server does not offer {security.upper()} or AUTH") from exc
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, "connection") from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, unreachable, TLS failure: nothing was sent
            raise Unavailable(f"smtp: cannot reach the mail server: {type(exc).__name__}") from exc
        return smtp

    def _slot(self):
        per_minute = self.options.get("per_minute")
        if not per_minute:
            return nullcontext()
        return self.ctx.limiter.slot(f"{SLUG}:{self.options['host']}", [Rate(int(per_minute), 60)])

    def send_email(self, message: Message) -> Sent:
        mail = transform.to_mime(message, self.options)
        envelope_from = transform.parseaddr(mail["From"])[1]
        with self._slot():
            smtp = self._connect()
            try:
                code, text = smtp.mail(envelope_from, ["SMTPUTF8"] if not message.to.isascii() else [])
                if code != 250:
                    raise _reply_error(code, text, "sender")
                code, text = smtp.rcpt(message.to)
                if code not in (250, 251):
                    raise _reply_error(code, text, "recipient")
                try:
                    # CRLF line ends: smtplib sends bytes as they are, and a server reads lines by CRLF
                    code, text = smtp.data(mail.as_bytes(policy=policy.SMTP))
                except smtplib.SMTPDataError as exc:
                    raise _reply_error(exc.smtp_code, exc.smtp_error, "message") from exc
                except (smtplib.SMTPServerDisconnected, socket.timeout, OSError) as exc:
                    raise OutcomeUnknown(f"smtp: connection lost after the message was sent "
                                         f"({type(exc).__name__})") from exc
                if code != 250:  # smtplib returns the reply to the data, whatever it is
                    raise _reply_error(code, text, "message")
            except (smtplib.SMTPServerDisconnected, OSError) as exc:  # before the data: nothing was sent
                raise Unavailable(f"smtp: connection lost before the message ({type(exc).__name__})") from exc
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return Sent(external_id=mail["Message-ID"], detail={"message_id": mail["Message-ID"],
                                                           "smtp_reply": f"{code} {reply[:120]}"})
