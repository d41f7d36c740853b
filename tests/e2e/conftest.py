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

from mint.dev.platform import Platform

# The ``platform`` fixture is shared with the browser suite, one platform per session: it lives
# in tests/e2e/running_platform.py, a plugin of tests/conftest.py.
from tests.e2e.running_platform import E2E_SERVICES, HIGH_LIMITS

__all__ = ["E2E_SERVICES", "HIGH_LIMITS", "User", "register", "trace_file", "wait_for_wallet"]


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
