"""transactions over HTTP against real servers (``transactions_env``): the money path,
Idempotency-Key handling, refusals, object-level authorisation, listing and cancel."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from mint.kit import idempotency
from mint.transactions import store as txn_store
from mint.transactions.models import Transaction, Transition
from mint.wallet import actions as wallet_actions
from tests.integration.transactions_env import BASE, Env, env, kyc

__all__ = ["env", "kyc"]  # module-scoped: the real servers (kyc included)

# ---- the money path ---------------------------------------------------------------------------


def test_topup_then_transfer_moves_money_once(env: Env) -> None:
    alice, bob = env.user(), env.user()
    r = env.post(alice, "/topup", {"amount": 10_000, "currency": "USD", "description": "card"})
    assert r.status_code == 201, r.text
    top = r.json()
    assert (top["type"], top["status"], top["amount"]) == ("TOPUP", "COMPLETED", 10_000)
    assert (top["sender_id"], top["recipient_id"]) == (None, str(alice.id))
    assert top["fraud"] == {"decision": "ALLOW", "score": 0, "rules": []}
    body = {"recipient_id": str(bob.id), "amount": 2_500, "description": "dinner",
            "merchant": "Luigi's", "category": "FOOD"}  # fmt: skip
    r = env.post(alice, "/transfer", body)
    assert r.status_code == 201, r.text
    txn = r.json()
    assert (txn["status"], txn["sender_id"], txn["recipient_id"]) == (
        "COMPLETED", str(alice.id), str(bob.id)
    )  # fmt: skip
    assert txn["completed_at"] and txn["failure_reason"] is None and txn["category"] == "FOOD"
    assert (env.balance(alice), env.balance(bob)) == (7_500, 2_500)
    # One outcome event, carrying the transaction exactly as the API returned it.
    events = env.events(txn["id"])
    assert [e["type"] for e in events] == ["transaction.completed"]
    assert events[0]["data"] == txn and events[0]["key"] == str(alice.id)
    assert events[0]["actor"] == str(alice.id) and events[0]["topic"] == "transaction.events"
    with env.db.session() as s:
        steps = s.execute(
            select(Transition.from_status, Transition.to_status)
            .where(Transition.transaction_id == uuid.UUID(txn["id"]))
            .order_by(Transition.id)
        ).all()
    assert [tuple(x) for x in steps] == [
        (None, "PENDING"), ("PENDING", "PROCESSING"), ("PROCESSING", "COMPLETED")
    ]  # fmt: skip
    r = env.post(alice, "/withdraw", {"amount": 500})
    assert r.status_code == 201 and r.json()["type"] == "WITHDRAWAL"
    assert r.json()["recipient_id"] is None and env.balance(alice) == 7_000


def test_idempotency_key_required_and_checked(env: Env) -> None:
    alice = env.user()
    r = env.post(alice, "/topup", {"amount": 100}, key=None)
    assert r.status_code == 400 and r.json()["code"] == "idempotency_key_required"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = env.post(alice, "/topup", {"amount": 100}, key="x" * 256)
    assert r.status_code == 400 and r.json()["code"] == "invalid_idempotency_key"
    assert env.balance(alice) == 0


def test_replay_and_reuse(env: Env) -> None:
    alice, bob = env.user(5_000), env.user()
    body = {"recipient_id": str(bob.id), "amount": 1_000}
    first = env.post(alice, "/transfer", body, key="pay-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = env.post(alice, "/transfer", {"amount": 1_000, "recipient_id": str(bob.id)}, "pay-1")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    reused = env.post(alice, "/transfer", {**body, "amount": 999}, key="pay-1")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert (env.balance(alice), env.balance(bob)) == (4_000, 1_000)
    # The same key is another user's own key.
    carol = env.user(1_000)
    other = env.post(carol, "/transfer", body, key="pay-1")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    with env.db.session() as s:
        rows = s.scalars(select(Transaction).where(Transaction.idempotency_key == "pay-1")).all()
    assert len(rows) == 2


def test_duplicate_in_flight_is_409(env: Env) -> None:
    alice = env.user()
    path, body = f"{BASE}/topup", {"amount": 700}
    fp = idempotency.fingerprint("POST", path, body)
    # Another request with this key has claimed it and is still running.
    assert isinstance(idempotency.begin(env.db, alice.id, "busy", fp), idempotency.Claimed)
    r = env.post(alice, "/topup", body, key="busy")
    assert r.status_code == 409 and r.json()["code"] == "idempotency_request_in_progress"
    assert env.post(alice, "/topup", {"amount": 1}, key="busy").status_code == 422
    assert env.balance(alice) == 0


def test_concurrent_duplicates_move_money_once(env: Env) -> None:
    alice = env.user()

    def one(_: int) -> tuple[int, str | None]:
        r = env.post(alice, "/topup", {"amount": 300}, key="race")
        return r.status_code, r.headers.get("idempotent-replayed")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(8)))
    fresh = [r for r in results if r == (201, None)]
    assert len(fresh) == 1, results
    assert all(r in {(201, "true"), (409, None)} for r in results if r != (201, None)), results
    assert env.balance(alice) == 300


def test_insufficient_funds_fails_with_an_outcome_event(env: Env) -> None:
    alice, bob = env.user(100), env.user()
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 101}, key="too-much")
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "insufficient_funds"
    txn = env.get(alice, f"/{problem['transaction_id']}").json()
    assert (txn["status"], txn["failure_reason"]) == ("FAILED", "insufficient_funds")
    events = env.events(txn["id"])
    assert [e["type"] for e in events] == ["transaction.failed"] and events[0]["data"] == txn
    replay = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 101}, "too-much")
    assert replay.status_code == 422 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == problem
    assert (env.balance(alice), env.balance(bob)) == (100, 0)
    r = env.post(alice, "/withdraw", {"amount": 101})
    assert r.status_code == 422 and r.json()["code"] == "insufficient_funds"


UNSUPPORTED = "unsupported_currency"


def test_refusals(env: Env) -> None:
    alice, bob = env.user(1_000), env.user()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"recipient_id": str(alice.id), "amount": 1}, 422, "self_transfer"),
        ({"recipient_id": str(uuid.uuid4()), "amount": 1}, 404, "recipient_not_found"),
        (
            {"recipient_id": str(bob.id), "amount": 1, "currency": "EUR"},
            422,
            "unsupported_currency",
        ),
        ({"recipient_id": str(bob.id), "amount": 0}, 422, "validation_error"),
        ({"recipient_id": str(bob.id), "amount": 1, "category": "CARS"}, 422, "validation_error"),
        ({"recipient_id": str(bob.id), "amount": 1, "tip": 5}, 422, "validation_error"),
        ({"recipient_id": "bob", "amount": 1}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = env.post(alice, "/transfer", body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
    with env.wallet_db.session() as s:
        wallet_actions.set_frozen(s, bob.id, True)
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 1})
    assert (r.status_code, r.json()["code"]) == (422, "recipient_unavailable")
    assert env.txn(r.json()["transaction_id"]).failure_reason == "recipient_unavailable"
    r = env.post(bob, "/transfer", {"recipient_id": str(alice.id), "amount": 1})
    assert (r.status_code, r.json()["code"]) == (403, "account_frozen")
    assert env.balance(alice) == 1_000


def test_reads_are_for_the_parties_only(env: Env) -> None:
    alice, bob, eve = env.user(1_000), env.user(), env.user()
    txn = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 10}).json()
    for party in (alice, bob):
        assert env.get(party, f"/{txn['id']}").json() == txn
    for path in (f"/{txn['id']}", "/not-a-uuid", f"/{uuid.uuid4()}"):
        r = env.get(eve, path)
        assert (r.status_code, r.json()["code"]) == (404, "transaction_not_found")
    assert env.get(eve).json() == {"items": [], "next_cursor": None}
    assert env.client.get(f"{BASE}/{txn['id']}").status_code == 401
    r = env.client.post(f"{BASE}/{txn['id']}/cancel", headers=eve.headers)
    assert r.status_code == 404


def test_list_pagination_and_filters(env: Env) -> None:
    alice, bob = env.user(), env.user()
    ids = [env.post(alice, "/topup", {"amount": 100 + i}).json()["id"] for i in range(5)]
    ids.append(
        env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 1}).json()["id"]
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = env.get(alice, limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen += [t["id"] for t in page["items"]]
        pages += 1
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ids[::-1] and pages == 3
    assert len(env.get(alice).json()["items"]) == 6
    assert [t["id"] for t in env.get(alice, type="TRANSFER").json()["items"]] == [ids[-1]]
    assert [t["id"] for t in env.get(bob).json()["items"]] == [ids[-1]]
    assert env.get(alice, status="FAILED").json()["items"] == []
    assert len(env.client.get(f"{BASE}/", headers=alice.headers).json()["items"]) == 6
    for params in ({"limit": 101}, {"limit": 0}, {"status": "DONE"}, {"cursor": "bogus"}):
        assert env.get(alice, **params).status_code == 422, params


def test_cancel(env: Env) -> None:
    alice, bob = env.user(1_000), env.user()
    done = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 5}).json()
    r = env.client.post(f"{BASE}/{done['id']}/cancel", headers=alice.headers)
    assert (r.status_code, r.json()["code"]) == (409, "invalid_state")
    with env.db.session() as s:
        pending = txn_store.create(
            s, user_id=alice.id, type="TRANSFER", amount=5, currency="USD",
            sender_id=alice.id, recipient_id=bob.id, actor=str(alice.id),
        )  # fmt: skip
    r = env.client.post(f"{BASE}/{pending.id}/cancel", headers=bob.headers, json={})
    assert r.status_code == 403
    r = env.client.post(f"{BASE}/{pending.id}/cancel", headers=alice.headers)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED"
    assert [e["type"] for e in env.events(str(pending.id))] == ["transaction.cancelled"]
    assert env.balance(alice) == 995
