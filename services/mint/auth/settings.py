"""auth's settings: the kit's plus signing keys, mail and registration rate."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from mint.auth.domain import has_control_chars
from mint.kit.config import KitSettings
from mint.kit.mail import parse_smtp_url


class Settings(KitSettings):
    service_name: str = "auth"
    #: Directory of ``<kid>.pem`` RSA keys (``MINT_SIGNING_KEYS_DIR``); dev: ``.mint/keys``.
    signing_keys_dir: Path = Path(".mint/keys")
    #: Registrations allowed per client IP per hour (``MINT_REGISTER_RATE_PER_HOUR``).
    register_rate_per_hour: int = Field(default=20, ge=1)
    #: Where verification and reset mails go (``MINT_SMTP_URL``, see ``mint.kit.mail``); empty:
    #: no mail server — mail-sending endpoints answer 503 (forgot: 202, failure logged).
    smtp_url: str = ""
    #: The ``From`` of auth's mails (``MINT_MAIL_FROM``).
    mail_from: str = "Mint <no-reply@mint.local>"
    #: Seconds an SMTP conversation may take (``MINT_SMTP_TIMEOUT_SECONDS``).
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("smtp_url")
    @classmethod
    def _valid_smtp_url(cls, value: str) -> str:
        if value.strip():
            parse_smtp_url(value)  # ValueError names the problem, never the password
        return value.strip()

    @field_validator("mail_from")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        if "@" not in value or has_control_chars(value):
            raise ValueError("must be an address like 'Mint <no-reply@example.com>'")
        return value
