"""What auth's HTTP routes share: settings and keys, the caller, session cookies, audit security
events, rate limiting and the documented problem responses."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from mint.auth import store
from mint.auth.domain import ACCESS_TTL, REFRESH_TTL
from mint.auth.keys import KeyRing, keyring_for
from mint.auth.models import User
from mint.auth.ratelimit import SlidingWindow
from mint.auth.schemas import RefreshBody
from mint.auth.settings import AuthSettings
from mint.auth.store import TokenPair
from mint.auth.tokens import LocalVerifier
from mint.kit.config import KitSettings
from mint.kit.errors import unauthorized
from mint.kit.events import emit
from mint.kit.security import AuthSchemes, Principal, bearer_or_cookie, check_csrf, client_ip
from mint.kit.service import ServiceContext

PREFIX = "/api/v1/auth"
ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"
AUDIT_TOPIC = "audit.events"


def auth_settings(ctx: ServiceContext) -> AuthSettings:
    return ctx.settings_as(AuthSettings)


def keyring(ctx: ServiceContext) -> KeyRing:
    return keyring_for(auth_settings(ctx).signing_keys_dir)


def limiter(ctx: ServiceContext) -> SlidingWindow:
    """One limiter per service context (it holds the registered Lua script)."""
    return ctx.shared("auth.limiter", lambda: SlidingWindow(ctx.redis))


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
    for name, value, max_age, path, httponly in (
        (ACCESS_COOKIE, pair.access.token, int(ACCESS_TTL.total_seconds()), "/", True),
        (REFRESH_COOKIE, pair.refresh.token, refresh_age, PREFIX, True),
        # Double-submit CSRF token: readable by the web app, echoed as X-CSRF-Token.
        (CSRF_COOKIE, secrets.token_urlsafe(32), refresh_age, "/", False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=secure,
            httponly=httponly,
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


@dataclass(frozen=True)
class Caller(Principal):
    """The kit's principal plus the session (refresh family) its access token belongs to."""

    sid: uuid.UUID | None = None


def current_principal(request: Request, _: AuthSchemes) -> Caller:
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
        sid = uuid.UUID(str(claims["sid"])) if claims.get("sid") else None
    except ValueError:
        raise unauthorized("invalid subject") from None
    return Caller(
        user_id=user_id,
        role=str(claims.get("role", "user")),
        email=str(claims.get("email", "")),
        email_verified=bool(claims.get("email_verified", False)),
        token=token,
        sid=sid,
    )


AuthUser = Annotated[Caller, Depends(current_principal)]


def problems(*entries: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json answers: ``(status, "code: meaning")``."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, text in entries:
        entry = out.setdefault(
            status, {"description": "", "content": {"application/problem+json": {}}}
        )
        entry["description"] = (entry["description"] + "; " if entry["description"] else "") + (
            text
        )
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds until the window frees",
                    "schema": {"type": "integer"},
                }
            }
    return out
