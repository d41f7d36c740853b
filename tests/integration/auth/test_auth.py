"""auth's HTTP API against real PostgreSQL, through the kit's ASGI app: register, login,
refresh rotation and reuse, logout, /me, JWKS and key rotation, and the outbox rows written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select, update

from mint.auth.domain import token_hash
from mint.auth.keys import generate_key
from mint.auth.models import RefreshToken, User
from mint.kit.service import ServiceContext
from tests.integration.auth.support import (
    BASE,
    PASSWORD,
    csrf_headers,
    new_email,
    outbox_rows,
    refresh,
    register,
)

# ---- register ----------------------------------------------------------------------------------


def test_register_creates_user_tokens_cookies_and_event(
    client: TestClient, ctx: ServiceContext
) -> None:
    email = new_email()
    resp = client.post(
        f"{BASE}/register",
        json={"email": f"  {email.upper()} ", "password": PASSWORD, "name": " Alice "},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
    user = body["user"]
    assert set(user) == {"id", "email", "name", "role", "email_verified", "status", "created_at"}
    assert (user["email"], user["name"], user["role"]) == (email, "Alice", "user")
    assert (user["email_verified"], user["status"]) == (False, "ACTIVE")
    assert user["created_at"].endswith("Z")

    cookies = {c.split("=", 1)[0]: c for c in resp.headers.get_list("set-cookie")}
    assert set(cookies) == {"access_token", "refresh_token", "csrf_token"}
    assert "HttpOnly" in cookies["access_token"] and "HttpOnly" in cookies["refresh_token"]
    assert "HttpOnly" not in cookies["csrf_token"]
    assert f"Path={BASE}" in cookies["refresh_token"]
    assert all("SameSite=lax" in c for c in cookies.values())
    assert not any("Secure" in c for c in cookies.values())  # dev/test only

    (row,) = outbox_rows(ctx, "auth.user_registered", key=user["id"])
    assert row["topic"] == "auth.events" and row["actor"] == user["id"]
    assert row["subject"] == user["id"] and row["source"] == "auth"
    assert row["data"] == {"user_id": user["id"], "email": email, "name": "Alice"}
    assert PASSWORD not in str(row["data"])


@pytest.mark.parametrize(
    "password", ["short1A!", "abcdefghijklmnop", "1234567890123", "my-{local}-Secret1"]
)
def test_weak_password_422(client: TestClient, ctx: ServiceContext, password: str) -> None:
    email = new_email()
    pw = password.format(local=email.split("@")[0])
    resp = client.post(f"{BASE}/register", json={"email": email, "password": pw, "name": "W"})
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "weak_password"
    assert pw not in resp.text
    assert not [r for r in outbox_rows(ctx, "auth.user_registered") if r["data"]["email"] == email]
    with ctx.database().session() as s:
        assert s.scalars(select(User).where(User.email == email)).first() is None


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD, "name": "X"},
        {"email": new_email(), "password": PASSWORD, "name": "   "},
        {"email": new_email(), "password": PASSWORD, "name": "x" * 101},
        {"email": new_email(), "password": "A1" * 65, "name": "X"},
        {"email": "a" * 250 + "@x.io", "password": PASSWORD, "name": "X"},
        {"email": new_email(), "password": PASSWORD, "name": "X", "role": "admin"},
        {"email": new_email(), "password": PASSWORD},
        {"email": new_email(), "password": PASSWORD, "name": "nul\x00byte"},
        {"email": new_email(), "password": PASSWORD, "name": 42},
    ],
)
def test_register_body_is_strict(client: TestClient, body: dict[str, Any]) -> None:
    resp = client.post(f"{BASE}/register", json=body)
    assert resp.status_code == 422
    assert resp.json()["code"] == "validation_error"


def test_duplicate_email_409_and_no_event(client: TestClient, ctx: ServiceContext) -> None:
    email = new_email()
    first = register(client, email)
    resp = client.post(
        f"{BASE}/register",
        json={"email": email.upper(), "password": "Another-Pass-99", "name": "Dup"},
    )
    assert resp.status_code == 409
    assert resp.json()["code"] == "email_taken"
    rows = [r for r in outbox_rows(ctx, "auth.user_registered") if r["data"]["email"] == email]
    assert [r["key"] for r in rows] == [first["user"]["id"]]


# ---- login -------------------------------------------------------------------------------------


def test_login(client: TestClient) -> None:
    email = new_email()
    user = register(client, email)["user"]
    resp = client.post(f"{BASE}/login", json={"email": f" {email.upper()}", "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"] == user
    assert resp.json()["access_token"] and resp.json()["refresh_token"]

    wrong = client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD + "x"})
    unknown = client.post(f"{BASE}/login", json={"email": new_email(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "invalid_credentials"
    nul = client.post(f"{BASE}/login", json={"email": "a\x00@x.io", "password": PASSWORD})
    assert nul.status_code == 422


def test_login_rehashes_outdated_password_hash(client: TestClient, ctx: ServiceContext) -> None:
    email = new_email()
    user_id = register(client, email)["user"]["id"]
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with ctx.database().session() as s:
        s.execute(update(User).where(User.id == uuid.UUID(user_id)).values(password_hash=weak))
    resp = client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200
    with ctx.database().session() as s:
        stored = s.get(User, uuid.UUID(user_id))
        assert stored is not None
        assert stored.password_hash != weak
        assert not PasswordHasher().check_needs_rehash(stored.password_hash)


# ---- refresh, reuse, logout --------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_family(client: TestClient, ctx: ServiceContext) -> None:
    first = register(client)
    client.cookies.clear()
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    pair2 = second.json()
    assert pair2["refresh_token"] != first["refresh_token"]
    assert pair2["user"] == first["user"]

    # Only hashes are stored.
    with ctx.database().session() as s:
        old = s.scalars(
            select(RefreshToken).where(
                RefreshToken.token_hash == token_hash(first["refresh_token"])
            )
        ).one()
        assert old.used_at is not None and old.rotated_to is not None

    client.cookies.clear()
    reused = refresh(client, first["refresh_token"])
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    # The whole family is dead: the rotated token too.
    dead = refresh(client, pair2["refresh_token"])
    assert dead.status_code == 401
    assert dead.json()["code"] == "invalid_refresh_token"
    assert outbox_rows(ctx, "auth.refresh_reused", key=first["user"]["id"])


def test_refresh_from_cookie_needs_csrf(client: TestClient) -> None:
    register(client)
    assert client.cookies.get("refresh_token")
    refused = client.post(f"{BASE}/refresh")
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    old_refresh = client.cookies.get("refresh_token")
    ok = client.post(f"{BASE}/refresh", headers=csrf_headers(client))
    assert ok.status_code == 200, ok.text
    assert client.cookies.get("refresh_token") == ok.json()["refresh_token"] != old_refresh


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_unknown_refresh_token(client: TestClient, token: str) -> None:
    resp = client.post(f"{BASE}/refresh", json={"refresh_token": token} if token else {})
    assert resp.status_code in (401, 422)
    if resp.status_code == 401:
        assert resp.json()["code"] == "invalid_refresh_token"


def test_expired_refresh_token(client: TestClient, ctx: ServiceContext) -> None:
    pair = register(client)
    with ctx.database().session() as s:
        s.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash(pair["refresh_token"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    resp = refresh(client, pair["refresh_token"])
    assert resp.status_code == 401 and resp.json()["code"] == "invalid_refresh_token"


def test_logout_revokes_family_and_clears_cookies(client: TestClient) -> None:
    pair = register(client)
    resp = client.post(f"{BASE}/logout", headers=csrf_headers(client))
    assert resp.status_code == 204
    cleared = {c.split("=", 1)[0] for c in resp.headers.get_list("set-cookie")}
    assert cleared == {"access_token", "refresh_token", "csrf_token"}
    assert refresh(client, pair["refresh_token"]).json()["code"] == "invalid_refresh_token"
    # Logging out again (nothing to revoke) is still fine.
    assert (
        client.post(f"{BASE}/logout", json={"refresh_token": pair["refresh_token"]}).status_code
        == 204
    )


# ---- me, tokens, JWKS --------------------------------------------------------------------------


def test_me(client: TestClient) -> None:
    pair = register(client)
    client.cookies.clear()
    resp = client.get(f"{BASE}/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert resp.status_code == 200
    assert resp.json() == pair["user"]
    assert client.get(f"{BASE}/me").status_code == 401
    as_access = client.get(
        f"{BASE}/me", headers={"Authorization": f"Bearer {pair['refresh_token']}"}
    )
    assert as_access.status_code == 401  # a refresh token is not an access token


def test_openapi_and_health(client: TestClient) -> None:
    doc = client.get(f"{BASE}/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    assert {
        f"{BASE}/register",
        f"{BASE}/refresh",
        f"{BASE}/verify-email/request",
        f"{BASE}/verify-email",
        f"{BASE}/password/forgot",
        f"{BASE}/password/reset",
        f"{BASE}/password/change",
        f"{BASE}/users/search",
        "/.well-known/jwks.json",
    } <= set(paths)
    change = paths[f"{BASE}/password/change"]["post"]["responses"]
    assert "invalid_current_password" in change["422"]["description"]
    assert "Retry-After" in paths[f"{BASE}/login"]["post"]["responses"]["429"]["headers"]
    assert "patch" in paths[f"{BASE}/me"]
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_me_with_cookie(client: TestClient) -> None:
    pair = register(client)
    resp = client.get(f"{BASE}/me")
    assert resp.status_code == 200 and resp.json()["id"] == pair["user"]["id"]


def test_jwks_verifies_tokens(client: TestClient, ctx: ServiceContext) -> None:
    pair = register(client)
    resp = client.get("/.well-known/jwks.json")
    assert resp.status_code == 200
    keys = {k["kid"]: k for k in resp.json()["keys"]}
    kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    assert kid in keys
    assert kid == max(p.stem for p in Path(ctx.settings.signing_keys_dir).glob("*.pem"))  # type: ignore[attr-defined]
    public = RSAAlgorithm.from_jwk(keys[kid])
    claims = jwt.decode(
        pair["access_token"],
        public,  # type: ignore[arg-type]
        algorithms=["RS256"],
        audience="mint-services",
        issuer="mint-auth",
    )
    assert claims["sub"] == pair["user"]["id"] and claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert {"jti", "role", "email", "email_verified"} <= set(claims)


def test_new_key_signs_without_restart_and_old_refresh_still_works(
    client: TestClient, ctx: ServiceContext
) -> None:
    pair = register(client)
    keys_dir = Path(ctx.settings.signing_keys_dir)  # type: ignore[attr-defined]
    old_kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    new_kid = generate_key(keys_dir, now=datetime.now(UTC) + timedelta(days=1))
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= kids
    (keys_dir / f"{old_kid}.pem").unlink()  # the operator retires the old key
    rotated = refresh(client, pair["refresh_token"])  # checked against the database
    assert rotated.status_code == 200, rotated.text
    assert jwt.get_unverified_header(rotated.json()["access_token"])["kid"] == new_kid
