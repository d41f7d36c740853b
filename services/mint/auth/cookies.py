"""The browser session over HTTP: the cookies auth sets at sign-in and clears at logout, and
the refresh token a request presents (body first, else the cookie — then CSRF-checked)."""

from __future__ import annotations

import secrets

from fastapi import Request, Response

from mint.auth.domain import ACCESS_TTL, REFRESH_TTL
from mint.auth.schemas import RefreshBody
from mint.auth.tokens import TokenPair
from mint.kit.config import KitSettings
from mint.kit.security import check_csrf

#: The refresh cookie is sent to auth's API only (``SERVICE.prefix``).
REFRESH_PATH = "/api/v1/auth"
ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"


def set_session_cookies(response: Response, tokens: TokenPair, settings: KitSettings) -> None:
    secure = not settings.is_dev
    refresh_age = int(REFRESH_TTL.total_seconds())
    for name, value, max_age, path, httponly in (
        (ACCESS_COOKIE, tokens.access.token, int(ACCESS_TTL.total_seconds()), "/", True),
        (REFRESH_COOKIE, tokens.refresh.token, refresh_age, REFRESH_PATH, True),
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
        (REFRESH_COOKIE, REFRESH_PATH, True),
        (CSRF_COOKIE, "/", False),
    ):
        response.delete_cookie(name, path=path, secure=secure, httponly=httponly, samesite="lax")


def presented_refresh(
    request: Request, body: RefreshBody | None, settings: KitSettings
) -> str | None:
    """The refresh token from the body, else from the cookie (then CSRF-checked)."""
    if body is not None and body.refresh_token:
        return body.refresh_token
    cookie = request.cookies.get(REFRESH_COOKIE)
    if cookie:
        check_csrf(request, settings)
    return cookie or None


def refresh_cookie(request: Request) -> str | None:
    """The refresh cookie as sent (it names the caller's session; not a credential here)."""
    return request.cookies.get(REFRESH_COOKIE) or None
