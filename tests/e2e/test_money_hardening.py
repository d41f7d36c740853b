"""The money path under pressure, through the gateway: one user's flood never starves another
(a per-user bound, 429 + Retry-After, the key left free for a retry), and a 503 says whether
anything may still move (``transaction_status`` FAILED: a new key is safe; PROCESSING: retry
the same key).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import text

from mint.dev.platform import Platform
from mint.kit.db import Database
from mint.transactions.store import user_lock_key
from tests.e2e.conftest import User, register, wait_for_wallet
from tests.e2e.security_support import poll


def send(client: httpx.Client, sender: User, recipient: User, key: str) -> httpx.Response:
    return client.post(
        "/api/v1/transactions/transfer",
        json={"recipient_id": recipient.id, "amount": 1},
        headers={**sender.headers, "Idempotency-Key": key},
    )


def topup(client: httpx.Client, user: User, amount: int, key: str | None = None) -> httpx.Response:
    return client.post(
        "/api/v1/transactions/topup",
        json={"amount": amount},
        headers={**user.headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


def funded(gateway: httpx.Client, name: str, amount: int = 10_000) -> User:
    user = register(gateway, name)
    wait_for_wallet(gateway, user)
    assert topup(gateway, user, amount).status_code == 201
    return user


@contextmanager
def user_lock_held(platform: Platform, user: User) -> Iterator[Database]:
    """Hold the user's limit-check lock from outside, so that user's money requests wait in the
    service (as behind a slow kyc) — deterministically, without timing."""
    db = Database(platform.databases["transactions"], pool_size=2)
    conn = db.engine.connect()
    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": user_lock_key(uuid.UUID(user.id))})
    try:
        yield db
    finally:
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
        conn.close()
        db.dispose()


def waiting_on(db: Database, user: User) -> int:
    """How many database sessions wait for the user's lock right now."""
    with db.engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND objid = :k"
            ),
            {"k": user_lock_key(uuid.UUID(user.id))},
        ).scalar_one()
    return int(found)


def test_a_flooding_user_gets_429_and_never_starves_another(
    platform: Platform, gateway: httpx.Client
) -> None:
    flooder, other, payee = (funded(gateway, n) for n in ("Flood", "Calm", "Payee"))
    with (
        ThreadPoolExecutor(4) as pool,
        httpx.Client(base_url=platform.gateway_url, timeout=60) as slow,
    ):
        with user_lock_held(platform, flooder) as db:
            admitted: list[Future[httpx.Response]] = [
                pool.submit(send, slow, flooder, payee, f"admitted-{i}-{uuid.uuid4()}")
                for i in range(2)
            ]
            poll(lambda: waiting_on(db, flooder) == 2, 30, "two requests waiting on the lock")
            refused_key = f"refused-{uuid.uuid4()}"
            refused = [send(gateway, flooder, payee, refused_key) for _ in range(3)]
            for r in refused:  # past the bound: refused at once, nothing claimed
                assert r.status_code == 429, r.text
                assert r.json()["code"] == "too_many_requests"
                assert r.headers["retry-after"] == "1"
            # the flood holds two connections at most: another user's money still moves
            for _ in range(5):
                assert send(gateway, other, payee, str(uuid.uuid4())).status_code == 201
            assert not any(f.done() for f in admitted)
        for f in admitted:  # the lock released: the admitted requests complete
            assert f.result(timeout=60).status_code == 201
    retried = send(gateway, flooder, payee, refused_key)  # the refused key was left free
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers


@contextmanager
def stopped(platform: Platform, service: str) -> Iterator[None]:
    """The service's process frozen (SIGSTOP): it accepts connections and never answers, so its
    callers hit their deadline — then it is thawed."""
    child = platform.children[service]
    assert child.proc is not None
    os.killpg(child.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(child.proc.pid, signal.SIGCONT)


def problem(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == "dependency_unavailable" and body["transaction_id"]
    return body


def test_a_503_says_whether_a_new_key_is_safe(platform: Platform, gateway: httpx.Client) -> None:
    user = funded(gateway, "Outage", amount=1_000)
    with stopped(platform, "kyc"):  # limits unknown: FAILED, nothing moved
        failed = problem(topup(gateway, user, 100, key="kyc-stopped"))
    assert failed["transaction_status"] == "FAILED"
    replay = topup(gateway, user, 100, key="kyc-stopped")
    assert replay.status_code == 503 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["transaction_status"] == "FAILED"
    assert topup(gateway, user, 100).status_code == 201  # a new key is safe

    with stopped(platform, "wallet"):  # the wallet's answer unknown: PROCESSING
        pending = problem(topup(gateway, user, 250, key="wallet-stopped"))
        assert pending["transaction_status"] == "PROCESSING"
        again = topup(gateway, user, 250, key="wallet-stopped")  # the same key: never twice
        assert (again.status_code, again.json()["code"]) == (
            409,
            "idempotency_request_in_progress",
        )
    openapi = gateway.get("/api/v1/transactions/openapi.json").json()
    documented = openapi["paths"]["/api/v1/transactions/topup"]["post"]["responses"]["503"]
    assert "PROCESSING" in documented["description"] and "FAILED" in documented["description"]
