"""Logout through the gateway (services.md §1): a client holding only its access token (Bearer,
no cookies) ends its session, and the session's refresh token then gets 401."""

from __future__ import annotations

import uuid

import httpx

from mint.dev.platform import Platform

AUTH = "/api/v1/auth"


def test_bearer_only_logout_then_refresh_is_401(platform: Platform, gateway: httpx.Client) -> None:
    email = f"logout-{uuid.uuid4().hex[:8]}@example.com"
    r = gateway.post(
        f"{AUTH}/register", json={"email": email, "password": "Correct-Horse-42", "name": "Lou"}
    )
    assert r.status_code == 201, r.text
    gateway.cookies.clear()  # from here on the client has its tokens, never cookies
    # The session works: a refresh rotates it (the new pair belongs to the same session).
    r = gateway.post(f"{AUTH}/refresh", json={"refresh_token": r.json()["refresh_token"]})
    assert r.status_code == 200, r.text
    gateway.cookies.clear()
    pair = r.json()

    r = gateway.post(f"{AUTH}/logout", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert r.status_code == 204, r.text
    gateway.cookies.clear()

    r = gateway.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_refresh_token"
