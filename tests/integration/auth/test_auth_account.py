"""Account routes on real PostgreSQL and Redis: PATCH /me, password change (keeps the caller's
session, ends the others), recipient search, and frozen users at login and refresh."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from mint.auth.keys import KeyRing
from mint.auth.models import RefreshFamily, User
from mint.auth.settings import Settings
from mint.infra import EmbeddedInfra
from mint.kit.service import ServiceContext
from tests.integration.auth.support import (
    BASE,
    PASSWORD,
    bearer,
    csrf_headers,
    link_in,
    login,
    new_email,
    refresh,
    register,
    token_of,
    wait_for_mails,
)

NEW_PASSWORD = "Another-Secret-88"


def change(client: TestClient, token: str, current: str, new: str) -> Any:
    body = {"current_password": current, "new_password": new}
    return client.post(f"{BASE}/password/change", json=body, headers=bearer(token))


# ---- PATCH /me ---------------------------------------------------------------------------------


def test_patch_me(client: TestClient) -> None:
    pair = register(client)
    client.cookies.clear()
    auth = bearer(pair["access_token"])
    resp = client.patch(f"{BASE}/me", json={"name": "  Zoë O'Brien "}, headers=auth)
    assert resp.status_code == 200
    assert resp.json() == {**pair["user"], "name": "Zoë O'Brien"}
    assert client.get(f"{BASE}/me", headers=auth).json()["name"] == "Zoë O'Brien"
    for body in ({"name": ""}, {"name": "x" * 101}, {"name": "a\nb"}, {"email": "x@y.io"}, {}):
        refused = client.patch(f"{BASE}/me", json=body, headers=auth)
        assert refused.status_code == 422 and refused.json()["code"] == "validation_error"
    assert client.patch(f"{BASE}/me", json={"name": "N"}).status_code == 401


# ---- password change ---------------------------------------------------------------------------


def test_password_change_keeps_the_callers_session_only(
    client: TestClient, ctx: ServiceContext
) -> None:
    email = new_email()
    first = register(client, email)
    mine, third = login(client, email).json(), login(client, email).json()
    client.cookies.clear()
    sid = jwt.decode(mine["access_token"], options={"verify_signature": False})["sid"]
    with ctx.database().session() as s:
        families = s.scalars(
            select(RefreshFamily.id).where(RefreshFamily.user_id == uuid.UUID(first["user"]["id"]))
        ).all()
    assert uuid.UUID(sid) in families and len(families) == 3

    weak = change(client, mine["access_token"], PASSWORD, "weakpassword")
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    wrong = change(client, mine["access_token"], "Not-The-Password-1", NEW_PASSWORD)
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_current_password"
    assert change(client, mine["access_token"], PASSWORD, NEW_PASSWORD).status_code == 204

    assert refresh(client, mine["refresh_token"]).status_code == 200
    for other in (first, third):
        assert refresh(client, other["refresh_token"]).json()["code"] == "invalid_refresh_token"
    assert login(client, email).status_code == 401
    assert login(client, email, NEW_PASSWORD).status_code == 200


def test_password_change_without_sid_uses_the_refresh_cookie(
    client: TestClient, ctx: ServiceContext
) -> None:
    """An access token issued before ``sid`` existed: the refresh cookie names the session."""
    email = new_email()
    other = register(client, email)
    client.cookies.clear()
    mine = login(client, email).json()  # the client now holds this session's cookies
    claims = jwt.decode(mine["access_token"], options={"verify_signature": False})
    del claims["sid"]
    key = KeyRing(ctx.settings_as(Settings).signing_keys_dir).signing_key()
    old_style = jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    resp = client.post(
        f"{BASE}/password/change",
        json=body,
        headers={**bearer(old_style), **csrf_headers(client)},
    )
    assert resp.status_code == 204, resp.text
    assert refresh(client, mine["refresh_token"]).status_code == 200
    assert refresh(client, other["refresh_token"]).json()["code"] == "invalid_refresh_token"


def test_password_change_by_cookie_needs_csrf(client: TestClient) -> None:
    register(client)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    refused = client.post(f"{BASE}/password/change", json=body)
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    ok = client.post(f"{BASE}/password/change", json=body, headers=csrf_headers(client))
    assert ok.status_code == 204
    assert client.get(f"{BASE}/me").status_code == 200  # still signed in


def test_guessing_the_current_password_hits_the_login_limit(client: TestClient) -> None:
    email = new_email()
    token = register(client, email)["access_token"]
    client.cookies.clear()
    for _ in range(5):
        assert change(client, token, "Guess-Number-1", NEW_PASSWORD).status_code == 422
    limited = change(client, token, PASSWORD, NEW_PASSWORD)
    assert limited.status_code == 429 and limited.json()["code"] == "too_many_attempts"
    assert int(limited.headers["Retry-After"]) > 0
    assert login(client, email).status_code == 429


def test_password_change_retires_reset_links(
    client: TestClient, embedded_infra: EmbeddedInfra
) -> None:
    email = new_email()
    token = register(client, email)["access_token"]
    client.cookies.clear()
    assert client.post(f"{BASE}/password/forgot", json={"email": email}).status_code == 202
    (mail,) = wait_for_mails(embedded_infra.endpoints.mail_dir, email)
    link = token_of(link_in(mail, "/reset-password"))
    assert change(client, token, PASSWORD, NEW_PASSWORD).status_code == 204
    body = {"token": link, "new_password": "Third-Secret-99"}
    assert client.post(f"{BASE}/password/reset", json=body).status_code == 422


# ---- recipient search --------------------------------------------------------------------------


def test_search_recipients(client: TestClient, ctx: ServiceContext) -> None:
    tag = uuid.uuid4().hex[:8]
    emails = [f"find-{tag}-{i:02}@example.com" for i in range(13)]
    users = [register(client, e, name=f"User {i}")["user"] for i, e in enumerate(emails)]
    me = users[0]
    token = login(client, me["email"]).json()["access_token"]
    client.cookies.clear()
    with ctx.database().session() as s:  # users[1] is frozen: not a recipient
        s.execute(update(User).where(User.id == uuid.UUID(users[1]["id"])).values(status="FROZEN"))

    resp = client.get(
        f"{BASE}/users/search", params={"email": f"  FIND-{tag} "}, headers=bearer(token)
    )
    assert resp.status_code == 200
    items = resp.json()["items"]
    assert [i["email"] for i in items] == emails[2:12]  # at most 10, by email, no caller/frozen
    assert items[0] == {"id": users[2]["id"], "email": emails[2], "name": "User 2"}
    one = client.get(f"{BASE}/users/search", params={"email": emails[5]}, headers=bearer(token))
    assert [i["id"] for i in one.json()["items"]] == [users[5]["id"]]
    for wildcard in ("%%%", "___", f"find-{tag}%"):
        found = client.get(
            f"{BASE}/users/search", params={"email": wildcard}, headers=bearer(token)
        )
        assert found.status_code == 200 and found.json()["items"] == []
    for short in ("fi", "  f ", ""):
        bad = client.get(f"{BASE}/users/search", params={"email": short}, headers=bearer(token))
        assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert client.get(f"{BASE}/users/search", headers=bearer(token)).status_code == 422
    assert client.get(f"{BASE}/users/search", params={"email": "find"}).status_code == 401


# ---- frozen users ------------------------------------------------------------------------------


def test_frozen_user_refused_at_login_and_refresh(client: TestClient, ctx: ServiceContext) -> None:
    email = new_email()
    pair = register(client, email)
    client.cookies.clear()
    # Frozen without its sessions revoked (the refresh path must check the status itself).
    with ctx.database().session() as s:
        s.execute(
            update(User).where(User.id == uuid.UUID(pair["user"]["id"])).values(status="FROZEN")
        )
    resp = login(client, email)
    assert resp.status_code == 403 and resp.json()["code"] == "account_frozen"
    assert login(client, email, "Wrong-Pass-123").status_code == 401  # no status leak
    frozen = refresh(client, pair["refresh_token"])
    assert frozen.status_code == 403 and frozen.json()["code"] == "account_frozen"
    assert "access_token" not in frozen.json()
    # The refresh token was not consumed: once active again, the session goes on.
    with ctx.database().session() as s:
        s.execute(
            update(User).where(User.id == uuid.UUID(pair["user"]["id"])).values(status="ACTIVE")
        )
    assert refresh(client, pair["refresh_token"]).status_code == 200
