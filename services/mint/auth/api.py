"""auth's HTTP API under ``/api/v1/auth`` — sessions (register, login, refresh, logout, me) —
and the JWKS at the root (services.md §1). Mail flows, password change and recipient search live
in :mod:`mint.auth.api_account`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from mint.auth import store
from mint.auth.domain import UserStatus, password_problems
from mint.auth.passwords import dummy_verify, hash_password, needs_rehash, verify_password
from mint.auth.ratelimit import (
    LOGIN_PER_EMAIL,
    LOGIN_PER_IP,
    Counter,
    RateLimitedError,
    hashed,
    register_per_ip,
    too_many,
)
from mint.auth.schemas import AuthOut, LoginBody, RefreshBody, RegisterBody, UpdateMeBody, UserOut
from mint.auth.store import RefreshResult
from mint.auth.web import (
    AuthUser,
    auth_body,
    auth_settings,
    clear_session_cookies,
    keyring,
    limiter,
    presented_refresh,
    problems,
    security_event,
    set_session_cookies,
)
from mint.kit.errors import Problem, unauthorized
from mint.kit.security import client_ip
from mint.kit.service import Ctx

router = APIRouter(tags=["auth"])
jwks_router = APIRouter(tags=["auth"])

_UNAVAILABLE = (503, "dependency_unavailable: rate limiting (Redis) is down: fail closed")


def weak_password(reasons: list[str]) -> Problem:
    return Problem(422, "weak_password", "password " + "; ".join(reasons), reasons=reasons)


@router.post(
    "/register",
    status_code=201,
    response_model=AuthOut,
    responses=problems(
        (409, "email_taken"),
        (422, "validation_error"),
        (422, "weak_password: under 10 characters, one character class, or the email's name"),
        (429, "too_many_requests: MINT_REGISTER_RATE_PER_HOUR registrations per client IP"),
        _UNAVAILABLE,
    ),
)
def register(body: RegisterBody, ctx: Ctx, request: Request, response: Response) -> dict[str, Any]:
    # Every attempt that passes validation counts against the client IP (a 409 too: it would
    # otherwise be a free account-existence oracle).
    rule = register_per_ip(auth_settings(ctx).register_rate_per_hour)
    try:
        limiter(ctx).acquire([Counter(rule, client_ip(request, ctx.settings))])
    except RateLimitedError as limited:
        raise too_many(
            "too_many_requests", limited.retry_after, "too many registrations from this address"
        ) from None
    reasons = password_problems(body.password, body.email)
    if reasons:
        raise weak_password(reasons)
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


@router.post(
    "/login",
    response_model=AuthOut,
    responses=problems(
        (401, "invalid_credentials (same for an unknown email and a wrong password)"),
        (403, "account_frozen"),
        (422, "validation_error"),
        (429, "too_many_attempts: 5 failures per email or 50 per client IP in 15 min"),
        _UNAVAILABLE,
    ),
)
def login(body: LoginBody, ctx: Ctx, request: Request, response: Response) -> dict[str, Any]:
    # Brute-force protection comes first: while an email or an IP is limited even the right
    # password gets 429 (nothing is verified). The attempt is reserved atomically in both
    # counters and taken back only when the password was right. Redis down → 503 (see
    # mint.auth.ratelimit: the protection fails closed).
    ip = client_ip(request, ctx.settings)
    window = limiter(ctx)
    try:
        attempt = window.acquire(
            [Counter(LOGIN_PER_EMAIL, hashed(body.email)), Counter(LOGIN_PER_IP, ip)]
        )
    except RateLimitedError as limited:
        raise too_many(
            "too_many_attempts", limited.retry_after, "too many failed logins; try again later"
        ) from None
    db = ctx.database()
    with db.session() as session:
        user = store.get_user_by_email(session, body.email)
    if user is None:
        dummy_verify(body.password)
    if user is None or not verify_password(user.password_hash, body.password):
        with db.session() as session:
            security_event(session, request, ctx, "auth.login_failed", user.id if user else None)
        raise _invalid_credentials()
    window.release(attempt)  # the right password: not a failure (earlier failures stay)
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


@router.post(
    "/refresh",
    response_model=AuthOut,
    responses=problems(
        (401, "invalid_refresh_token"),
        (401, "refresh_token_reused: the whole session (family) is revoked"),
        (403, "account_frozen"),
        (403, "csrf_failed: cookie-presented token without X-CSRF-Token"),
    ),
)
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


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    responses=problems((403, "csrf_failed: cookie-presented token without X-CSRF-Token")),
)
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


@router.get("/me", response_model=UserOut, responses=problems((401, "unauthorized")))
def me(principal: AuthUser, ctx: Ctx) -> dict[str, Any]:
    with ctx.database().session() as session:
        user = store.get_user(session, principal.user_id)
        if user is None:
            raise unauthorized("unknown user")
        return store.user_json(user)


@router.patch(
    "/me",
    response_model=UserOut,
    responses=problems((401, "unauthorized"), (403, "csrf_failed"), (422, "validation_error")),
)
def update_me(body: UpdateMeBody, principal: AuthUser, ctx: Ctx) -> dict[str, Any]:
    with ctx.database().session() as session:
        user = store.get_user(session, principal.user_id, lock=True)
        if user is None:
            raise unauthorized("unknown user")
        if user.name != body.name:
            user.name = body.name
            session.flush()
        return store.user_json(user)


@jwks_router.get("/.well-known/jwks.json")
def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    response.headers["Cache-Control"] = "public, max-age=60"
    return keyring(ctx).jwks()
