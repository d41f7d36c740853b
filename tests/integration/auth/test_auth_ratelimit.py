"""Login brute-force protection and the registration rate limit, counted in the real Redis;
client IPs from X-Forwarded-For only behind a trusted proxy; Redis down → 503 (fail closed)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mint.auth.ratelimit import LOGIN_PER_EMAIL, Counter, hashed
from mint.infra import EmbeddedInfra
from mint.kit.service import ServiceContext
from tests.integration.auth.support import (
    BASE,
    PASSWORD,
    app_client,
    login,
    new_email,
    outbox_rows,
    proxy_ip,
    random_ip,
    register,
    running_auth,
)


def via(ip: str) -> dict[str, str]:
    """What a trusted proxy adds for a client at ``ip`` (after a spoofed hop the client sent)."""
    return {"X-Forwarded-For": f"203.0.113.7, {ip}"}


def fail_logins(client: TestClient, count: int, headers: Any) -> None:
    """``count`` failed logins for distinct unknown emails (only IP counters fill), in parallel;
    ``headers`` is called for each attempt's headers."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(
            pool.map(
                lambda _: login(client, new_email(), PASSWORD, headers()).status_code, range(count)
            )
        )
    assert codes == [401] * count


def assert_limited(resp: Any, code: str = "too_many_attempts", window: int = 900) -> int:
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == code
    retry_after = int(resp.headers["Retry-After"])
    assert 0 < retry_after <= window
    return retry_after


# ---- per email ---------------------------------------------------------------------------------


def test_five_failures_per_email_lock_even_the_right_password(
    client: TestClient, ctx: ServiceContext
) -> None:
    email = new_email()
    user_id = register(client, email)["user"]["id"]
    with app_client(ctx, peer=proxy_ip()) as proxied:
        for _ in range(5):  # from five different client IPs: the email counter is what fills
            assert login(proxied, email, "Wrong-Pass-123", via(random_ip())).status_code == 401
        limited = login(proxied, email, PASSWORD, via(random_ip()))
    retry_after = assert_limited(limited)
    assert retry_after > 850  # the first failure was just now
    assert len(outbox_rows(ctx, "auth.login_failed", key=user_id)) == 5
    # Another account from the same client is not affected.
    other = new_email()
    register(client, other)
    assert login(client, other).status_code == 200


def test_retry_after_is_when_the_window_frees(client: TestClient, ctx: ServiceContext) -> None:
    email = new_email()
    register(client, email)
    for _ in range(5):
        assert login(client, email, "Wrong-Pass-123").status_code == 401
    assert_limited(login(client, email))
    # Age the recorded failures: the oldest to 14 min ago, so one minute remains.
    key = Counter(LOGIN_PER_EMAIL, hashed(email)).key
    now_ms = int(time.time() * 1000)
    members = [m for m in ctx.redis.zrange(key, 0, -1) if isinstance(m, bytes)]
    assert len(members) == 5
    ctx.redis.zadd(key, {m: now_ms - 14 * 60_000 - i for i, m in enumerate(members)})
    assert 55 <= assert_limited(login(client, email)) <= 61
    ctx.redis.zadd(key, {m: now_ms - 15 * 60_000 - 1000 for m in members})  # window passed
    assert login(client, email).status_code == 200


def test_concurrent_failures_cannot_exceed_the_limit(
    client: TestClient, ctx: ServiceContext
) -> None:
    email = new_email()
    register(client, email)
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = sorted(
            pool.map(lambda _: login(client, email, "Wrong-Pass-1").status_code, range(10))
        )
    assert codes == [401] * 5 + [429] * 5


# ---- per client IP -----------------------------------------------------------------------------


def test_fifty_failures_per_ip_behind_a_trusted_proxy(ctx: ServiceContext) -> None:
    attacker, bystander = random_ip(), random_ip()
    email = new_email()
    with app_client(ctx, peer=proxy_ip()) as proxied:
        register(proxied, email)
        fail_logins(proxied, 25, lambda: via(attacker))
        # A success from the same IP does not wipe the failures.
        assert login(proxied, email, PASSWORD, via(attacker)).status_code == 200
        fail_logins(proxied, 25, lambda: via(attacker))
        assert_limited(login(proxied, email, PASSWORD, via(attacker)))  # even the right one
        # The proxy itself and other clients behind it are not limited.
        assert login(proxied, email, PASSWORD, via(bystander)).status_code == 200


def test_untrusted_peers_forwarded_for_is_ignored(ctx: ServiceContext) -> None:
    peer = random_ip()  # not in MINT_TRUSTED_PROXIES
    email = new_email()
    with app_client(ctx, peer=peer) as direct:
        register(direct, email)
        # A fresh spoofed X-Forwarded-For each time: still one client.
        fail_logins(direct, 50, lambda: via(random_ip()))
        assert_limited(login(direct, email, PASSWORD, via(random_ip())))
    with app_client(ctx) as elsewhere:
        assert login(elsewhere, email).status_code == 200


# ---- registration ------------------------------------------------------------------------------


def test_registration_is_limited_per_client_ip(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with running_auth(
        embedded_infra, tmp_path_factory.mktemp("keys"), register_rate_per_hour=3
    ) as limited:
        with app_client(limited.ctx) as client:
            for _ in range(3):
                register(client)
            body = {"email": new_email(), "password": PASSWORD, "name": "Fourth"}
            refused = client.post(f"{BASE}/register", json=body)
            assert_limited(refused, code="too_many_requests", window=3600)
        with app_client(limited.ctx) as other_ip:
            register(other_ip)


# ---- Redis down --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_down_fails_closed(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory, ctx: ServiceContext
) -> None:
    email = new_email()
    with app_client(ctx) as client:
        register(client, email)
    with (
        running_auth(
            embedded_infra,
            tmp_path_factory.mktemp("keys"),
            database_url=ctx.settings.database_url,
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        ) as down,
        app_client(down.ctx) as client,
    ):
        resp = login(client, email)
        assert resp.status_code == 503 and resp.json()["code"] == "dependency_unavailable"
        body = {"email": new_email(), "password": PASSWORD, "name": "N"}
        assert client.post(f"{BASE}/register", json=body).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "down"
