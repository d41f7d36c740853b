"""Pure identity rules (no I/O): email normalisation, the password policy, new accounts, token
claims, the admin's search and freeze inputs. Refusals are the kit's domain errors with auth's
stable codes (``weak_password``, ``invalid_user_id``, ``invalid_role``, …)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from mint.kit import pagination
from mint.kit.catalog import JWT_AUDIENCE, JWT_ISSUER
from mint.kit.domain import Invalid
from mint.kit.text import has_control_chars as has_control_chars  # names and reasons

ISSUER = JWT_ISSUER
AUDIENCE = JWT_AUDIENCE
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
#: Security events keep at most this much of the client's User-Agent.
USER_AGENT_MAX = 256
#: A freeze reason (gRPC ``Freeze``): 1..500 characters after trimming, no control characters.
REASON_MAX = 500
#: Admin user search (gRPC ``SearchUsers``): page sizes and the longest query looked at.
DEFAULT_PAGE = 20
MAX_PAGE = 100
QUERY_MAX = 254
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


def check_new_password(password: str, email: str) -> None:
    """``weak_password`` (with the ``reasons``) unless ``password`` may protect ``email``."""
    reasons = password_problems(password, email)
    if len(password) > PASSWORD_MAX:
        reasons.append(f"must be at most {PASSWORD_MAX} characters")
    if reasons:
        raise Invalid("weak_password", "password " + "; ".join(reasons), reasons=reasons)


@dataclass(frozen=True)
class NewAccount:
    """The checked input of an account made outside the HTTP API (``mint admin create``)."""

    email: str  # normalised
    name: str  # trimmed
    password: str


def new_account(email: str, name: str, password: str) -> NewAccount:
    """Normalise and check an account's email, name and password (``invalid_email``,
    ``invalid_name``, ``weak_password``)."""
    email, name = normalize_email(email), name.strip()
    if not is_valid_email(email):
        raise Invalid("invalid_email", "not a valid email address")
    if not 1 <= len(name) <= NAME_MAX or has_control_chars(name):
        raise Invalid("invalid_name", f"name must be 1..{NAME_MAX} characters")
    check_new_password(password, email)
    return NewAccount(email, name, password)


@dataclass(frozen=True)
class ClientInfo:
    """Who sent a request, as security events record it (never a secret)."""

    ip: str
    user_agent: str = ""


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


# ---- administration (gRPC) ---------------------------------------------------------------------


def parse_user_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except (ValueError, TypeError, AttributeError):
        raise Invalid("invalid_user_id", "user_id must be a UUID") from None


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise Invalid("invalid_role", "role must be user or admin") from None


def freeze_reason(raw: str) -> str:
    """The trimmed reason of a freeze (it goes into ``auth.user_frozen``)."""
    reason = raw.strip()
    if not reason or len(reason) > REASON_MAX or has_control_chars(reason):
        raise Invalid("invalid_reason", f"reason must be 1..{REASON_MAX} characters")
    return reason


@dataclass(frozen=True)
class UserFilter:
    """An admin search: ``query`` is an email prefix or a name substring ("" = any)."""

    query: str = ""
    status: UserStatus | None = None
    role: Role | None = None
    limit: int = DEFAULT_PAGE


def user_filter(query: str, status: str, role: str, page_size: int) -> UserFilter:
    """Check an admin search's inputs ("" or 0 = not given), in this order."""
    if status and status not in {s.value for s in UserStatus}:
        raise Invalid("invalid_status", "status must be ACTIVE or FROZEN")
    if role and role not in {r.value for r in Role}:
        raise Invalid("invalid_role", "role must be user or admin")
    if page_size < 0 or page_size > MAX_PAGE:
        raise Invalid("invalid_page_size", f"page_size must be 0..{MAX_PAGE}")
    return UserFilter(
        query=query[:QUERY_MAX].replace("\x00", "").strip().lower(),
        status=UserStatus(status) if status else None,
        role=Role(role) if role else None,
        limit=page_size or DEFAULT_PAGE,
    )


def encode_cursor(created_at: datetime, user_id: UUID) -> str:
    return pagination.encode_cursor(created_at, user_id)


def decode_cursor(page_token: str) -> tuple[datetime, UUID]:
    """Inverse of :func:`encode_cursor`; ``invalid_page_token`` for anything else."""
    try:
        return pagination.decode_cursor(page_token, UUID)
    except pagination.InvalidCursor:
        raise Invalid("invalid_page_token", "page_token is not valid") from None
