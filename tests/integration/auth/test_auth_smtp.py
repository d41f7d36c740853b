"""The shared mail helper (``mint.kit.mail``) against real SMTP servers (aiosmtpd): AUTH over
plain loopback SMTP, STARTTLS and implicit TLS with a certificate made here, refused
recipients and unreachable servers — each failure is a ``MailError``, never silence."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mint.kit.mail import Mailer, MailError, parse_smtp_url

USER, SECRET = "mint", "s3cret-pass"


@dataclass
class Inbox:
    messages: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            SECRET.encode(),
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
def serve() -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(inbox: Inbox, **kwargs: Any) -> int:
        port = free_port()
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, **kwargs
        )
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


def test_plain_smtp_with_auth_on_loopback(serve: Any) -> None:
    inbox = Inbox()
    port = serve(inbox, auth_require_tls=False)
    mailer = Mailer.from_url(f"smtp://{USER}:{SECRET}@127.0.0.1:{port}", "Mint <no-reply@m.test>")
    mailer.send("bob@example.com", "Hello", "Body text\n", html="<p>Body</p>", to_name="Bob")
    (message,) = inbox.messages
    assert message["To"] == "Bob <bob@example.com>" and message["Subject"] == "Hello"
    assert message.get_body(preferencelist=("plain",)).get_content().strip() == "Body text"
    assert inbox.logins
    # aiosmtpd stalls after a failed AUTH; the client's timeout ends it — still a MailError.
    wrong = Mailer.from_url(f"smtp://{USER}:nope@127.0.0.1:{port}", "no-reply@m.test", timeout=1)
    with pytest.raises(MailError):
        wrong.send("bob@example.com", "Hello", "x")


def test_starttls(serve: Any, certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    port = serve(inbox, tls_context=server_tls(certificate), require_starttls=True)
    url = f"smtp://{USER}:{SECRET}@127.0.0.1:{port}?starttls=true"
    config = parse_smtp_url(url)
    Mailer(config, "no-reply@m.test", ssl_context=client_tls(certificate)).send(
        "carol@example.com", "Over STARTTLS", "x"
    )
    assert [m["Subject"] for m in inbox.messages] == ["Over STARTTLS"] and inbox.logins
    # Without trusting the certificate nothing is sent (and nothing silently downgraded).
    with pytest.raises(MailError):
        Mailer(config, "no-reply@m.test").send("carol@example.com", "Untrusted", "x")
    plain = parse_smtp_url(f"smtp://127.0.0.1:{port}")
    with pytest.raises(MailError):  # the server insists on STARTTLS
        Mailer(plain, "no-reply@m.test").send("carol@example.com", "Plain", "x")
    assert len(inbox.messages) == 1


def test_implicit_tls(serve: Any, certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    # aiosmtpd does not count implicit TLS as TLS for its AUTH rule; the socket is TLS anyway.
    port = serve(inbox, ssl_context=server_tls(certificate), auth_require_tls=False)
    config = parse_smtp_url(f"smtps://{USER}:{SECRET}@127.0.0.1:{port}")
    Mailer(config, "no-reply@m.test", ssl_context=client_tls(certificate)).send(
        "dave@example.com", "Over TLS", "x"
    )
    assert [m["Subject"] for m in inbox.messages] == ["Over TLS"] and inbox.logins


def test_refused_recipient_and_unreachable_server(serve: Any) -> None:
    inbox = Inbox()
    port = serve(inbox, auth_require_tls=False)
    with pytest.raises(MailError):
        Mailer.from_url(f"smtp://127.0.0.1:{port}", "no-reply@m.test").send("nobody@x.io", "s", "x")
    with pytest.raises(MailError):
        Mailer.from_url(f"smtp://127.0.0.1:{free_port()}", "no-reply@m.test").send(
            "bob@x.io", "s", "x"
        )
    assert inbox.messages == []
