"""Request and response bodies of auth's HTTP API (strict: unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from mint.auth.domain import (
    EMAIL_MAX,
    MAIL_TOKEN_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    is_valid_email,
    normalize_email,
)
from mint.kit.text import no_control_chars


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class RegisterBody(_Strict):
    email: Annotated[AnyEmail, AfterValidator(_valid_email)]
    password: str = Field(max_length=PASSWORD_MAX)
    name: Name


class LoginBody(_Strict):
    email: AnyEmail
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)


class RefreshBody(_Strict):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=4096)


class UpdateMeBody(_Strict):
    name: Name


class ChangePasswordBody(_Strict):
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX)
    new_password: str = Field(max_length=PASSWORD_MAX)


class TokenBody(_Strict):
    token: str = Field(min_length=1, max_length=MAIL_TOKEN_MAX)


class ForgotBody(_Strict):
    email: AnyEmail


class ResetBody(_Strict):
    token: str = Field(min_length=1, max_length=MAIL_TOKEN_MAX)
    new_password: str = Field(max_length=PASSWORD_MAX)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: str
    email_verified: bool
    status: str
    created_at: str


class AuthOut(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class RecipientOut(BaseModel):
    id: str
    email: str
    name: str


class RecipientsOut(BaseModel):
    items: list[RecipientOut]
