"""The platform started exactly as ``make dev`` starts it (each service its own process, the
gateway in front), on free ports, against the session's embedded infrastructure."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mint.dev.dev import database_owners, prepare
from mint.dev.platform import Platform
from mint.infra import EmbeddedInfra

E2E_SERVICES = ["auth", "wallet", "transactions", "kyc"]

#: The e2e platform runs with generous limits so money-path tests are not about limits; the
#: limits tests rewrite this file (it is live) and restore it (``limits_file`` fixture).
HIGH_LIMITS = """\
version: "e2e-high"
currency: USD
tiers:
  UNVERIFIED: {per_transaction: 100000000, daily: 1000000000, monthly: 10000000000}
  BASIC: {per_transaction: 100000000, daily: 1000000000, monthly: 10000000000}
  VERIFIED: {per_transaction: 100000000, daily: 1000000000, monthly: 10000000000}
fraud:
  review_threshold: 50
  block_threshold: 100
  velocity: {window_seconds: 3600, max_transfers: 100000}
  review_hold_hours: 72
"""


@pytest.fixture(scope="session")
def platform(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("mint-e2e") / ".mint"
    prepare(root)
    (root / "limits.yaml").write_text(HIGH_LIMITS)
    databases = {
        s: embedded_infra.create_database(f"e2e_{s}_{uuid.uuid4().hex[:6]}")
        for s in database_owners(E2E_SERVICES)
    }
    plat = Platform(
        root=root,
        infra=embedded_infra.endpoints,
        services=E2E_SERVICES,
        databases=databases,
        spec_ports=False,
        extra_env={
            "MINT_TRACE_FILE": str(root / "traces.jsonl"),
            # every e2e user registers from 127.0.0.1; the limit itself is tested in test_auth
            "MINT_REGISTER_RATE_PER_HOUR": "10000",
            # a killed service leaves transactions PENDING / PROCESSING: recovery (every 10 s)
            # settles them after seconds, not the production windows (test_crash_recovery)
            "MINT_RECOVERY_PROCESSING_AFTER_SECONDS": "2",
            "MINT_RECOVERY_PENDING_AFTER_SECONDS": "5",
        },
    )
    started = time.monotonic()
    plat.start(timeout=180)
    print(f"\n[e2e] platform ready in {time.monotonic() - started:.1f}s at {plat.gateway_url}")
    try:
        yield plat
    finally:
        plat.stop()


@pytest.fixture
def gateway(platform: Platform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.gateway_url, timeout=30) as client:
        yield client


@dataclass
class User:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def register(client: httpx.Client, name: str) -> User:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    r = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "Correct-Horse-42", "name": name},
    )
    assert r.status_code == 201, r.text
    # Authenticate with the bearer token only: drop the session cookies auth just set.
    client.cookies.clear()
    body = r.json()
    return User(id=body["user"]["id"], email=email, token=body["access_token"])


def wait_for_wallet(client: httpx.Client, user: User, timeout: float = 30) -> dict[str, object]:
    """Wallets are created from ``auth.user_registered`` over Kafka: poll until it exists."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/api/v1/wallet", headers=user.headers)
        if r.status_code == 200:
            body: dict[str, object] = r.json()
            return body
        assert r.status_code == 404, r.text
        if time.monotonic() > deadline:
            raise AssertionError(f"wallet for {user.email} not created within {timeout}s")
        time.sleep(0.2)


def trace_file(platform: Platform) -> Path:
    return platform.root / "traces.jsonl"
