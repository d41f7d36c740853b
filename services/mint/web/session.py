"""The browser session: the user's tokens in HttpOnly cookies, refreshed before they expire.

Cookies (SameSite=Lax, HttpOnly, Secure when the page is served over https): ``mint_access``
(the access token), ``mint_refresh`` (the refresh token, 30 days). A page that needs the user
refreshes the pair when the access token has less than ``refresh_margin_seconds`` left, so a
user active for any length of time is never thrown out.

auth rotates refresh tokens and revokes the whole session when one is presented twice
(services.md §1), so two requests of one browser must never both refresh with the same token:
:class:`Refresher` lets one of them refresh and hands the others the pair it got."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt

ACCESS_COOKIE: Final = "mint_access"
REFRESH_COOKIE: Final = "mint_refresh"
REFRESH_COOKIE_SECONDS: Final = 30 * 24 * 3600
#: How long a refreshed pair is handed to the other requests that presented the same token.
SHARED_PAIR_SECONDS: Final = 60.0


class SignInRequired(Exception):
    """No session, or one auth no longer accepts: the page sends the visitor to sign in."""


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str

    @classmethod
    def from_auth(cls, body: dict[str, Any]) -> Tokens:
        return cls(access=str(body["access_token"]), refresh=str(body["refresh_token"]))


def claims_of(access_token: str) -> dict[str, Any]:
    """The access token's claims, read without verifying it: the app uses them only to show
    who is signed in and to decide when to refresh; every API verifies the token itself."""
    try:
        claims: dict[str, Any] = jwt.decode(
            access_token, options={"verify_signature": False, "verify_exp": False}
        )
    except jwt.PyJWTError:
        return {}
    return claims


def seconds_left(access_token: str, now: float | None = None) -> float:
    """Seconds until the token expires (negative once expired; an unreadable token counts as
    long expired)."""
    exp = claims_of(access_token).get("exp")
    if not isinstance(exp, int | float):
        return float("-inf")
    return float(exp) - (time.time() if now is None else now)


def needs_refresh(
    access_token: str | None, margin_seconds: float, now: float | None = None
) -> bool:
    return access_token is None or seconds_left(access_token, now) < margin_seconds


class Refresher:
    """One refresh per refresh token, whatever the number of requests presenting it at once.

    ``rotate(refresh_token)`` calls auth (``refresh``) and returns the new pair; a request that
    presents a token another request is refreshing waits for it and gets the same new pair
    (for :data:`SHARED_PAIR_SECONDS`). Held in process memory: replicas of web need sticky
    sessions (or the pair shared through Redis) for the same guarantee."""

    def __init__(
        self, refresh: Callable[[str], Tokens], clock: Callable[[], float] = time.monotonic
    ):
        self._refresh = refresh
        self._clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._recent: dict[str, tuple[float, Tokens]] = {}

    def rotate(self, refresh_token: str) -> Tokens:
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        with self._guard:
            self._forget_old()
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                recent = self._recent.get(key)
            if recent is not None:
                return recent[1]
            try:
                pair = self._refresh(refresh_token)  # SignInRequired when auth refuses
            except BaseException:
                with self._guard:
                    self._locks.pop(key, None)
                raise
            with self._guard:
                self._recent[key] = (self._clock() + SHARED_PAIR_SECONDS, pair)
            return pair

    def _forget_old(self) -> None:
        now = self._clock()
        for key in [k for k, (until, _) in self._recent.items() if until < now]:
            del self._recent[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked():
                del self._locks[key]
