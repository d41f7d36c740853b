"""The admin actions of gRPC ``TransactionService`` (services.md §3): Reverse, ForceComplete and
Fail over a real gRPC socket, against the real transactions and wallet servers
(``transactions_env``). Transactions the flow would not leave behind (PROCESSING, PENDING
without a decision, PENDING under review) are made through the store, as recovery's tests do."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from mint.contracts.money import FUNDING_ACCOUNT, user_account
from mint.kit import idempotency
from mint.kit.domain import Unavailable
from mint.kit.service import ServiceContext
from mint.kit.time import utcnow
from mint.transactions import actions
from mint.transactions import store as txn_store
from mint.transactions.domain import Status
from mint.transactions.models import Transaction, Transition
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.transactions.v1 import transactions_pb2 as tpb
from mint.transactions.v1 import transactions_pb2_grpc as tpb_grpc
from mint.transactions.wiring import Wiring
from mint.wallet import actions as wallet_actions
from mint.wallet import store as wallet_store
from tests.integration.transactions_env import BASE, TOKEN, Env, User, env, free_port, kyc

__all__ = ["env", "kyc"]  # module-scoped: the real servers (kyc included)

ADMIN = str(uuid.uuid4())
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
REVIEW = {"decision": "REVIEW", "score": 60, "rules": ["large_amount_deviation"]}


@pytest.fixture(scope="module")
def stub(env: Env) -> tpb_grpc.TransactionServiceStub:
    return env.service.stub(tpb_grpc.TransactionServiceStub, token=TOKEN)


def action(txn_id: object, reason: str = "support ticket 42") -> tpb.AdminActionRequest:
    return tpb.AdminActionRequest(id=str(txn_id), reason=reason, actor_id=ADMIN)


def rpc_error(call: Callable[[Any], Any], request: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call(request)
    return err.value.code(), err.value.details()


def user(env: Env, funds: int = 0) -> User:
    """A user with a wallet holding ``funds`` (posted at the wallet directly: these tests are
    about what an admin does to transactions, not about how they were made)."""
    u = env.user()
    if funds:
        with env.wallet_db.session() as s:
            account = user_account(u.id)
            wallet_actions.transfer(s, f"fund:{u.id}", FUNDING_ACCOUNT, account, funds, "USD", "")
    return u


def transfer(env: Env, sender: User, recipient: User, amount: int) -> str:
    """A COMPLETED transfer, recorded as the flow does: PENDING → PROCESSING → posted at the
    wallet under the transaction id → COMPLETED (with its ``transaction.completed``)."""
    txn_id = stored(env, sender, recipient, amount)
    with env.wallet_db.session() as s:
        wallet_actions.transfer(
            s, str(txn_id), user_account(sender.id), user_account(recipient.id), amount, "USD", ""
        )
    with env.db.session() as s:
        txn = txn_store.lock(s, txn_id)
        assert txn is not None
        actions.move(s, txn, Status.COMPLETED, actor=str(sender.id), reason="posted")
    return str(txn_id)


def stored(
    env: Env,
    sender: User,
    recipient: User,
    amount: int,
    *,
    status: Status = Status.PROCESSING,
    fraud: dict[str, Any] | None = None,
) -> uuid.UUID:
    """A transfer left in ``status`` (PENDING or PROCESSING), as a crash or a review leaves it."""
    with env.db.session() as s:
        txn = txn_store.create(
            s, user_id=sender.id, type="TRANSFER", amount=amount, currency="USD",
            sender_id=sender.id, recipient_id=recipient.id, actor="test",
        )  # fmt: skip
        txn.fraud = fraud
        if status is Status.PROCESSING:
            actions.move(s, txn, Status.PROCESSING, actor="test")
            # left by a crash: older than the window in which its request may still post it
            txn.updated_at = utcnow() - timedelta(hours=1)
        return txn.id


def transitions(env: Env, txn_id: object) -> list[tuple[str | None, str, str, str | None]]:
    with env.db.session() as s:
        rows = s.scalars(
            select(Transition)
            .where(Transition.transaction_id == uuid.UUID(str(txn_id)))
            .order_by(Transition.id)
        )
        return [(t.from_status, t.to_status, t.actor, t.reason) for t in rows]


def event_types(env: Env, txn_id: object) -> list[str]:
    return [e["type"] for e in env.events(str(txn_id))]


def held(env: Env, u: User) -> int:
    with env.wallet_db.session() as s:
        return wallet_actions.get_wallet(s, u.id).held


# ---- Reverse ----------------------------------------------------------------------------------


def test_reverse_restores_both_balances_once_and_records_the_admin(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 500), user(env)
    txn_id = transfer(env, alice, bob, 200)
    reversed_ = stub.Reverse(action(txn_id, "chargeback"))
    assert (reversed_.id, reversed_.status) == (txn_id, "REVERSED")
    assert (env.balance(alice), env.balance(bob)) == (500, 0)
    assert transitions(env, txn_id)[-1] == ("COMPLETED", "REVERSED", ADMIN, "chargeback")
    assert event_types(env, txn_id) == ["transaction.completed", "transaction.reversed"]
    (reversed_event,) = [e for e in env.events(txn_id) if e["type"] == "transaction.reversed"]
    assert reversed_event["actor"] == ADMIN and reversed_event["data"]["status"] == "REVERSED"
    with env.wallet_db.session() as s:  # the mirror entry, under the derived reversal id
        mirror = wallet_store.get_transfer(s, f"reversal:{txn_id}")
    assert mirror is not None and mirror.reversal_of == txn_id
    assert (mirror.from_account, mirror.to_account) == (
        user_account(bob.id),
        user_account(alice.id),
    )

    assert rpc_error(stub.Reverse, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert (env.balance(alice), env.balance(bob)) == (500, 0)  # reversed once
    assert len(transitions(env, txn_id)) == 4  # created, PROCESSING, COMPLETED, REVERSED


def test_a_reverse_retried_after_a_lost_answer_reverses_once(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    """The wallet posted the mirror entry but its answer was lost (the transaction is still
    COMPLETED): the retry re-issues the same reversal id, which the wallet replays."""
    alice, bob = user(env, 500), user(env)
    txn_id = transfer(env, alice, bob, 200)
    with env.wallet_db.session() as s:
        wallet_actions.reverse(s, txn_id, f"reversal:{txn_id}")
    assert stub.Reverse(action(txn_id)).status == "REVERSED"
    assert (env.balance(alice), env.balance(bob)) == (500, 0)


def test_reverse_is_refused_when_the_recipient_has_spent_the_money(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob, carol = user(env, 500), user(env), user(env)
    txn_id = transfer(env, alice, bob, 200)
    transfer(env, bob, carol, 150)
    assert rpc_error(stub.Reverse, action(txn_id)) == (
        FAILED_PRECONDITION, "reversal_insufficient_funds"
    )  # fmt: skip
    assert (env.balance(alice), env.balance(bob), env.balance(carol)) == (300, 50, 150)
    assert env.txn(txn_id).status == "COMPLETED"
    assert "transaction.reversed" not in event_types(env, txn_id)


def test_only_a_completed_transfer_is_reversed(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 100), user(env)
    with env.db.session() as s:
        topup = txn_store.create(
            s, user_id=alice.id, type="TOPUP", amount=50, currency="USD", sender_id=None,
            recipient_id=alice.id, actor="test",
        )  # fmt: skip
        actions.move(s, topup, Status.PROCESSING, actor="test")
        actions.move(s, topup, Status.COMPLETED, actor="test")
    failed = stored(env, alice, bob, 10_000)
    with env.db.session() as s:
        txn = txn_store.lock(s, failed)
        assert txn is not None
        actions.move(s, txn, Status.FAILED, actor="test", failure_reason="insufficient_funds")
    processing = stored(env, alice, bob, 10)
    for txn_id in (topup.id, failed, processing):
        assert rpc_error(stub.Reverse, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert (env.balance(alice), env.balance(bob)) == (100, 0)
    assert env.txn(topup.id).status == "COMPLETED"


# ---- ForceComplete ----------------------------------------------------------------------------


def test_force_complete_posts_once_and_completes(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 300), user(env)
    txn_id = stored(env, alice, bob, 120)
    completed = stub.ForceComplete(action(txn_id, "wallet incident 7"))
    assert (completed.status, completed.completed_at != "") == ("COMPLETED", True)
    assert (env.balance(alice), env.balance(bob)) == (180, 120)
    assert transitions(env, txn_id)[-1] == ("PROCESSING", "COMPLETED", ADMIN, "wallet incident 7")
    assert event_types(env, txn_id) == ["transaction.completed"]
    assert rpc_error(stub.ForceComplete, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert rpc_error(stub.Fail, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert (env.balance(alice), env.balance(bob)) == (180, 120)


def test_force_complete_of_a_pending_transaction_records_both_steps(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 40, status=Status.PENDING)
    assert stub.ForceComplete(action(txn_id, "checked by hand")).status == "COMPLETED"
    assert transitions(env, txn_id)[1:] == [
        ("PENDING", "PROCESSING", ADMIN, "checked by hand"),
        ("PROCESSING", "COMPLETED", ADMIN, "checked by hand"),
    ]
    assert (env.balance(alice), env.balance(bob)) == (60, 40)


def test_force_complete_declined_by_the_wallet_answers_the_failed_transaction(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 30), user(env)
    txn_id = stored(env, alice, bob, 31)
    failed = stub.ForceComplete(action(txn_id))
    assert (failed.status, failed.failure_reason) == ("FAILED", "insufficient_funds")
    assert transitions(env, txn_id)[-1][2:] == (ADMIN, "support ticket 42")
    assert event_types(env, txn_id) == ["transaction.failed"]
    assert (env.balance(alice), env.balance(bob)) == (30, 0)


def test_force_complete_captures_an_approved_review_hold(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    """An approved review left PROCESSING before its capture: the hold is captured (not a
    second Transfer next to a hold that would stay open)."""
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 70, fraud=REVIEW)
    with env.wallet_db.session() as s:
        wallet_actions.place_hold(s, str(txn_id), user_account(alice.id), 70, "USD")
    assert stub.ForceComplete(action(txn_id)).status == "COMPLETED"
    assert (env.balance(alice), held(env, alice), env.balance(bob)) == (30, 0, 70)
    with env.wallet_db.session() as s:
        posted = wallet_store.get_transfer(s, str(txn_id))
    assert posted is not None and posted.kind == "CAPTURE"


def test_an_admin_settlement_answers_the_original_request_on_retry(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    """The idempotency row of the request that created the transaction gets its final answer
    with the admin's settlement, so the client's retry replays it."""
    alice = user(env)
    body = {"amount": 9}
    idempotency.begin(
        env.db, alice.id, "admin-k", idempotency.fingerprint("POST", f"{BASE}/topup", body)
    )
    with env.db.session() as s:
        txn = txn_store.create(
            s, user_id=alice.id, type="TOPUP", amount=9, currency="USD", sender_id=None,
            recipient_id=alice.id, idempotency_key="admin-k", actor=str(alice.id),
        )  # fmt: skip
        actions.move(s, txn, Status.PROCESSING, actor=str(alice.id))
    stub.ForceComplete(action(txn.id))
    replay = env.post(alice, "/topup", body, key="admin-k")
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert (replay.json()["id"], replay.json()["status"]) == (str(txn.id), "COMPLETED")
    assert env.balance(alice) == 9


# ---- Fail -------------------------------------------------------------------------------------


def test_fail_of_a_transaction_never_posted(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 60)
    failed = stub.Fail(action(txn_id, "customer asked"))
    assert (failed.status, failed.failure_reason) == ("FAILED", "failed_by_admin")
    assert transitions(env, txn_id)[-1] == ("PROCESSING", "FAILED", ADMIN, "customer asked")
    assert event_types(env, txn_id) == ["transaction.failed"]
    assert (env.balance(alice), env.balance(bob)) == (100, 0)
    assert rpc_error(stub.Fail, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert rpc_error(stub.ForceComplete, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert (env.balance(alice), env.balance(bob)) == (100, 0)


def test_fail_waits_while_the_transfer_may_still_be_posted(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    """Just moved to PROCESSING, its request may be posting it right now (outside the row
    lock): Fail refuses until recovery's window has passed, and recovery — under the lock —
    settles it instead."""
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 40)
    with env.db.session() as s:
        txn = s.get(Transaction, txn_id)
        assert txn is not None
        txn.updated_at = utcnow()
    assert rpc_error(stub.Fail, action(txn_id)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "idempotency_request_in_progress",
    )
    assert env.txn(txn_id).status == "PROCESSING"
    env.backdate(txn_id)
    assert stub.Fail(action(txn_id)).status == "FAILED"


def test_fail_releases_an_approved_review_hold(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 70, fraud=REVIEW)
    with env.wallet_db.session() as s:
        wallet_actions.place_hold(s, str(txn_id), user_account(alice.id), 70, "USD")
    assert stub.Fail(action(txn_id)).status == "FAILED"
    assert (env.balance(alice), held(env, alice), env.balance(bob)) == (100, 0, 0)


def test_fail_is_refused_once_the_transfer_posted(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    """The wallet posted (the answer was lost): failing it would hide money that moved."""
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 25)
    with env.wallet_db.session() as s:
        wallet_actions.transfer(
            s, str(txn_id), user_account(alice.id), user_account(bob.id), 25, "USD", ""
        )
    assert rpc_error(stub.Fail, action(txn_id)) == (FAILED_PRECONDITION, "transfer_posted")
    assert env.txn(txn_id).status == "PROCESSING" and event_types(env, txn_id) == []
    assert stub.ForceComplete(action(txn_id)).status == "COMPLETED"  # the posting, replayed
    assert (env.balance(alice), env.balance(bob)) == (75, 25)


# ---- guards -----------------------------------------------------------------------------------


def test_a_transaction_under_review_is_left_to_its_reviewer(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 50, status=Status.PENDING, fraud=REVIEW)
    for call in (stub.ForceComplete, stub.Fail):
        assert rpc_error(call, action(txn_id)) == (FAILED_PRECONDITION, "under_review")
    assert rpc_error(stub.Reverse, action(txn_id)) == (FAILED_PRECONDITION, "invalid_state")
    assert env.txn(txn_id).status == "PENDING" and len(transitions(env, txn_id)) == 1
    assert (env.balance(alice), env.balance(bob)) == (100, 0)


def test_requests_without_a_reason_an_admin_or_a_transaction_are_refused(
    env: Env, stub: tpb_grpc.TransactionServiceStub
) -> None:
    alice, bob = user(env, 100), user(env)
    txn_id = stored(env, alice, bob, 10)
    invalid, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    for call in (stub.Reverse, stub.ForceComplete, stub.Fail):
        assert rpc_error(call, action(txn_id, reason="  ")) == (invalid, "reason_required")
        nobody = tpb.AdminActionRequest(id=str(txn_id), reason="r", actor_id="admin")
        assert rpc_error(call, nobody) == (invalid, "invalid_actor_id")
        assert rpc_error(call, action(uuid.uuid4())) == (missing, "transaction_not_found")
        assert rpc_error(call, action("not-a-uuid")) == (missing, "transaction_not_found")
    assert env.txn(txn_id).status == "PROCESSING" and len(transitions(env, txn_id)) == 2


def test_a_silent_wallet_leaves_the_transaction_as_it_was(env: Env) -> None:
    """No answer from the wallet: ``dependency_unavailable``; a reversal leaves it COMPLETED, a
    ForceComplete leaves it PROCESSING for recovery, and nothing moved."""
    alice, bob = user(env, 100), user(env)
    completed = transfer(env, alice, bob, 10)
    pending = stored(env, alice, bob, 20, status=Status.PENDING)
    down = env.settings.model_copy(update={"wallet_grpc": f"127.0.0.1:{free_port()}"})
    silent = ServiceContext(TXN_SERVICE, down, env.db).wired(Wiring)
    attempts = [
        (actions.admin_reverse, uuid.UUID(completed), "COMPLETED"),
        (actions.force_complete, pending, "PROCESSING"),
        (actions.admin_fail, pending, "PROCESSING"),
    ]
    for use_case, txn_id, left in attempts:
        env.backdate(txn_id)  # past the window in which a request may still post it
        with pytest.raises(Unavailable) as err:
            use_case(silent, actions.AdminAction(txn_id, ADMIN, "r"))
        assert err.value.code == "dependency_unavailable"
        assert err.value.extra["transaction_status"] == left
        assert env.txn(txn_id).status == left
    assert (env.balance(alice), env.balance(bob)) == (90, 10)
    env.backdate(pending)  # recovery re-drives what the silent wallet left PROCESSING
    actions.recover(env.wire)
    assert env.txn(pending).status == "COMPLETED"
    assert (env.balance(alice), env.balance(bob)) == (70, 30)
