"""Sending mail: one RFC 5322 message over SMTP to the server named by a ``MINT_SMTP_URL``.

URL forms (user and password optional, percent-encoded):

- ``smtp://[user:pass@]host[:port]`` — plain SMTP (port 25 by default); add ``?starttls=true``
  (or use the scheme ``smtp+starttls://``, port 587 by default) to upgrade with STARTTLS before
  authenticating — required whenever a password is sent to a non-loopback host;
- ``smtps://[user:pass@]host[:port]`` — implicit TLS (port 465 by default).

Sending is synchronous and either succeeds or raises :class:`MailError` — callers decide what a
failure means (answer 503, retry later, log it), so a mail is never lost silently. Used by auth
(verification and reset links) and notifications. Secrets (the password, links in bodies) are
never logged here.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from ipaddress import ip_address
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

log = structlog.get_logger("mint.kit.mail")

DEFAULT_TIMEOUT = 10.0
_DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
_TRUE = {"1", "true", "yes", "on"}


class MailError(Exception):
    """The message could not be handed to the SMTP server (nothing was accepted)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str = "plain"  # plain | starttls | tls
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


def parse_smtp_url(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> SmtpConfig:
    """Parse a ``MINT_SMTP_URL``; raises ``ValueError`` naming what is wrong (never echoing the
    password)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    if scheme == "smtps":
        security = "tls"
    elif scheme == "smtp+starttls":
        security = "starttls"
    elif scheme == "smtp":
        security = "starttls" if query.get("starttls", "") in _TRUE else "plain"
    else:
        raise ValueError("SMTP URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[security]
    except ValueError as exc:
        raise ValueError("SMTP URL has an invalid port") from exc
    config = SmtpConfig(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        timeout=timeout,
    )
    if config.password and config.security == "plain" and not config.is_loopback:
        raise ValueError("SMTP URL sends a password in clear text: use smtps:// or ?starttls=true")
    return config


def _check_header(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise ValueError(f"mail header {name} must not contain line breaks or NUL")
    return value


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """An RFC 5322 message (UTF-8, ``Date`` and ``Message-ID`` set) with a text body and an
    optional HTML alternative. Header values with line breaks are refused (no injection)."""
    message = EmailMessage()
    message["From"] = _check_header("From", sender)
    message["To"] = _check_header("To", to)
    message["Subject"] = _check_header("Subject", subject)
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "mint.local"
    message["Message-ID"] = make_msgid(domain=domain)
    for name, value in (headers or {}).items():
        message[_check_header("header name", name)] = _check_header(name, value)
    message.set_content(text, cte=_transfer_encoding(text))
    if html is not None:
        message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
    return message


def _transfer_encoding(body: str) -> str | None:
    """``7bit`` for plain-ASCII bodies, so links stay readable and clickable in the raw
    message (quoted-printable would split them and turn ``=`` into ``=3D``); otherwise the
    library's choice."""
    if body.isascii() and all(len(line) <= 998 for line in body.splitlines()):
        return "7bit"
    return None


def send_message(
    config: SmtpConfig, message: EmailMessage, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Hand ``message`` to the SMTP server; raise :class:`MailError` unless it was accepted
    for every recipient. ``ssl_context`` defaults to the system's verified context."""
    context = ssl_context or ssl.create_default_context()
    try:
        if config.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with client:
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if config.username:
                client.login(config.username, config.password)
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        log.warning(
            "mail_send_failed",
            host=config.host,
            port=config.port,
            error=type(exc).__name__,
        )
        raise MailError(f"SMTP delivery to {config.host}:{config.port} failed") from exc
    if refused:
        log.warning("mail_recipients_refused", count=len(refused))
        raise MailError("the SMTP server refused a recipient")


class Mailer:
    """A sender address and an SMTP server: ``Mailer.from_url(url, sender).send(...)``."""

    def __init__(
        self, config: SmtpConfig, sender: str, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.config = config
        self.sender = sender
        self.ssl_context = ssl_context

    @classmethod
    def from_url(cls, url: str, sender: str, *, timeout: float = DEFAULT_TIMEOUT) -> Mailer:
        return cls(parse_smtp_url(url, timeout=timeout), sender)

    def send(
        self,
        to: str,
        subject: str,
        text: str,
        *,
        html: str | None = None,
        to_name: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        recipient = formataddr((to_name, to)) if to_name else to
        message = build_message(
            sender=self.sender,
            to=recipient,
            subject=subject,
            text=text,
            html=html,
            headers=headers,
        )
        send_message(self.config, message, ssl_context=self.ssl_context)
