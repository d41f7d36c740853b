"""Limits end to end through the gateway (services.md §3, §5; platform.md "The limits file"):
the shipped default limits refuse an UNVERIFIED user's oversized top-up, and a limits file
rewritten while transfers run applies without a restart.

The platform's limits file is live: :func:`live_limits` writes the shipped defaults (with a
fresh version) or a variant, waits until kyc's ``/readyz`` reports that version, and restores
the generous e2e file afterwards."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mint.dev.platform import Platform
from mint.kit.limits import DEFAULT_LIMITS_FILE
from tests.e2e.conftest import HIGH_LIMITS, User, register, wait_for_wallet


def poll(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """``check()`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class LiveLimits:
    """The platform's live limits file and kyc's view of it."""

    platform: Platform

    @property
    def path(self) -> Path:
        path: Path = self.platform.root / "limits.yaml"
        return path

    def kyc_version(self) -> str | None:
        url = f"http://127.0.0.1:{self.platform.http_ports['kyc']}/readyz"
        try:
            version = httpx.get(url, timeout=5).json().get("limits_version")
        except (httpx.HTTPError, ValueError):
            return None
        return None if version is None else str(version)

    def write_text(self, text: str) -> None:
        """Replace the file atomically (what admin's ``PUT /limits`` and kubelet do)."""
        tmp = self.path.with_name(f".limits.{uuid.uuid4().hex}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)

    def write(self, version: str, **tiers: dict[str, int]) -> None:
        """The shipped default tier limits under ``version`` (``tiers`` overriding whole tiers).
        The fraud settings stay the e2e platform's: these tests are about the tiers, and the
        shipped velocity (5 transfers an hour) would block their runs of transfers."""
        document = yaml.safe_load(DEFAULT_LIMITS_FILE.read_text())
        document["version"] = version
        document["tiers"].update(tiers)
        document["fraud"] = yaml.safe_load(HIGH_LIMITS)["fraud"]
        self.write_text(yaml.safe_dump(document, sort_keys=False))

    def wait_applied(self, version: str, timeout: float = 30) -> None:
        poll(lambda: self.kyc_version() == version, timeout, f"kyc to apply limits {version!r}")

    def apply(self, version: str, **tiers: dict[str, int]) -> None:
        self.write(version, **tiers)
        self.wait_applied(version)

    def apply_defaults(self) -> str:
        version = f"e2e-default-{uuid.uuid4().hex[:8]}"
        self.apply(version)
        return version


@pytest.fixture
def live_limits(platform: Platform) -> Iterator[LiveLimits]:
    limits = LiveLimits(platform)
    try:
        yield limits
    finally:
        limits.write_text(HIGH_LIMITS)
        limits.wait_applied(str(yaml.safe_load(HIGH_LIMITS)["version"]))


def topup(client: httpx.Client, user: User, amount: int) -> httpx.Response:
    return client.post(
        "/api/v1/transactions/topup",
        json={"amount": amount},
        headers={**user.headers, "Idempotency-Key": str(uuid.uuid4())},
    )


def transfer(
    client: httpx.Client, sender: User, recipient: User, amount: int, key: str | None = None
) -> httpx.Response:
    return client.post(
        "/api/v1/transactions/transfer",
        json={"recipient_id": recipient.id, "amount": amount},
        headers={**sender.headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


def assert_limit_exceeded(r: httpx.Response, limit: str, value: int, remaining: int) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "limit_exceeded", problem
    assert (problem["limit"], problem["limit_value"], problem["remaining"]) == (
        limit, value, remaining
    ), problem  # fmt: skip


# ---- (a) the shipped defaults -----------------------------------------------------------------


def test_default_limits_refuse_an_unverified_users_big_topup(
    gateway: httpx.Client, live_limits: LiveLimits
) -> None:
    live_limits.apply_defaults()
    user = register(gateway, "Ursula")
    wait_for_wallet(gateway, user)
    r = topup(gateway, user, 6_000)
    assert_limit_exceeded(r, "per_transaction", 5_000, 5_000)
    txn = gateway.get(f"/api/v1/transactions/{r.json()['transaction_id']}", headers=user.headers)
    assert (txn.json()["status"], txn.json()["failure_reason"]) == ("FAILED", "limit_exceeded")
    assert topup(gateway, user, 5_000).status_code == 201
    r = gateway.get("/api/v1/wallet", headers=user.headers)
    assert r.json()["balance"] == 5_000


# ---- (b) a live change while transfers run ----------------------------------------------------


@dataclass
class Attempt:
    sent: float
    answered: float
    response: httpx.Response


@dataclass
class TransferLoop:
    """Transfers of ``amount`` one after another until stopped (bounded by ``max_count``)."""

    platform: Platform
    sender: User
    recipient: User
    amount: int
    max_count: int
    attempts: list[Attempt] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.platform.gateway_url, timeout=30) as client:
                while not self.stop.is_set() and len(self.attempts) < self.max_count:
                    sent = time.monotonic()
                    r = transfer(client, self.sender, self.recipient, self.amount)
                    self.attempts.append(Attempt(sent, time.monotonic(), r))
                    time.sleep(0.1)
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def count(self, since: float) -> int:
        return sum(1 for a in self.attempts if a.sent > since)


def test_limits_rewritten_while_transfers_run_apply_without_restart(
    platform: Platform, gateway: httpx.Client, live_limits: LiveLimits
) -> None:
    live_limits.apply_defaults()
    sender, recipient = register(gateway, "Runner"), register(gateway, "Catcher")
    for user in (sender, recipient):
        wait_for_wallet(gateway, user)
    assert topup(gateway, sender, 5_000).status_code == 201
    pids = {name: child.proc.pid for name, child in platform.children.items() if child.proc}

    loop = TransferLoop(platform, sender, recipient, amount=100, max_count=45)
    worker = threading.Thread(target=loop.run, name="transfers", daemon=True)
    worker.start()
    try:
        poll(lambda: len(loop.attempts) >= 3 or loop.error, 30, "the first transfers")
        written = time.monotonic()
        lowered = f"e2e-lowered-{uuid.uuid4().hex[:8]}"
        unverified = {"per_transaction": 50, "daily": 10_000, "monthly": 20_000}
        live_limits.write(lowered, UNVERIFIED=unverified)
        live_limits.wait_applied(lowered)
        applied = time.monotonic()
        poll(lambda: loop.count(applied) >= 3 or loop.error, 30, "transfers after the change")
    finally:
        loop.stop.set()
        worker.join(30)
    assert loop.error is None, loop.error

    before = [a for a in loop.attempts if a.answered < written]
    after = [a for a in loop.attempts if a.sent > applied]
    assert len(before) >= 3 and len(after) >= 3, (len(before), len(after))
    assert all(a.response.status_code == 201 for a in before), [a.response.text for a in before]
    for a in after:
        assert_limit_exceeded(a.response, "per_transaction", 50, 50)
    # Once refused, never accepted again: the change took effect at one point in the sequence.
    codes = [a.response.status_code for a in loop.attempts]
    first_refusal = codes.index(422)
    assert set(codes[:first_refusal]) == {201} and set(codes[first_refusal:]) == {422}, codes
    assert loop.attempts[first_refusal].answered > written
    accepted = codes.count(201)
    r = gateway.get("/api/v1/wallet", headers=recipient.headers)
    assert r.json()["balance"] == 100 * accepted
    # No service was restarted to apply it.
    assert pids == {n: c.proc.pid for n, c in platform.children.items() if c.proc}
