"""The decision paths of a money movement against the real fraud service (services.md §3 and §4):
ALLOW moves the money, BLOCK fails it (403, ``transaction.fraud_blocked``), REVIEW holds the
amount and answers 202 until the reviewer's decision, the sender's cancel or the review expiry
settles it. The reviewer's decision arrives as ``fraud.case_reviewed``; here the test applies
it through the use case the consumer calls (``actions.apply_review``) — the Kafka path itself
is covered end to end in tests/e2e/test_fraud_review.py."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import grpc
import pytest
from sqlalchemy import update

from mint.fraud.v1 import fraud_pb2
from mint.fraud.v1.fraud_pb2_grpc import FraudServiceStub
from mint.kit import idempotency
from mint.kit.domain import Unavailable
from mint.kit.time import utcnow
from mint.transactions import actions
from mint.transactions.domain import TxnType
from mint.transactions.models import Transaction
from mint.transactions.outcomes import Settled
from mint.transactions.scoring import FraudScoring
from mint.wallet import actions as wallet_actions
from mint.wallet.v1.wallet_pb2_grpc import WalletServiceStub
from tests.integration.transactions_env import BASE, Env, User, env, free_port, kyc

__all__ = ["env", "kyc"]  # module-scoped: the real servers (kyc and fraud included)

#: services.md §4: a transfer above 20 000 to someone who is not a contact scores 50 —
#: REVIEW at the default review threshold (50), below the block threshold (100).
REVIEWED = 20_001
ALLOWED = 20_000


def held(env: Env, u: User) -> tuple[int, int]:
    """(balance, held) of ``u``'s wallet."""
    with env.wallet_db.session() as s:
        wallet = wallet_actions.get_wallet(s, u.id)
        return wallet.balance, wallet.held


def review(env: Env, txn_id: str, *, approve: bool) -> bool:
    with env.db.session() as s:
        return actions.apply_review(
            env.wire, s, uuid.UUID(txn_id), approve=approve, actor=str(uuid.uuid4())
        )


def fraud_stub(env: Env) -> FraudServiceStub:
    return env.fraud.stub(FraudServiceStub)


def test_allow_moves_the_money_and_records_the_verdict(env: Env) -> None:
    alice, bob = env.user(50_000), env.user()
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": ALLOWED})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "COMPLETED"
    assert body["fraud"] == {"decision": "ALLOW", "score": 0, "rules": []}
    assert env.balance(bob) == ALLOWED


def test_block_fails_the_transaction_and_moves_nothing(env: Env) -> None:
    alice, mallory = env.user(50_000), env.user()
    fraud_stub(env).AddSanction(
        fraud_pb2.AddSanctionRequest(user_id=str(mallory.id), reason="test", added_by="t")
    )
    r = env.post(alice, "/transfer", {"recipient_id": str(mallory.id), "amount": 100})
    assert (r.status_code, r.json()["code"]) == (403, "fraud_blocked"), r.text
    txn = env.txn(r.json()["transaction_id"])
    assert txn.status == "FAILED" and txn.failure_reason == "fraud_blocked"
    assert txn.fraud is not None and "sanctioned_recipient" in txn.fraud["rules"]
    types = [e["type"] for e in env.events(str(txn.id))]
    assert types == ["transaction.fraud_blocked"]
    assert env.balance(alice) == 50_000 and env.balance(mallory) == 0


def test_review_holds_the_amount_and_answers_202_until_approved(env: Env) -> None:
    alice, bob = env.user(30_000), env.user()
    key = str(uuid.uuid4())
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": REVIEWED}, key=key)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "PENDING" and body["fraud"]["decision"] == "REVIEW"
    assert "new_recipient_large" in body["fraud"]["rules"]
    assert held(env, alice) == (30_000, REVIEWED)
    assert [e["type"] for e in env.events(body["id"])] == ["transaction.review_required"]
    # a replay answers what the request answered
    again = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": REVIEWED}, key=key)
    assert (again.status_code, again.json()["id"]) == (202, body["id"])

    # the held money cannot be spent twice
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 10_000})
    assert (r.status_code, r.json()["code"]) == (422, "insufficient_funds"), r.text

    assert review(env, body["id"], approve=True)
    txn = env.txn(body["id"])
    assert txn.status == "COMPLETED"
    assert held(env, alice) == (30_000 - REVIEWED, 0)
    assert env.balance(bob) == REVIEWED
    assert [e["type"] for e in env.events(body["id"])] == [
        "transaction.review_required",
        "transaction.completed",
    ]
    # a repeated or late decision changes nothing
    assert not review(env, body["id"], approve=True)
    assert not review(env, body["id"], approve=False)
    assert env.balance(bob) == REVIEWED and env.txn(body["id"]).status == "COMPLETED"


def test_review_blocked_by_the_reviewer_releases_the_hold(env: Env) -> None:
    alice, bob = env.user(30_000), env.user()
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": REVIEWED})
    assert r.status_code == 202, r.text
    assert review(env, r.json()["id"], approve=False)
    txn = env.txn(r.json()["id"])
    assert txn.status == "CANCELLED"
    assert held(env, alice) == (30_000, 0) and env.balance(bob) == 0
    assert [e["type"] for e in env.events(str(txn.id))][-1] == "transaction.cancelled"
    assert not review(env, str(txn.id), approve=True)  # out of order: nothing moves
    assert env.balance(bob) == 0


def test_the_sender_cancels_a_review_and_the_hold_is_released(env: Env) -> None:
    alice, bob = env.user(30_000), env.user()
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": REVIEWED})
    txn_id = r.json()["id"]
    assert env.client.post(f"{BASE}/{txn_id}/cancel", headers=bob.headers).status_code == 403
    r = env.client.post(f"{BASE}/{txn_id}/cancel", headers=alice.headers)
    assert (r.status_code, r.json()["status"]) == (200, "CANCELLED"), r.text
    assert held(env, alice) == (30_000, 0)
    assert not review(env, txn_id, approve=True)
    assert env.balance(bob) == 0


def test_an_unreviewed_hold_expires_after_the_review_window(env: Env) -> None:
    alice, bob = env.user(30_000), env.user()
    fresh = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 5_000}).json()
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": REVIEWED})
    txn_id = r.json()["id"]
    hours = env.wire.limits.current.fraud.review_hold_hours
    # Back-dated: opened one second short of the window → still waiting.
    _open_review_at(env, txn_id, utcnow() - timedelta(hours=hours) + timedelta(seconds=1))
    actions.recover(env.wire)
    assert env.txn(txn_id).status == "PENDING"
    _open_review_at(env, txn_id, utcnow() - timedelta(hours=hours, seconds=1))
    report = actions.recover(env.wire)
    assert report.reviews_expired >= 1
    txn = env.txn(txn_id)
    assert txn.status == "CANCELLED"
    assert held(env, alice) == (30_000 - 5_000, 0)
    assert env.txn(fresh["id"]).status == "COMPLETED"


def _open_review_at(env: Env, txn_id: str, at: datetime) -> None:
    with env.db.session() as s:
        s.execute(
            update(Transaction)
            .where(Transaction.id == uuid.UUID(txn_id))
            .values(review_opened_at=at)
        )


def test_a_review_hold_the_wallet_does_not_answer_is_placed_by_recovery(env: Env) -> None:
    """The wallet gives no answer to the review's hold: 503 naming the PENDING transaction;
    recovery re-issues the idempotent hold and opens the review; the client's retry with the
    same key then gets the 202."""
    alice, bob = env.user(30_000), env.user()
    dead = grpc.insecure_channel(f"127.0.0.1:{free_port()}")
    silent = replace(env.wire, wallet=replace(env.wire.wallet, stub=WalletServiceStub(dead)))
    key = str(uuid.uuid4())
    new = actions.NewTransaction(
        user_id=alice.id, type=TxnType.TRANSFER, amount=REVIEWED, currency=None,
        sender_id=alice.id, recipient_id=bob.id,
    )  # fmt: skip
    with pytest.raises(Unavailable) as raised:
        actions.submit(silent, new, key, "fingerprint-1")
    txn_id = raised.value.extra["transaction_id"]
    assert raised.value.extra["transaction_status"] == "PENDING"
    assert held(env, alice) == (30_000, 0)
    r = env.client.post(f"{BASE}/{txn_id}/cancel", headers=alice.headers)
    assert r.status_code == 409  # not before its hold is confirmed
    env.backdate(txn_id)
    assert actions.recover(env.wire).reviews_opened == 1
    assert held(env, alice) == (30_000, REVIEWED)
    assert env.txn(txn_id).review_opened_at is not None
    replay = actions.submit(env.wire, new, key, "fingerprint-1")
    assert isinstance(replay, idempotency.Replay) and replay.status == 202
    # The original request, slower than all of that, answers what its key replays — even once
    # a reviewer has blocked the transaction meanwhile.
    assert review(env, txn_id, approve=False) and env.txn(txn_id).status == "CANCELLED"
    late = actions._open_review(env.wire, env.txn(txn_id), str(alice.id))
    assert isinstance(late, idempotency.Replay)
    assert (late.status, late.body) == (replay.status, replay.body)
    assert held(env, alice) == (30_000, 0)


def test_fraud_down_fails_the_transaction_with_503_and_moves_nothing(env: Env) -> None:
    alice, bob = env.user(10_000), env.user()
    dead = FraudServiceStub(grpc.insecure_channel(f"127.0.0.1:{free_port()}"))
    down = replace(env.wire, checks=replace(env.wire.checks, fraud=FraudScoring(dead, 1.0)))
    new = actions.NewTransaction(
        user_id=alice.id, type=TxnType.TRANSFER, amount=100, currency=None,
        sender_id=alice.id, recipient_id=bob.id,
    )  # fmt: skip
    settled = actions.submit(down, new, str(uuid.uuid4()), "fingerprint-2")
    assert isinstance(settled, Settled)
    refusal = settled.refusal()
    assert refusal is not None and refusal.code == "dependency_unavailable"
    assert settled.transaction.status == "FAILED"
    assert env.balance(alice) == 10_000 and env.balance(bob) == 0


def test_withdrawal_moves_money_to_payout(env: Env) -> None:
    alice = env.user(10_000)
    r = env.post(alice, "/withdraw", {"amount": 2_500})
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "WITHDRAWAL" and r.json()["fraud"]["decision"] == "ALLOW"
    assert env.balance(alice) == 7_500
