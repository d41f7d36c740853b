"""The web session's token handling: when to refresh, and one refresh per refresh token however
many requests present it at once (auth revokes a session whose refresh token is reused)."""

from __future__ import annotations

import threading
import time

import jwt
import pytest

from mint.web.session import Refresher, SignInRequired, Tokens, needs_refresh, seconds_left


def token(exp: float) -> str:
    return jwt.encode({"sub": "u", "exp": int(exp)}, "k" * 32, algorithm="HS256")


def test_needs_refresh_within_the_margin_or_when_unreadable() -> None:
    now = time.time()
    assert not needs_refresh(token(now + 600), margin_seconds=120, now=now)
    assert needs_refresh(token(now + 60), margin_seconds=120, now=now)
    assert needs_refresh(token(now - 5), margin_seconds=120, now=now)
    assert needs_refresh(None, margin_seconds=120)
    assert needs_refresh("not-a-jwt", margin_seconds=0)
    assert seconds_left(token(now + 100), now=now) == pytest.approx(100, abs=1)


def test_concurrent_requests_with_one_refresh_token_refresh_once() -> None:
    calls: list[str] = []
    release = threading.Event()

    def refresh(presented: str) -> Tokens:
        calls.append(presented)
        release.wait(5)  # every other request arrives while this refresh runs
        return Tokens(access=f"access-{len(calls)}", refresh=f"refresh-{len(calls)}")

    refresher = Refresher(refresh)
    results: list[Tokens] = []
    threads = [
        threading.Thread(target=lambda: results.append(refresher.rotate("old"))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for t in threads:
        t.join(5)
    assert calls == ["old"]
    assert results == [Tokens("access-1", "refresh-1")] * 8
    assert refresher.rotate("refresh-1") == Tokens("access-2", "refresh-2")  # the next one


def test_a_refused_refresh_is_not_remembered() -> None:
    outcomes = iter([SignInRequired("expired"), Tokens("a", "r")])

    def refresh(_: str) -> Tokens:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    refresher = Refresher(refresh)
    with pytest.raises(SignInRequired):
        refresher.rotate("t")
    assert refresher.rotate("t") == Tokens("a", "r")


def test_a_shared_pair_is_forgotten_after_a_while() -> None:
    now = [0.0]
    count = [0]

    def refresh(_: str) -> Tokens:
        count[0] += 1
        return Tokens(f"a{count[0]}", f"r{count[0]}")

    refresher = Refresher(refresh, clock=lambda: now[0])
    assert refresher.rotate("t") == Tokens("a1", "r1")
    assert refresher.rotate("t") == Tokens("a1", "r1")
    now[0] = 1000.0
    assert refresher.rotate("t") == Tokens("a2", "r2")
