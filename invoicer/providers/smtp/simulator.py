"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepts, for tests and the sandbox.

STARTTLS with a self-signed certificate made at start (`ca_file` trusts it), AUTH PLAIN/LOGIN
with one user, and faults in order, like the HTTP simulators (simulate.py):
  "421"    the DATA is refused with 421 (try later); nothing is kept
  "550"    the recipient is refused with 550 (no such user)
  "drop"   the message is kept, then the connection is closed before the 250 reply (outcome unknown)
Needs the `aiosmtpd` package (a test extra). Not for production.
"""
from __future__ import annotations

import datetime
import ipaddress
import secrets
import socket
import ssl
import tempfile
import threading
from collections import deque
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SmtpSimulator:
    """Start with `start()`; `messages` holds every accepted email (envelope + parsed MIME)."""

    def __init__(self, username: str = "invoicer", password: str | None = None):
        self.username, self.password = username, password or secrets.token_urlsafe(16)
        self.messages: list[dict] = []
        self.faults: deque[str] = deque()
        self.lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="smtp-sim-"))
        self.ca_file, key = _self_signed(self.folder)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(self.ca_file, key)
        self.controller: Controller | None = None
        self.port = 0

    def inject(self, *faults: str) -> None:
        self.faults.extend(faults)

    def _fault(self, *kinds: str) -> str | None:
        with self.lock:
            if self.faults and self.faults[0] in kinds:
                return self.faults.popleft()
        return None

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self._fault("550"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self._fault("421"):
            return "421 4.3.2 Service not available, try again later"
        mail = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "mail": mail,
                                  "tls": session.ssl is not None, "auth": session.authenticated})
        if self._fault("drop"):
            server.transport.close()
            return "250 OK (never seen: the connection is closed)"
        return f"250 2.0.0 Ok: queued as Q{len(self.messages):06d}"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False)

    def start(self) -> "SmtpSimulator":
        with socket.socket() as probe:  # aiosmtpd's controller needs a known port to check it is up
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=self.tls,
                                     require_starttls=True, authenticator=self._authenticate,
                                     auth_require_tls=True, auth_required=False)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()

    def channel(self, **extra) -> dict:
        """The channels.email entry for a tenants file pointing at this server."""
        return {"provider": "smtp", "host": "127.0.0.1", "port": self.port, "security": "starttls",
                "ca_file": str(self.ca_file), "from": "Acme Billing <billing@acme.example>",
                "username_env": "INVOICER_SANDBOX_SMTP_USER", "password_env": "INVOICER_SANDBOX_SMTP_PASSWORD",
                "timeout": 5, **extra}

    def env(self) -> dict[str, str]:
        return {"INVOICER_SANDBOX_SMTP_USER": self.username, "INVOICER_SANDBOX_SMTP_PASSWORD": self.password}
