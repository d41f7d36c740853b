"""auth's HTTP API under ``/api/v1/auth`` and the JWKS at the root (services.md §1)."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from mint.auth import store
from mint.auth.domain import (
    ACCESS_TTL,
    EMAIL_MAX,
    NAME_MAX,
    PASSWORD_MAX,
    REFRESH_TTL,
    UserStatus,
    has_control_chars,
    is_valid_email,
    normalize_email,
    password_problems,
)
from mint.auth.keys import KeyRing, keyring_for
from mint.auth.models import User
from mint.auth.passwords import dummy_verify, hash_password, needs_rehash, verify_password
from mint.auth.settings import AuthSettings
from mint.auth.store import RefreshResult, TokenPair
from mint.auth.tokens import LocalVerifier
from mint.kit.config import KitSettings
from mint.kit.errors import Problem, unauthorized
from mint.kit.events import emit
from mint.kit.security import Principal, bearer_or_cookie, check_csrf, client_ip
from mint.kit.service import Ctx, ServiceContext

PREFIX = "/api/v1/auth"
ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"
AUDIT_TOPIC = "audit.events"

router = APIRouter(tags=["auth"])
jwks_router = APIRouter(tags=["auth"])


# ---- bodies ------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Strict):
    email: str = Field(max_length=EMAIL_MAX)
    password: str = Field(max_length=PASSWORD_MAX)
    name: str = Field(min_length=1, max_length=NAME_MAX)

    @field_validator("email", mode="before")
    @classmethod
    def _normalise_email(cls, value: Any) -> Any:
        return normalize_email(value) if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        if not is_valid_email(value):
            raise ValueError("not a valid email address")
        return value

    @field_validator("name", mode="before")
    @classmethod
    def _strip_name(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if has_control_chars(value):
            raise ValueError("must not contain control characters")
        return value


class LoginBody(_Strict):
    email: str = Field(min_length=1, max_length=EMAIL_MAX)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX)

    @field_validator("email", mode="before")
    @classmethod
    def _normalise_email(cls, value: Any) -> Any:
        return normalize_email(value) if isinstance(value, str) else value

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        if has_control_chars(value):
            raise ValueError("must not contain control characters")
        return value


class RefreshBody(_Strict):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=4096)


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


# ---- helpers -----------------------------------------------------------------------------------


def auth_settings(ctx: ServiceContext) -> AuthSettings:
    settings = ctx.settings
    if not isinstance(settings, AuthSettings):
        raise RuntimeError("auth needs AuthSettings (Service.settings_cls)")
    return settings


def keyring(ctx: ServiceContext) -> KeyRing:
    return keyring_for(auth_settings(ctx).signing_keys_dir)


def auth_body(user: User, pair: TokenPair) -> dict[str, Any]:
    return {
        "user": store.user_json(user),
        "access_token": pair.access.token,
        "refresh_token": pair.refresh.token,
        "token_type": "Bearer",
        "expires_in": int(ACCESS_TTL.total_seconds()),
    }


def set_session_cookies(response: Response, pair: TokenPair, settings: KitSettings) -> None:
    secure = not settings.is_dev
    refresh_age = int(REFRESH_TTL.total_seconds())
    response.set_cookie(
        ACCESS_COOKIE,
        pair.access.token,
        max_age=int(ACCESS_TTL.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh.token,
        max_age=refresh_age,
        path=PREFIX,
        secure=secure,
        httponly=True,
        samesite="lax",
    )
    # Double-submit CSRF token: readable by the web app, echoed as X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        max_age=refresh_age,
        path="/",
        secure=secure,
        httponly=False,
        samesite="lax",
    )


def clear_session_cookies(response: Response, settings: KitSettings) -> None:
    secure = not settings.is_dev
    for name, path, httponly in (
        (ACCESS_COOKIE, "/", True),
        (REFRESH_COOKIE, PREFIX, True),
        (CSRF_COOKIE, "/", False),
    ):
        response.delete_cookie(name, path=path, secure=secure, httponly=httponly, samesite="lax")


def security_event(
    session: Session, request: Request, ctx: ServiceContext, type: str, user_id: uuid.UUID | None
) -> None:
    """An audit security event (events.md): user, IP and user agent — never a secret."""
    subject = str(user_id) if user_id else "unknown"
    emit(
        session,
        topic=AUDIT_TOPIC,
        type=type,
        subject=subject,
        data={
            "user_id": str(user_id) if user_id else None,
            "ip": client_ip(request, ctx.settings),
            "user_agent": request.headers.get("user-agent", "")[:256],
        },
        key=subject,
        actor=str(user_id) if user_id else "anonymous",
        source=store.SOURCE,
    )


def presented_refresh(
    request: Request, body: RefreshBody | None, ctx: ServiceContext
) -> str | None:
    """The refresh token from the body, else from the cookie (then CSRF-checked)."""
    if body is not None and body.refresh_token:
        return body.refresh_token
    cookie = request.cookies.get(REFRESH_COOKIE)
    if cookie:
        check_csrf(request, ctx.settings)
    return cookie or None


def current_principal(request: Request) -> Principal:
    """The caller of auth's own endpoints, verified against auth's key directory (no JWKS fetch
    from itself); otherwise exactly the kit's rules (RS256, iss, aud, exp, type=access, CSRF)."""
    ctx: ServiceContext = request.app.state.ctx
    token, from_cookie = bearer_or_cookie(request)
    if token is None:
        raise unauthorized()
    claims = LocalVerifier.for_ring(keyring(ctx)).verify(token, "access")
    if from_cookie:
        check_csrf(request, ctx.settings)
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise unauthorized("invalid subject") from None
    return Principal(
        user_id=user_id,
        role=str(claims.get("role", "user")),
        email=str(claims.get("email", "")),
        email_verified=bool(claims.get("email_verified", False)),
        token=token,
    )


AuthUser = Annotated[Principal, Depends(current_principal)]


# ---- routes ------------------------------------------------------------------------------------


@router.post("/register", status_code=201, response_model=AuthOut)
def register(body: RegisterBody, ctx: Ctx, response: Response) -> dict[str, Any]:
    problems = password_problems(body.password, body.email)
    if problems:
        raise Problem(422, "weak_password", "password " + "; ".join(problems), reasons=problems)
    password_hash = hash_password(body.password)  # outside the transaction: it is slow
    with ctx.database().session() as session:
        user = store.create_user(
            session, email=body.email, name=body.name, password_hash=password_hash
        )
        if user is None:
            raise Problem(409, "email_taken", "an account with this email already exists")
        store.emit_auth_event(
            session,
            "auth.user_registered",
            user.id,
            {"user_id": str(user.id), "email": user.email, "name": user.name},
            actor=str(user.id),
        )
        pair = store.start_session(session, user, keyring(ctx))
        out = auth_body(user, pair)
    set_session_cookies(response, pair, ctx.settings)
    return out


def _invalid_credentials() -> Problem:
    return Problem(401, "invalid_credentials", "invalid email or password")


@router.post("/login", response_model=AuthOut)
def login(body: LoginBody, ctx: Ctx, request: Request, response: Response) -> dict[str, Any]:
    db = ctx.database()
    with db.session() as session:
        user = store.get_user_by_email(session, body.email)
    if user is None:
        dummy_verify(body.password)
    if user is None or not verify_password(user.password_hash, body.password):
        with db.session() as session:
            security_event(session, request, ctx, "auth.login_failed", user.id if user else None)
        raise _invalid_credentials()
    if user.status == UserStatus.FROZEN.value:
        raise Problem(403, "account_frozen", "this account is frozen")
    new_hash = hash_password(body.password) if needs_rehash(user.password_hash) else None
    with db.session() as session:
        current = store.get_user(session, user.id)
        if current is None or current.status != UserStatus.ACTIVE.value:
            raise Problem(403, "account_frozen", "this account is frozen")
        if new_hash is not None:
            current.password_hash = new_hash
        pair = store.start_session(session, current, keyring(ctx))
        security_event(session, request, ctx, "auth.login_succeeded", current.id)
        out = auth_body(current, pair)
    set_session_cookies(response, pair, ctx.settings)
    return out


@router.post("/refresh", response_model=AuthOut)
def refresh(
    ctx: Ctx,
    request: Request,
    response: Response,
    body: Annotated[RefreshBody | None, Body()] = None,
) -> dict[str, Any]:
    token = presented_refresh(request, body, ctx)
    if token is None:
        raise Problem(401, "invalid_refresh_token", "no refresh token presented")
    with ctx.database().session() as session:
        rotation = store.rotate(session, token, keyring(ctx))
        if rotation.result is RefreshResult.REUSED:
            security_event(session, request, ctx, "auth.refresh_reused", rotation.user_id)
        out = (
            auth_body(rotation.user, rotation.pair)
            if rotation.user is not None and rotation.pair is not None
            else None
        )
    # The reuse revocation is committed before answering.
    if rotation.result is RefreshResult.REUSED:
        raise Problem(401, "refresh_token_reused", "refresh token already used; session revoked")
    if rotation.result is RefreshResult.FROZEN:
        raise Problem(403, "account_frozen", "this account is frozen")
    if out is None or rotation.pair is None:
        raise Problem(401, "invalid_refresh_token", "refresh token is invalid or expired")
    set_session_cookies(response, rotation.pair, ctx.settings)
    return out


@router.post("/logout", status_code=204, response_class=Response)
def logout(
    ctx: Ctx, request: Request, body: Annotated[RefreshBody | None, Body()] = None
) -> Response:
    token = presented_refresh(request, body, ctx)
    if token is not None:
        with ctx.database().session() as session:
            store.revoke_family_of(session, token, "logout")
    response = Response(status_code=204)
    clear_session_cookies(response, ctx.settings)
    return response


@router.get("/me", response_model=UserOut)
def me(principal: AuthUser, ctx: Ctx) -> dict[str, Any]:
    with ctx.database().session() as session:
        user = store.get_user(session, principal.user_id)
        if user is None:
            raise unauthorized("unknown user")
        return store.user_json(user)


@jwks_router.get("/.well-known/jwks.json")
def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=60"
    return keyring(ctx).jwks()
