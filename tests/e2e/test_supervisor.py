"""The dev runner supervises: a service that dies is restarted and serves again, and the money
path works through it afterwards (platform.md "Running it locally")."""

from __future__ import annotations

import os
import signal
import time
import uuid

import httpx

from mint.dev.platform import Platform
from tests.e2e.conftest import register, wait_for_wallet


def test_a_killed_service_is_restarted_and_serves_again(
    platform: Platform, gateway: httpx.Client
) -> None:
    child = platform.children["wallet"]
    assert child.proc is not None
    old_pid = child.proc.pid
    os.killpg(old_pid, signal.SIGKILL)

    deadline = time.monotonic() + 90
    ready = False
    while time.monotonic() < deadline:
        proc = platform.children["wallet"].proc
        if proc is not None and proc.pid != old_pid and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{platform.http_ports['wallet']}/readyz"
                ready = httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready:
                break
        time.sleep(0.3)
    assert ready, "wallet was not restarted by the supervisor"
    assert platform.children["wallet"].restarts >= 1

    # The restarted wallet serves the money path (and its consumer picks up new users).
    user = register(gateway, "Phoenix")
    wait_for_wallet(gateway, user, timeout=60)
    r = gateway.post(
        "/api/v1/transactions/topup",
        json={"amount": 1_000},
        headers={**user.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
