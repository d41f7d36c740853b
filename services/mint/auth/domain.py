"""Pure identity rules: email normalisation, the password policy, token claims. No I/O."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from mint.kit.text import has_control_chars as has_control_chars  # names and reasons

ISSUER = "mint-auth"
AUDIENCE = "mint-services"
ALGORITHM = "RS256"
ACCESS_TTL = timedelta(seconds=900)
REFRESH_TTL = timedelta(days=30)
#: Lifetimes of the single-use tokens sent by mail (services.md §1).
VERIFY_EMAIL_TTL = timedelta(hours=24)
PASSWORD_RESET_TTL = timedelta(minutes=30)
#: ``secrets.token_urlsafe(32)``: 43 base64url characters; anything much longer is not ours.
MAIL_TOKEN_MAX = 128
#: Recipient search (``GET /users/search``): prefix length and result cap.
SEARCH_MIN_CHARS = 3
SEARCH_MAX_RESULTS = 10

EMAIL_MAX = 254
NAME_MAX = 100
PASSWORD_MIN = 10
PASSWORD_MAX = 128
#: Local parts shorter than this are not searched for in passwords ("a@x.io" would otherwise
#: forbid every password containing an "a").
LOCAL_PART_MIN_CHECK = 3

# The WHATWG (HTML ``input type=email``) syntax, ASCII only, with at least one dot in the domain.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_EMAIL_RE = re.compile(rf"^[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class MailTokenPurpose(StrEnum):
    """What a token sent by mail allows, once."""

    VERIFY_EMAIL = "verify_email"
    PASSWORD_RESET = "password_reset"


MAIL_TOKEN_TTL = {
    MailTokenPurpose.VERIFY_EMAIL: VERIFY_EMAIL_TTL,
    MailTokenPurpose.PASSWORD_RESET: PASSWORD_RESET_TTL,
}


def new_mail_token() -> str:
    """A random, URL-safe (base64url) token of 256 bits."""
    return secrets.token_urlsafe(32)


def normalize_email(raw: str) -> str:
    """Trimmed and lower-cased (the whole address: Mint treats emails case-insensitively)."""
    return raw.strip().lower()


def is_valid_email(email: str) -> bool:
    """A deliberately simple syntactic check on a normalised address (no DNS)."""
    if len(email) > EMAIL_MAX or ".." in email:
        return False
    local = email.split("@", 1)[0]
    if local.startswith(".") or local.endswith("."):
        return False
    return bool(_EMAIL_RE.match(email))


def _char_class(ch: str) -> str:
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        return "upper" if ch.isupper() else "lower"
    return "other"


def password_problems(password: str, email: str) -> list[str]:
    """Why ``password`` is too weak for the account ``email`` (empty list: acceptable).

    Rules (services.md §1): at least 10 characters; not all of one character class (lower,
    upper, digit, other); must not contain the email's local part (case-insensitive).
    """
    problems: list[str] = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"must be at least {PASSWORD_MIN} characters")
    if password and len({_char_class(c) for c in password}) == 1:
        problems.append("must mix character classes (lower, upper, digits, symbols)")
    local = normalize_email(email).split("@", 1)[0]
    if len(local) >= LOCAL_PART_MIN_CHECK and local in password.lower():
        problems.append("must not contain the email address")
    return problems


@dataclass(frozen=True)
class TokenSubject:
    """What goes into a token about its user."""

    user_id: UUID
    role: str
    email: str
    email_verified: bool


def build_claims(
    subject: TokenSubject,
    token_type: TokenType,
    *,
    now: datetime,
    jti: str,
    sid: UUID | None = None,
) -> dict[str, Any]:
    """The JWT claims of conventions.md for an access or refresh token issued at ``now``.
    ``sid`` (when given) is the refresh family — the session — the token belongs to, so a
    password change can keep the caller's session and end the others."""
    ttl = ACCESS_TTL if token_type is TokenType.ACCESS else REFRESH_TTL
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "sub": str(subject.user_id),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + int(ttl.total_seconds()),
        "jti": jti,
        "type": token_type.value,
        "role": subject.role,
        "email": subject.email,
        "email_verified": subject.email_verified,
    }
    if sid is not None:
        claims["sid"] = str(sid)
    return claims


def search_prefix(raw: str) -> str | None:
    """The normalised email prefix of a recipient search, or ``None`` when it is too short
    (fewer than :data:`SEARCH_MIN_CHARS` characters after trimming) or too long."""
    prefix = raw.strip().lower()
    if len(prefix) < SEARCH_MIN_CHARS or len(prefix) > EMAIL_MAX or has_control_chars(prefix):
        return None
    return prefix


def token_hash(token: str) -> str:
    """How refresh and mail tokens are stored: hex SHA-256 (the token itself never is)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def rfc3339(value: datetime) -> str:
    """UTC RFC 3339 with a ``Z`` suffix."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
