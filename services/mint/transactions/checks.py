"""THE SEAM for the pre-flight checks of a money movement (services.md §3 "Flow").

Two pluggable checks run between PENDING and PROCESSING:

* **limits** — kyc ``CheckLimits`` (usage = the user's other PENDING / PROCESSING / COMPLETED
  transactions of the UTC day and month, computed under a per-user lock). Not wired yet: the
  default :class:`AllowAllLimits` allows everything. Replace it by passing another
  :class:`LimitsChecker` to :class:`mint.transactions.flow.Engine`.
* **fraud** — fraud ``ScoreTransaction``. Not wired yet: the default :class:`AllowAllFraud`
  answers ALLOW (score 0, no rules). REVIEW (hold + 202) arrives with the fraud integration.

``check_limits`` and ``score_fraud`` are the two calls the flow makes; they run inside the
database transaction that moves the transaction out of PENDING, so a checker may take locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol
from uuid import UUID

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class CheckInput:
    """What the checks see of the transaction being decided."""

    transaction_id: UUID
    user_id: UUID
    type: str
    amount: int
    currency: str
    sender_id: UUID | None
    recipient_id: UUID | None
    client_ip: str | None = None


@dataclass(frozen=True)
class LimitDecision:
    allowed: bool
    limit: Literal["per_transaction", "daily", "monthly"] | None = None
    limit_value: int | None = None
    remaining: int | None = None

    def problem_extra(self) -> dict[str, object]:
        return {"limit": self.limit, "limit_value": self.limit_value, "remaining": self.remaining}


@dataclass(frozen=True)
class FraudVerdict:
    decision: Literal["ALLOW", "REVIEW", "BLOCK"]
    score: int = 0
    rules: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"decision": self.decision, "score": self.score, "rules": list(self.rules)}


class LimitsChecker(Protocol):
    def check(self, session: Session, txn: CheckInput) -> LimitDecision: ...


class FraudScorer(Protocol):
    def score(self, session: Session, txn: CheckInput) -> FraudVerdict: ...


class AllowAllLimits:
    """Default limits seam: everything is within limits (kyc ``CheckLimits`` comes later)."""

    def check(self, session: Session, txn: CheckInput) -> LimitDecision:
        return LimitDecision(allowed=True)


class AllowAllFraud:
    """Default fraud seam: every transaction is ALLOW with score 0 (fraud comes later)."""

    def score(self, session: Session, txn: CheckInput) -> FraudVerdict:
        return FraudVerdict(decision="ALLOW", score=0, rules=[])


@dataclass(frozen=True)
class Checks:
    limits: LimitsChecker = field(default_factory=AllowAllLimits)
    fraud: FraudScorer = field(default_factory=AllowAllFraud)


def check_limits(checks: Checks, session: Session, txn: CheckInput) -> LimitDecision:
    """Seam: the limits decision for ``txn`` (default: allowed)."""
    return checks.limits.check(session, txn)


def score_fraud(checks: Checks, session: Session, txn: CheckInput) -> FraudVerdict:
    """Seam: the fraud verdict for ``txn`` (default: ALLOW)."""
    return checks.fraud.score(session, txn)
