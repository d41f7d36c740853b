"""CSRF protection of the web app's forms: the double-submitted token and the origin check."""

from __future__ import annotations

import pytest

from mint.web import csrf

APP = ["http://localhost:8080"]


def test_new_tokens_are_long_and_different() -> None:
    first, second = csrf.new_token(), csrf.new_token()
    assert first != second and len(first) >= 32


def test_the_submitted_token_must_equal_the_cookie() -> None:
    token = csrf.new_token()
    assert csrf.tokens_match(token, token)
    assert not csrf.tokens_match(token, csrf.new_token())
    assert not csrf.tokens_match(token, None)
    assert not csrf.tokens_match(None, token)
    assert not csrf.tokens_match("", "")
    assert not csrf.tokens_match("short", "short")  # never a guessable token


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_need_no_token(method: str) -> None:
    assert csrf.request_is_allowed(method, None, None, "https://evil.example", APP)


def test_a_post_needs_the_token_and_the_apps_origin() -> None:
    token = csrf.new_token()
    assert csrf.request_is_allowed("POST", token, token, "http://localhost:8080", APP)
    assert csrf.request_is_allowed("POST", token, token, "http://localhost:8080/send", APP)
    assert csrf.request_is_allowed("POST", token, token, None, APP)  # no Origin: token decides
    assert not csrf.request_is_allowed("POST", token, token, "https://evil.example", APP)
    assert not csrf.request_is_allowed("POST", token, "forged", "http://localhost:8080", APP)
    assert not csrf.request_is_allowed("POST", None, token, "http://localhost:8080", APP)


def test_origins_compare_scheme_and_host_only() -> None:
    assert csrf.same_origin("HTTP://LOCALHOST:8080/x?y", APP)
    assert not csrf.same_origin("https://localhost:8080", APP)
    assert not csrf.same_origin("http://localhost:8081", APP)
