"""transactions recovery, the admin gRPC servicer, idempotency expiry and the migration,
against real servers (``transactions_env``)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text
from structlog.testing import capture_logs

from mint.kit import idempotency
from mint.kit.http import create_app
from mint.kit.service import ServiceContext
from mint.transactions import actions
from mint.transactions import store as txn_store
from mint.transactions.domain import Status
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.transactions.service import recover_stuck
from mint.transactions.v1 import transactions_pb2 as tpb
from mint.transactions.v1 import transactions_pb2_grpc as tpb_grpc
from tests.integration.transactions_env import BASE, TOKEN, Env, env, free_port, kyc

__all__ = ["env", "kyc"]  # module-scoped: the real servers (kyc included)

# ---- outages and recovery ---------------------------------------------------------------------


def test_wallet_down_then_recovery_completes_and_replays(env: Env) -> None:
    alice = env.user()
    down = env.settings.model_copy(update={"wallet_grpc": f"127.0.0.1:{free_port()}"})
    down_ctx = ServiceContext(TXN_SERVICE, down, env.db)
    with TestClient(create_app(down_ctx)) as client:
        r = client.post(
            f"{BASE}/topup", json={"amount": 400}, headers={**alice.headers, "Idempotency-Key": "k"}
        )
        assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable"
        assert (
            r.json()["transaction_status"] == "PROCESSING"
        )  # pending: retry with the same key only
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"] == (
            "the wallet did not answer; the transaction will be completed or failed shortly"
        )
        txn_id = r.json()["transaction_id"]
        assert env.txn(txn_id).status == "PROCESSING" and env.events(txn_id) == []
        retry = client.post(
            f"{BASE}/topup", json={"amount": 400}, headers={**alice.headers, "Idempotency-Key": "k"}
        )
        assert (retry.status_code, retry.json()["code"]) == (409, "idempotency_request_in_progress")
    assert actions.recover(env.wire).completed == 0  # too recent to touch
    env.backdate(txn_id)
    report = actions.recover(env.wire)
    assert report.completed >= 1 and env.txn(txn_id).status == "COMPLETED"
    assert env.balance(alice) == 400
    replay = env.post(alice, "/topup", {"amount": 400}, key="k")
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == txn_id and replay.json()["status"] == "COMPLETED"
    assert [e["type"] for e in env.events(txn_id)] == ["transaction.completed"]
    env.backdate(txn_id)
    recover_stuck(env.ctx)  # the job's pass: re-running changes nothing
    assert env.balance(alice) == 400


def test_recovery_fails_refused_and_stale_pending(env: Env) -> None:
    alice, bob = env.user(50), env.user()
    with env.db.session() as s:
        refused = txn_store.create(
            s, user_id=alice.id, type="TRANSFER", amount=60, currency="USD",
            sender_id=alice.id, recipient_id=bob.id, actor="test",
        )  # fmt: skip
        actions.move(s, refused, Status.PROCESSING, actor="test")
    fp = idempotency.fingerprint("POST", f"{BASE}/topup", {"amount": 9})
    idempotency.begin(env.db, alice.id, "stuck", fp)
    with env.db.session() as s:
        stale = txn_store.create(
            s, user_id=alice.id, type="TOPUP", amount=9, currency="USD", sender_id=None,
            recipient_id=alice.id, idempotency_key="stuck", actor=str(alice.id),
        )  # fmt: skip
    orphan_fp = idempotency.fingerprint("POST", f"{BASE}/topup", {"amount": 8})
    idempotency.begin(env.db, alice.id, "orphan", orphan_fp)
    with env.db.session() as s:
        s.execute(text("UPDATE idempotency_keys SET created_at = now() - interval '1 hour'"
                       " WHERE key = 'orphan'"))  # fmt: skip
    env.backdate(refused.id)
    env.backdate(stale.id)
    report = actions.recover(env.wire)
    assert report.failed >= 1 and report.timed_out >= 1 and report.claims_released >= 1
    assert env.txn(refused.id).failure_reason == "insufficient_funds"
    assert (env.txn(stale.id).status, env.txn(stale.id).failure_reason) == (
        "FAILED", "recovery_timeout"
    )  # fmt: skip
    assert [e["type"] for e in env.events(str(stale.id))] == ["transaction.failed"]
    replay = env.post(alice, "/topup", {"amount": 9}, key="stuck")
    assert replay.status_code == 503 and replay.headers["idempotent-replayed"] == "true"
    assert (
        replay.json()["code"] == "recovery_timeout"
        and replay.json()["transaction_status"] == "FAILED"
    )
    assert env.post(alice, "/topup", {"amount": 8}, key="orphan").status_code == 201
    assert env.balance(alice) == 58


# ---- admin gRPC -------------------------------------------------------------------------------


def test_grpc_get_and_list(env: Env) -> None:
    alice, bob = env.user(300), env.user()
    txn = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 30}).json()
    stub = env.service.stub(tpb_grpc.TransactionServiceStub, token=TOKEN)
    got = stub.Get(tpb.GetTransactionRequest(id=txn["id"]))
    assert (got.id, got.status, got.amount, got.sender_id) == (
        txn["id"], "COMPLETED", 30, str(alice.id)
    )  # fmt: skip
    assert got.created_at == txn["created_at"] and got.user_id == str(alice.id)
    assert got.fraud.decision == "ALLOW" and not got.HasField("merchant")
    listed = stub.List(tpb.ListTransactionsRequest(user_id=str(bob.id)))
    assert [t.id for t in listed.items] == [txn["id"]] and listed.next_cursor == ""
    with pytest.raises(grpc.RpcError) as missing:
        stub.Get(tpb.GetTransactionRequest(id=str(uuid.uuid4())))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "transaction_not_found"
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    listings = [
        ({"limit": 101}, "invalid_limit"),
        ({"status": "DONE"}, "invalid_status"),
        ({"type": "GIFT"}, "invalid_type"),
        ({"user_id": "bob"}, "invalid_user_id"),
        ({"cursor": "bogus"}, "invalid_cursor"),
    ]
    for fields, details in listings:
        with pytest.raises(grpc.RpcError) as refused:
            stub.List(tpb.ListTransactionsRequest(**fields))
        assert (refused.value.code(), refused.value.details()) == (invalid, details), fields
    with pytest.raises(grpc.RpcError) as malformed:
        stub.Get(tpb.GetTransactionRequest(id="not-a-uuid"))
    assert malformed.value.code() == grpc.StatusCode.NOT_FOUND


def test_idempotency_rows_expire(env: Env) -> None:
    user = uuid.uuid4()
    fp = idempotency.fingerprint("POST", "/x", {"a": 1})
    assert isinstance(idempotency.begin(env.db, user, "old", fp), idempotency.Claimed)
    with env.db.session() as s:
        idempotency.complete(s, user, "old", 201, {"done": True})
    assert idempotency.begin(env.db, user, "old", fp) == idempotency.Replay(201, {"done": True})
    with env.db.session() as s:
        s.execute(
            text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
                 " WHERE user_id = :u"), {"u": user},
        )  # fmt: skip
    # Expired counts as absent: a new request (even another body) may take the key.
    other = idempotency.fingerprint("POST", "/x", {"a": 2})
    assert isinstance(idempotency.begin(env.db, user, "old", other), idempotency.Claimed)
    idempotency.abandon(env.db, user, "old")
    assert isinstance(idempotency.begin(env.db, user, "gone", fp), idempotency.Claimed)
    with env.db.session() as s:
        s.execute(
            text("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
                 " WHERE user_id = :u"), {"u": user},
        )  # fmt: skip
    assert idempotency.cleanup(env.db) >= 1
    with env.db.session() as s:
        left = s.execute(text("SELECT count(*) FROM idempotency_keys WHERE user_id = :u"),
                         {"u": user}).scalar()  # fmt: skip
    assert left == 0


def test_a_transaction_stuck_past_the_threshold_is_signalled(env: Env) -> None:
    """A wallet that never answers leaves a transaction PROCESSING; past
    ``stuck_alert_seconds`` every recovery pass logs ``transactions_stuck`` at ERROR and sets
    ``mint_transactions_stuck`` — until the wallet answers and it settles."""
    alice = env.user()
    down = env.settings.model_copy(update={"wallet_grpc": f"127.0.0.1:{free_port()}"})
    down_ctx = ServiceContext(TXN_SERVICE, down, env.db)
    with TestClient(create_app(down_ctx)) as client:
        r = client.post(
            f"{BASE}/topup", json={"amount": 7}, headers={**alice.headers, "Idempotency-Key": "s"}
        )
    assert r.json()["transaction_status"] == "PROCESSING"
    txn_id = r.json()["transaction_id"]

    def stuck_gauge() -> float:
        value = REGISTRY.get_sample_value("mint_transactions_stuck", {"status": "PROCESSING"})
        return value or 0.0

    recover_stuck(down_ctx)
    before = stuck_gauge()
    env.backdate(txn_id, seconds=int(env.settings.stuck_alert_seconds) + 60)
    with capture_logs() as logs:
        recover_stuck(down_ctx)  # the wallet still does not answer: it stays, and is signalled
    assert env.txn(txn_id).status == "PROCESSING"
    assert stuck_gauge() == before + 1
    alerts = [e for e in logs if e["event"] == "transactions_stuck"]
    assert len(alerts) == 1 and alerts[0]["log_level"] == "error"
    assert alerts[0]["PROCESSING"] >= 1
    recover_stuck(env.ctx)  # the wallet answers: settled, no longer counted
    assert env.txn(txn_id).status == "COMPLETED"
    assert stuck_gauge() == before
