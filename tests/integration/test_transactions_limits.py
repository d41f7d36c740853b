"""transactions with kyc ``CheckLimits`` against real servers (``transactions_env``: real Postgres,
the real wallet and kyc servicers over gRPC): per-transaction / daily / monthly refusals with
their fields, the idempotent replay, what counts as usage, parallel requests under the per-user
lock, tiers and live limit changes, and kyc outages (the transaction FAILS, never settles)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from fastapi.testclient import TestClient

from mint.kit.http import create_app
from mint.kit.service import ServiceContext
from mint.kyc.v1 import kyc_pb2, kyc_pb2_grpc
from mint.transactions import store as txn_store
from mint.transactions.domain import Status
from mint.transactions.limits import KycLimits
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.wallet import actions as wallet_actions
from tests.integration.transactions_env import BASE, Env, User, env, free_port, kyc

__all__ = ["env", "kyc"]  # module-scoped: the real servers (kyc included)

# The shipped defaults for UNVERIFIED (a user kyc has no profile for is UNVERIFIED).
PER_TXN, DAILY, MONTHLY = 5_000, 10_000, 20_000


@pytest.fixture(scope="module", autouse=True)
def default_limits(env: Env) -> None:
    env.use_limits(f"defaults-{uuid.uuid4().hex[:6]}")


def _refused(r: httpx.Response, limit: str, value: int, remaining: int) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    problem: dict[str, Any] = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "limit_exceeded"
    assert (problem["limit"], problem["limit_value"], problem["remaining"]) == (
        limit, value, remaining
    )  # fmt: skip
    return problem


def _seed(
    env: Env, user: User, kind: str, amount: int, status: str, at: datetime, counted: bool = True
) -> uuid.UUID:
    """A transaction of ``user`` recorded directly (another day, a state the API cannot reach
    on demand)."""
    other = uuid.uuid4()
    sender, recipient = {
        "TOPUP": (None, user.id), "TRANSFER": (user.id, other),
        "WITHDRAWAL": (user.id, None), "INCOMING": (other, user.id),
    }[kind]  # fmt: skip
    with env.db.session() as s:
        txn = txn_store.create(
            s, user_id=sender or user.id, type="TRANSFER" if kind == "INCOMING" else kind,
            amount=amount, currency="USD", sender_id=sender, recipient_id=recipient, actor="test",
        )  # fmt: skip
        txn.status, txn.created_at = status, at
        txn.counted_at = at if counted else None
        txn_id: uuid.UUID = txn.id
    return txn_id


@pytest.fixture
def clock(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """Mid-month "now" for the limits windows, so "earlier this month" exists on any date."""
    limits = env.wire.checks.limits
    assert isinstance(limits, KycLimits)
    real = datetime.now(UTC)
    now = real.replace(day=15, hour=12, minute=0, second=0, microsecond=0)
    monkeypatch.setattr(limits, "clock", lambda: now)
    yield now


# ---- refusals ---------------------------------------------------------------------------------


def test_per_transaction_refusal_fails_with_event_and_replays(env: Env) -> None:
    alice, bob = env.user(), env.user()
    r = env.post(alice, "/topup", {"amount": PER_TXN + 1}, key="big-topup")
    problem = _refused(r, "per_transaction", PER_TXN, PER_TXN)
    txn = env.get(alice, f"/{problem['transaction_id']}").json()
    assert (txn["status"], txn["failure_reason"]) == ("FAILED", "limit_exceeded")
    assert txn["fraud"] is None and env.txn(txn["id"]).counted_at is None
    events = env.events(txn["id"])
    assert [e["type"] for e in events] == ["transaction.failed"] and events[0]["data"] == txn
    replay = env.post(alice, "/topup", {"amount": PER_TXN + 1}, key="big-topup")
    assert replay.status_code == 422 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == problem
    # Transfers and withdrawals are limited the same way; nothing moved.
    assert env.post(alice, "/topup", {"amount": PER_TXN}).status_code == 201
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": PER_TXN + 1})
    _refused(r, "per_transaction", PER_TXN, PER_TXN)
    _refused(env.post(alice, "/withdraw", {"amount": 9_999}), "per_transaction", PER_TXN, PER_TXN)
    assert (env.balance(alice), env.balance(bob)) == (PER_TXN, 0)


def test_daily_usage_counts_topups_transfers_and_withdrawals(env: Env) -> None:
    alice, bob = env.user(), env.user()
    assert env.post(alice, "/topup", {"amount": 4_000}).status_code == 201
    assert env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 3_000}).is_success
    assert env.post(alice, "/withdraw", {"amount": 500}).status_code == 201
    # Money received is not the recipient's usage.
    assert env.post(bob, "/topup", {"amount": PER_TXN}).status_code == 201
    r = env.post(alice, "/topup", {"amount": 2_501}, key="over-daily")
    problem = _refused(r, "daily", DAILY, 2_500)
    assert env.txn(problem["transaction_id"]).failure_reason == "limit_exceeded"
    assert env.post(alice, "/topup", {"amount": 2_500}).status_code == 201  # exactly fits
    _refused(env.post(alice, "/withdraw", {"amount": 1}), "daily", DAILY, 0)
    assert env.balance(alice) == 4_000 - 3_000 - 500 + 2_500


def test_monthly_refusal_and_the_utc_windows(env: Env, clock: datetime) -> None:
    alice = env.user(wallet=True)
    month_start = clock.replace(day=1, hour=0)
    earlier = month_start + timedelta(days=1, hours=10)
    yesterday_late = clock.replace(hour=0) - timedelta(minutes=1)
    for kind in ("TOPUP", "TRANSFER", "WITHDRAWAL"):
        _seed(env, alice, kind, 4_000, "COMPLETED", earlier)
    _seed(env, alice, "TOPUP", 4_000, "PROCESSING", yesterday_late)  # this month, not today
    _seed(env, alice, "TOPUP", 5_000, "COMPLETED", month_start - timedelta(seconds=1))
    _seed(env, alice, "INCOMING", 5_000, "COMPLETED", earlier)  # received: not usage
    r = env.post(alice, "/topup", {"amount": 4_001})
    _refused(r, "monthly", MONTHLY, 4_000)
    assert env.post(alice, "/topup", {"amount": 4_000}).status_code == 201


def test_failed_cancelled_and_unchecked_do_not_count(env: Env) -> None:
    alice, bob = env.user(), env.user()
    now = datetime.now(UTC)
    _seed(env, alice, "TOPUP", 4_000, "FAILED", now)
    _seed(env, alice, "TRANSFER", 4_000, "CANCELLED", now)
    _seed(env, alice, "TRANSFER", 4_000, "REVERSED", now)
    _seed(env, alice, "WITHDRAWAL", 4_000, "PENDING", now, counted=False)  # not checked yet
    _seed(env, alice, "TRANSFER", 1_000, "PENDING", now)  # checked (e.g. under review): counts
    assert env.post(alice, "/topup", {"amount": 3_000}).status_code == 201
    # Refused by the wallet after passing the check: FAILED, so it stops counting.
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 4_500})
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_funds")
    # A counted PENDING transaction cancelled by its sender stops counting.
    with env.db.session() as s:
        pending = txn_store.create(
            s, user_id=alice.id, type="TOPUP", amount=2_000, currency="USD", sender_id=None,
            recipient_id=alice.id, actor=str(alice.id),
        )  # fmt: skip
        pending.counted_at = pending.created_at
    assert env.client.post(f"{BASE}/{pending.id}/cancel", headers=alice.headers).is_success
    # Used today: 1 000 (counted PENDING) + 3 000 — so 5 000 more fits and then 1 000 is left.
    assert env.post(alice, "/topup", {"amount": 5_000}).status_code == 201
    _refused(env.post(alice, "/topup", {"amount": 1_001}), "daily", DAILY, 1_000)


# ---- concurrency ------------------------------------------------------------------------------


def _simultaneously(env: Env, sender: User, body: dict[str, Any], n: int) -> list[httpx.Response]:
    """``n`` identical-but-separate transfers (distinct keys) released at the same instant."""
    start = threading.Barrier(n)
    results: list[httpx.Response] = []

    def send() -> None:
        start.wait(5)
        results.append(env.post(sender, "/transfer", body))

    threads = [threading.Thread(target=send) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_parallel_transfers_only_one_fits_the_daily_limit(env: Env) -> None:
    """Each of two simultaneous 3 000 transfers fits (6 000 used of 10 000), both do not; the
    sender has the money for both, so only the limits decide. Exactly one succeeds, every time."""
    for _ in range(10):
        sender, recipient = env.user(), env.user()
        for _ in range(2):
            assert env.post(sender, "/topup", {"amount": 3_000}).status_code == 201
        body = {"recipient_id": str(recipient.id), "amount": 3_000}
        results = _simultaneously(env, sender, body, 2)
        assert sorted(r.status_code for r in results) == [201, 422], [r.text for r in results]
        _refused(next(r for r in results if r.status_code == 422), "daily", DAILY, 1_000)
        assert (env.balance(sender), env.balance(recipient)) == (3_000, 3_000)


# ---- tiers and live limits -------------------------------------------------------------------


def test_tier_and_live_limits_apply_to_the_next_transaction(env: Env) -> None:
    uid = env.kyc.registered(verified=True)  # auth.user_verified → BASIC
    with env.wallet_db.session() as s:
        wallet_actions.open_wallet(s, uid)
    basic = User(uid, env.tokens.headers(uid))
    assert env.post(basic, "/topup", {"amount": 50_000}).status_code == 201  # BASIC: 50 000
    _refused(env.post(basic, "/topup", {"amount": 50_001}), "per_transaction", 50_000, 50_000)
    unverified = env.user()
    _refused(env.post(unverified, "/topup", {"amount": 6_000}), "per_transaction", 5_000, 5_000)
    env.use_limits(
        f"raised-{uuid.uuid4().hex[:6]}",
        UNVERIFIED={"per_transaction": 7_000, "daily": 10_000, "monthly": 20_000},
    )
    try:
        assert env.post(unverified, "/topup", {"amount": 6_000}).status_code == 201
        _refused(env.post(unverified, "/topup", {"amount": 4_001}), "daily", 10_000, 4_000)
    finally:
        env.use_limits(f"defaults-{uuid.uuid4().hex[:6]}")


# ---- kyc outages ------------------------------------------------------------------------------


def _client_with(env: Env, kyc_target: str, timeout: float = 2.0) -> TestClient:
    settings = env.settings.model_copy(
        update={"kyc_grpc": kyc_target, "grpc_deadline_seconds": timeout}
    )
    # its own wiring, built from these settings on first use
    return TestClient(create_app(ServiceContext(TXN_SERVICE, settings, env.db)))


def test_kyc_down_fails_the_transaction_with_503(env: Env) -> None:
    alice = env.user()
    with _client_with(env, f"127.0.0.1:{free_port()}") as client:
        headers = {**alice.headers, "Idempotency-Key": "kyc-down"}
        r = client.post(f"{BASE}/topup", json={"amount": 100}, headers=headers)
        assert (r.status_code, r.json()["code"]) == (503, "dependency_unavailable"), r.text
        assert r.json()["transaction_status"] == "FAILED"  # nothing moved: a new key is safe
        txn = env.txn(r.json()["transaction_id"])
        assert (txn.status, txn.failure_reason) == (Status.FAILED, "dependency_unavailable")
        assert [e["type"] for e in env.events(str(txn.id))] == ["transaction.failed"]
        again = client.post(f"{BASE}/topup", json={"amount": 100}, headers=headers)
        assert again.status_code == 503 and again.headers["idempotent-replayed"] == "true"
    assert env.balance(alice) == 0


class SilentKyc(kyc_pb2_grpc.KycServiceServicer):  # type: ignore[misc]
    """A kyc that takes the call and never answers on its own (bounded, so that a caller
    without a deadline fails the test instead of hanging it); it notes the time the caller
    gave it."""

    def __init__(self) -> None:
        self.time_remaining: list[float | None] = []

    def CheckLimits(self, request: Any, context: Any) -> Any:
        self.time_remaining.append(context.time_remaining())
        ended = threading.Event()
        context.add_callback(ended.set)  # the call ended: its deadline, or the caller left
        ended.wait(timeout=30)
        return kyc_pb2.CheckLimitsResponse(allowed=True)


def test_kyc_silent_hits_the_deadline_and_fails(env: Env) -> None:
    """A kyc that accepts the call but never answers: the call gives up at its deadline (the
    user's lock is not held for longer) and the transaction FAILS."""
    alice = env.user()
    silent = SilentKyc()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    kyc_pb2_grpc.add_KycServiceServicer_to_server(silent, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with _client_with(env, f"127.0.0.1:{port}", timeout=0.5) as client:
            r = client.post(
                f"{BASE}/topup",
                json={"amount": 100},
                headers={**alice.headers, "Idempotency-Key": str(uuid.uuid4())},
            )
    finally:
        server.stop(grace=None)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "dependency_unavailable", r.text
    assert r.json()["transaction_status"] == "FAILED"
    assert env.txn(r.json()["transaction_id"]).status == Status.FAILED
    assert env.balance(alice) == 0
    # the call carried the configured deadline (0.5 s; the kit's default is 2 s), as kyc saw
    # it — not a clock of ours
    [remaining] = silent.time_remaining
    assert remaining is not None and remaining < 1, remaining
