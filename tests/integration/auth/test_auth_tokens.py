"""Token attacks, header/cookie precedence, CSRF and signing-key rotation — all through auth's
real app (kit security, auth's key directory) on real PostgreSQL and Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm

from mint.auth.keys import KeyRing, generate_key
from mint.auth.settings import Settings
from mint.kit.service import ServiceContext
from tests.integration.auth.support import (
    BASE,
    PUBLIC_URL,
    bearer,
    csrf_headers,
    login,
    register,
)


def keys_dir(ctx: ServiceContext) -> Path:
    return ctx.settings_as(Settings).signing_keys_dir


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_for(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iss": "mint-auth",
        "aud": "mint-services",
        "iat": now,
        "exp": now + 900,
        "jti": str(uuid.uuid4()),
        "type": "access",
        "role": "admin",
        "email": "x@example.com",
        "email_verified": True,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def with_real_key(ctx: ServiceContext, claims: dict[str, Any], alg: str = "RS256") -> str:
    key = KeyRing(keys_dir(ctx)).signing_key()
    return jwt.encode(claims, key.private_key, algorithm=alg, headers={"kid": key.kid})


def unsigned(ctx: ServiceContext, claims: dict[str, Any]) -> str:
    kid = KeyRing(keys_dir(ctx)).signing_key().kid
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{b64(json.dumps(claims).encode())}."


def hs256_with_public_pem(ctx: ServiceContext, claims: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the (public) RSA key's PEM."""
    key = KeyRing(keys_dir(ctx)).signing_key()
    pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def unknown_kid(ctx: ServiceContext, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, attacker_key(), algorithm="RS256", headers={"kid": "29991231235959"})


def embedded_jwk(ctx: ServiceContext, claims: dict[str, Any]) -> str:
    """Signed by the attacker, naming the real kid and carrying the attacker's key inline."""
    mine = attacker_key()
    jwk = json.loads(RSAAlgorithm.to_jwk(mine.public_key()))
    kid = KeyRing(keys_dir(ctx)).signing_key().kid
    headers = {"kid": kid, "jwk": jwk, "jku": "http://attacker.test/jwks.json"}
    return jwt.encode(claims, mine, algorithm="RS256", headers=headers)


def tampered(ctx: ServiceContext, claims: dict[str, Any]) -> str:
    """A genuine user token whose payload was edited to role=admin (signature kept)."""
    header, _, signature = with_real_key(ctx, {**claims, "role": "user"}).split(".")
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


Forge = Callable[[ServiceContext, str], str]
ATTACKS: dict[str, Forge] = {
    "expired": lambda c, u: with_real_key(
        c, claims_for(u, iat=int(time.time()) - 2000, exp=int(time.time()) - 120)
    ),
    "wrong_iss": lambda c, u: with_real_key(c, claims_for(u, iss="evil-auth")),
    "wrong_aud": lambda c, u: with_real_key(c, claims_for(u, aud="other-services")),
    "no_aud": lambda c, u: with_real_key(c, claims_for(u, aud=None)),
    "no_exp": lambda c, u: with_real_key(c, claims_for(u, exp=None)),
    "refresh_as_access": lambda c, u: with_real_key(c, claims_for(u, type="refresh")),
    "alg_none": lambda c, u: unsigned(c, claims_for(u)),
    "hs256_public_key": lambda c, u: hs256_with_public_pem(c, claims_for(u)),
    "rs512": lambda c, u: with_real_key(c, claims_for(u), alg="RS512"),
    "unknown_kid": lambda c, u: unknown_kid(c, claims_for(u)),
    "embedded_jwk_jku": lambda c, u: embedded_jwk(c, claims_for(u)),
    "tampered_payload": lambda c, u: tampered(c, claims_for(u)),
    "garbage": lambda c, u: "not.a.token",
}


def test_a_correctly_forged_token_is_accepted(client: TestClient, ctx: ServiceContext) -> None:
    """The control: the helpers build valid tokens, so each attack below fails for its flaw."""
    user_id = register(client)["user"]["id"]
    client.cookies.clear()
    assert (
        client.get(f"{BASE}/me", headers=bearer(with_real_key(ctx, claims_for(user_id)))).json()[
            "id"
        ]
        == user_id
    )


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_token_attacks_are_401(client: TestClient, ctx: ServiceContext, attack: str) -> None:
    user_id = register(client)["user"]["id"]
    client.cookies.clear()
    token = ATTACKS[attack](ctx, user_id)
    resp = client.get(f"{BASE}/me", headers=bearer(token))
    assert resp.status_code == 401, (attack, resp.text)
    assert resp.json()["code"] == "unauthorized"
    assert resp.headers["www-authenticate"] == "Bearer"
    # The same token as the session cookie is refused as well.
    client.cookies.set("access_token", token)
    assert client.get(f"{BASE}/me").status_code == 401


def test_real_refresh_token_is_not_an_access_token(client: TestClient) -> None:
    pair = register(client)
    client.cookies.clear()
    assert client.get(f"{BASE}/me", headers=bearer(pair["refresh_token"])).status_code == 401


# ---- header / cookie precedence and CSRF -------------------------------------------------------


def test_valid_cookie_with_a_bad_header_is_401(client: TestClient) -> None:
    register(client)  # the client now holds valid session cookies
    assert client.get(f"{BASE}/me").status_code == 200
    assert client.get(f"{BASE}/me", headers=bearer("garbage")).status_code == 401
    basic = {"Authorization": "Basic dXNlcjpwdw=="}
    assert client.get(f"{BASE}/me", headers=basic).status_code == 401
    assert client.get(f"{BASE}/me", headers={"Authorization": ""}).status_code == 401


def test_bad_cookie_with_a_valid_header_is_200(client: TestClient) -> None:
    pair = register(client)
    client.cookies.set("access_token", "garbage")
    resp = client.get(f"{BASE}/me", headers=bearer(pair["access_token"]))
    assert resp.status_code == 200 and resp.json()["id"] == pair["user"]["id"]


def test_cookie_authenticated_writes_need_the_csrf_token(client: TestClient) -> None:
    register(client)
    refused = client.patch(f"{BASE}/me", json={"name": "Mallory"}, headers={"Origin": PUBLIC_URL})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    wrong = client.patch(
        f"{BASE}/me",
        json={"name": "Mallory"},
        headers={**csrf_headers(client), "X-CSRF-Token": "x"},
    )
    assert wrong.status_code == 403
    cross_site = client.patch(
        f"{BASE}/me",
        json={"name": "Mallory"},
        headers={**csrf_headers(client), "Origin": "https://evil.test"},
    )
    assert cross_site.status_code == 403
    no_csrf = client.post(f"{BASE}/verify-email/request", headers={"Origin": PUBLIC_URL})
    assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "csrf_failed"

    ok = client.patch(f"{BASE}/me", json={"name": "Alice"}, headers=csrf_headers(client))
    assert ok.status_code == 200 and ok.json()["name"] == "Alice"
    assert (
        client.post(f"{BASE}/verify-email/request", headers=csrf_headers(client)).status_code == 202
    )


def test_bearer_authenticated_writes_need_no_csrf_token(client: TestClient) -> None:
    pair = register(client)
    client.cookies.clear()
    resp = client.patch(f"{BASE}/me", json={"name": "Bob"}, headers=bearer(pair["access_token"]))
    assert resp.status_code == 200 and resp.json()["name"] == "Bob"


# ---- key rotation ------------------------------------------------------------------------------


def test_adding_a_key_rotates_and_old_tokens_stay_valid(
    client: TestClient, ctx: ServiceContext
) -> None:
    email = register(client)["user"]["email"]
    before = login(client, email).json()
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]

    new_kid = generate_key(keys_dir(ctx), now=datetime.now(UTC) + timedelta(days=30))
    after = login(client, email).json()
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid  # newest signs
    jwks = {k["kid"]: k for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= set(jwks)  # every un-retired key is served

    client.cookies.clear()
    for pair, kid in ((before, old_kid), (after, new_kid)):
        # auth itself accepts both, and so does any service verifying against the JWKS.
        me = client.get(f"{BASE}/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 200, me.text
        public = RSAAlgorithm.from_jwk(jwks[kid])
        claims = jwt.decode(
            pair["access_token"],
            public,  # type: ignore[arg-type]
            algorithms=["RS256"],
            audience="mint-services",
            issuer="mint-auth",
        )
        assert claims["sub"] == before["user"]["id"]
    # The old session still refreshes (refresh tokens are checked against the database)...
    assert client.post(f"{BASE}/refresh", json={"refresh_token": before["refresh_token"]}).json()[
        "access_token"
    ]
    # ...and once the operator retires the old key (after its tokens expired), it is gone.
    (keys_dir(ctx) / f"{old_kid}.pem").unlink()
    assert old_kid not in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert client.get(f"{BASE}/me", headers=bearer(before["access_token"])).status_code == 401
