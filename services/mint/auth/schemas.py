"""auth's HTTP API: request bodies (strict: unknown fields are refused) and responses (built
from the ORM row or the use case's result with ``model_validate``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from mint.auth.domain import (
    EMAIL_MAX,
    MAIL_TOKEN_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    is_valid_email,
    normalize_email,
)
from mint.kit.schemas import Body, Schema
from mint.kit.text import no_control_chars
from mint.kit.time import Instant


def _normalise_email(value: Any) -> Any:
    return normalize_email(value) if isinstance(value, str) else value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _valid_email(value: str) -> str:
    if not is_valid_email(value):
        raise ValueError("not a valid email address")
    return value


#: An email as typed (trimmed, lower-cased); login and forgot accept any such string.
AnyEmail = Annotated[
    str,
    BeforeValidator(_normalise_email),
    Field(min_length=1, max_length=EMAIL_MAX),
    AfterValidator(no_control_chars),
]
#: A display name: trimmed, 1..100 characters, no control characters.
Name = Annotated[
    str,
    BeforeValidator(_strip),
    Field(min_length=1, max_length=NAME_MAX),
    AfterValidator(no_control_chars),
]


class RegisterBody(Body):
    email: Annotated[AnyEmail, AfterValidator(_valid_email)]
    password: str = Field(max_length=PASSWORD_MAX)
    name: Name


class LoginBody(Body):
    email: AnyEmail
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class RefreshBody(Body):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=4096)


class UpdateMeBody(Body):
    name: Name


class ChangePasswordBody(Body):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_password: str = Field(max_length=PASSWORD_MAX)


class TokenBody(Body):
    token: str = Field(min_length=1, max_length=MAIL_TOKEN_MAX)


class ForgotBody(Body):
    email: AnyEmail


class ResetBody(Body):
    token: str = Field(min_length=1, max_length=MAIL_TOKEN_MAX)
    new_password: str = Field(max_length=PASSWORD_MAX)


# ---- responses ---------------------------------------------------------------------------------


class UserOut(Schema):
    """The user object (services.md §1)."""

    id: uuid.UUID
    email: str
    name: str
    role: str
    email_verified: bool
    status: str
    created_at: Instant


class AuthOut(Schema):
    """A started or refreshed session (built from ``actions.SignedIn``)."""

    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class RecipientOut(Schema):
    id: uuid.UUID
    email: str
    name: str


class RecipientsOut(Schema):
    items: list[RecipientOut]
