"""The fraud check of a money movement: fraud ``ScoreTransaction`` (services.md §3 "Flow", §4).

fraud down, no answer within the deadline, or an answer that is not a decision →
:class:`CheckFailed` ``dependency_unavailable``: the transaction FAILS (503), it never settles
unscored. The call is idempotent at fraud by transaction id, so a retry never counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import grpc
import structlog

from mint.fraud.v1 import fraud_pb2
from mint.kit.rpc import error_from_rpc
from mint.transactions.checks import CheckFailed, CheckInput, FraudVerdict

log = structlog.get_logger("mint.transactions.scoring")

_DECISIONS: Final = frozenset({"ALLOW", "REVIEW", "BLOCK"})


def score_request(
    txn: CheckInput, *, user_country: str, recipient_is_contact: bool
) -> fraud_pb2.ScoreRequest:
    return fraud_pb2.ScoreRequest(
        transaction_id=str(txn.transaction_id),
        type=txn.type,
        user_id=str(txn.user_id),
        recipient_id=str(txn.recipient_id) if txn.type == "TRANSFER" else "",
        amount=txn.amount,
        currency=txn.currency,
        ip_address=txn.client_ip or "",
        user_country=user_country,
        recipient_is_contact=recipient_is_contact,
    )


def verdict_from_reply(reply: Any) -> FraudVerdict:
    decision = str(reply.decision)
    if decision not in _DECISIONS:
        raise CheckFailed("dependency_unavailable", f"fraud answered no decision: {decision!r}")
    return FraudVerdict(
        decision=decision,  # type: ignore[arg-type]  # checked against the Literal above
        score=max(int(reply.score), 0),
        rules=[str(rule) for rule in reply.rules_fired],
    )


@dataclass
class FraudScoring:
    """:class:`mint.transactions.checks.FraudScorer` backed by fraud ``ScoreTransaction``
    (``stub``: a ``FraudServiceStub``; ``timeout``: the call's deadline — the caller holds the
    user's lock and a database transaction while it waits)."""

    stub: Any
    timeout: float = 2.0

    def score(
        self, txn: CheckInput, *, user_country: str, recipient_is_contact: bool
    ) -> FraudVerdict:
        request = score_request(
            txn, user_country=user_country, recipient_is_contact=recipient_is_contact
        )
        try:
            reply = self.stub.ScoreTransaction(request, timeout=self.timeout)
        except grpc.RpcError as err:
            log.warning("fraud_score_failed", error=repr(error_from_rpc(err)))
            raise CheckFailed("dependency_unavailable", "fraud ScoreTransaction failed") from None
        verdict = verdict_from_reply(reply)
        log.info(
            "fraud_scored",
            transaction_id=str(txn.transaction_id),
            decision=verdict.decision,
            score=verdict.score,
            rules=verdict.rules,
        )
        return verdict
