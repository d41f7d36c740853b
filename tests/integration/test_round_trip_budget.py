"""The money path's round-trip budget (issue "the money path at production speed"): database
statements and transactions per service database, and gRPC calls, for one transfer and one
top-up, counted on the real servers — a guard that cannot flake, unlike a timing.

The budgets are the counts reached when the hot path was last made faster. A change that adds
a round trip raises the budget here, in the same commit, with the reason next to the number."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import Engine, event

from mint.fraud.v1 import fraud_pb2
from tests.fixtures.fraud_service import Fraud, fraud
from tests.integration.transactions_env import Env, env, kyc

__all__ = ["env", "fraud", "kyc"]


@dataclass(frozen=True)
class Budget:
    """At most this many per request (each database: statements, transactions)."""

    transactions_statements: int
    transactions_transactions: int
    wallet_statements: int
    wallet_transactions: int
    kyc_statements: int
    kyc_transactions: int
    grpc_calls: int


#: transactions, 2 database transactions: (1) the idempotency claim, the user's advisory lock,
#: the usage sum, the row inserted already decided (PROCESSING) with its two transitions (one
#: batched INSERT); (2) the row locked, COMPLETED, its transition, the outbox row, the stored
#: answer. wallet, 1 transaction: the accounts (users locked) in one statement, the whole ledger
#: write (entry, postings, balances) in one, the outbox row. kyc: the user's profile (tier and
#: country, in one read). gRPC: kyc CheckLimits, fraud ScoreTransaction (issue "transaction
#: engine and fraud": every movement is scored; the user's country comes with CheckLimits, so
#: no kyc GetProfile call), wallet Transfer. (Before this budget: transactions 13 statements
#: in 4 transactions, wallet 12, plus a pre-ping round trip on every pooled checkout.)
MONEY_MOVEMENT = Budget(
    transactions_statements=10,
    transactions_transactions=2,
    wallet_statements=3,
    wallet_transactions=1,
    kyc_statements=1,
    kyc_transactions=1,
    grpc_calls=3,
)

#: A top-up has the transfer's shape: the funding account is neither locked nor written (no
#: running balance).
BUDGETS = {"/transfer": MONEY_MOVEMENT, "/topup": MONEY_MOVEMENT}


#: The kit's background threads (mint.kit.runner): what they do is not the request's work.
BACKGROUND = ("outbox-relay", "consumer-", "job-")


def _requests_thread() -> bool:
    return not threading.current_thread().name.startswith(BACKGROUND)


class RoundTrips:
    """Statements and transactions (commits and rollbacks) on each watched engine, made by the
    threads serving requests."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        self.engines = engines
        self.counts: Counter[str] = Counter()

    def _on(self, name: str) -> list[tuple[Engine, str, Any]]:
        def statement(*_: Any) -> None:
            if _requests_thread():
                self.counts[f"{name}_statements"] += 1

        def transaction(*_: Any) -> None:
            if _requests_thread():
                self.counts[f"{name}_transactions"] += 1

        engine = self.engines[name]
        return [
            (engine, "before_cursor_execute", statement),
            (engine, "commit", transaction),
            (engine, "rollback", transaction),
        ]

    @contextmanager
    def watching(self) -> Iterator[Counter[str]]:
        listeners = [item for name in self.engines for item in self._on(name)]
        for engine, name, fn in listeners:
            event.listen(engine, name, fn)
        try:
            yield self.counts
        finally:
            for engine, name, fn in listeners:
                event.remove(engine, name, fn)


def grpc_calls_made() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "mint_grpc_client_calls":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


def measure(env: Env, path: str, body: dict[str, Any], sender: Any) -> dict[str, int]:
    engines = {
        "transactions": env.db.engine,
        "wallet": env.wallet_db.engine,
        "kyc": env.kyc.ctx.database().engine,
    }
    before = grpc_calls_made()
    with RoundTrips(engines).watching() as counts:
        response = env.post(sender, path, body)
    assert response.status_code == 201, response.text
    measured = {key: counts[key] for key in Budget.__dataclass_fields__ if key != "grpc_calls"}
    measured["grpc_calls"] = int(grpc_calls_made() - before)
    return measured


def test_a_transfer_and_a_top_up_stay_within_their_round_trip_budgets(env: Env) -> None:
    alice, bob = env.user(funds=10_000), env.user()
    env.post(alice, "/transfer", {"amount": 1, "recipient_id": str(bob.id)})  # warm the caches
    measured = {
        "/transfer": measure(env, "/transfer", {"amount": 7, "recipient_id": str(bob.id)}, alice),
        "/topup": measure(env, "/topup", {"amount": 11}, bob),
    }
    print(measured)
    over = {
        path: {
            key: (count, getattr(BUDGETS[path], key))
            for key, count in counts.items()
            if count > getattr(BUDGETS[path], key)
        }
        for path, counts in measured.items()
    }
    assert not any(over.values()), f"over budget (measured, budget): {over}"
    # the counts are real: both requests did reach every database and both services
    for counts in measured.values():
        assert all(counts[key] > 0 for key in counts), counts


#: fraud ScoreTransaction, one database transaction: the earlier assessment, the statistics and
#: the recipient's sanction in one query, then the assessment row; a REVIEW adds its case row
#: and the ``fraud.case_opened`` outbox row. (Plus ONE Redis round trip for a transfer's
#: velocity window, a second only when the decision is BLOCK.)
FRAUD_SCORE = {"ALLOW": (2, 1), "REVIEW": (4, 1)}  # (statements, transactions)


def test_a_fraud_score_stays_within_its_round_trip_budget(fraud: Fraud) -> None:
    stub, user = fraud.stub(), str(uuid.uuid4())
    engines = {"fraud": fraud.service.ctx.database().engine}

    def measure_score(amount: int, contact: bool) -> tuple[str, tuple[int, int]]:
        request = fraud_pb2.ScoreRequest(
            transaction_id=str(uuid.uuid4()),
            type="TRANSFER",
            user_id=user,
            recipient_id=str(uuid.uuid4()),
            amount=amount,
            currency="USD",
            recipient_is_contact=contact,
        )
        with RoundTrips(engines).watching() as counts:
            decision = str(stub.ScoreTransaction(request).decision)
        return decision, (counts["fraud_statements"], counts["fraud_transactions"])

    measure_score(1, True)  # warm the caches
    measured = dict([measure_score(7, True), measure_score(20_001, False)])  # ALLOW, REVIEW
    print(measured)
    assert measured.keys() == FRAUD_SCORE.keys()
    for decision, (statements, transactions) in measured.items():
        budget_statements, budget_transactions = FRAUD_SCORE[decision]
        assert 0 < statements <= budget_statements, (decision, statements)
        assert 0 < transactions <= budget_transactions, (decision, transactions)
