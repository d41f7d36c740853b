"""auth's mails: the email-verification and password-reset links (``MINT_PUBLIC_URL``-based).

The token is in the link only: not in logs, events or audit data. The bodies are plain ASCII
(the name goes into the ``To`` header only), so they travel as 7bit and the link stays intact
and clickable even in the raw ``.eml`` the dev sink writes. Sending raises
:class:`~mint.kit.mail.MailError` (also when no mail server is configured); the caller decides
what a failure means.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from mint.auth.domain import PASSWORD_RESET_TTL, VERIFY_EMAIL_TTL
from mint.auth.settings import Settings
from mint.kit.mail import Mailer, MailError

VERIFY_PATH = "/verify-email"
RESET_PATH = "/reset-password"


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}{path}?token={quote(token, safe='')}"


def _html(intro: str, url: str, action: str, outro: str) -> str:
    safe = html.escape(url, quote=True)
    return (
        f"<p>{html.escape(intro)}</p>"
        f'<p><a href="{safe}">{html.escape(action)}</a></p>'
        f"<p>{html.escape(outro)}</p>"
    )


class AccountMail:
    """auth's two mails, over ``MINT_SMTP_URL`` from ``MINT_MAIL_FROM``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mailer = (
            Mailer.from_url(
                settings.smtp_url, settings.mail_from, timeout=settings.smtp_timeout_seconds
            )
            if settings.smtp_url
            else None
        )

    @property
    def mailer(self) -> Mailer:
        if self._mailer is None:
            raise MailError("no mail server configured (MINT_SMTP_URL)")
        return self._mailer

    def send_verification(self, to: str, name: str, token: str) -> None:
        url = link(self.settings, VERIFY_PATH, token)
        hours = int(VERIFY_EMAIL_TTL.total_seconds() // 3600)
        intro = "Hello, please confirm that this is your email address for Mint."
        outro = f"The link is valid for {hours} hours. If you did not sign up, ignore this mail."
        self.mailer.send(
            to,
            "Confirm your email address",
            f"{intro}\n\n{url}\n\n{outro}\n",
            html=_html(intro, url, "Confirm my email address", outro),
            to_name=name,
        )

    def send_password_reset(self, to: str, name: str, token: str) -> None:
        url = link(self.settings, RESET_PATH, token)
        minutes = int(PASSWORD_RESET_TTL.total_seconds() // 60)
        intro = "Hello, someone asked to reset the password of your Mint account."
        outro = (
            f"The link is valid for {minutes} minutes and works once. If it was not you, ignore "
            "this mail: your password stays as it is."
        )
        self.mailer.send(
            to,
            "Reset your Mint password",
            f"{intro}\n\n{url}\n\n{outro}\n",
            html=_html(intro, url, "Choose a new password", outro),
            to_name=name,
        )
