"""CSRF protection of every form: a double-submitted token. The browser holds it in an
HttpOnly cookie and every rendered form (and every htmx request, as ``X-CSRF-Token``) carries
it back; a state-changing request whose token does not match the cookie, or that comes from
another origin, is refused. Pure functions; the page layer reads the cookie and the form."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

COOKIE: Final = "mint_csrf"
FIELD: Final = "csrf_token"
HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_MIN_LENGTH: Final = 32


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(cookie: str | None, submitted: str | None) -> bool:
    """The submitted token equals the cookie's (compared in constant time); a missing or
    too-short token never matches."""
    if not cookie or not submitted or len(cookie) < _MIN_LENGTH:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(origin: str | None, allowed: Iterable[str]) -> bool:
    """A request's ``Origin`` (or ``Referer``) names one of ``allowed`` origins. Browsers send
    one on every cross-site form POST; its absence is accepted (the token still decides)."""
    if not origin:
        return True
    return origin_of(origin) in {origin_of(url) for url in allowed}


def request_is_allowed(
    method: str,
    cookie: str | None,
    submitted: str | None,
    origin: str | None,
    allowed_origins: Iterable[str],
) -> bool:
    if method.upper() in SAFE_METHODS:
        return True
    return same_origin(origin, allowed_origins) and tokens_match(cookie, submitted)
