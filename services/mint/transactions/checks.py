"""THE SEAM for the pre-flight checks of a money movement (services.md §3 "Flow").

Two pluggable checks run between PENDING and PROCESSING:

* **limits** — kyc ``CheckLimits`` (usage = the user's other PENDING / PROCESSING / COMPLETED
  transactions of the UTC day and month, computed under a per-user lock):
  :class:`mint.transactions.limits.KycLimits`, built by ``wiring.wire``. The flow takes
  the per-user lock before calling it and commits the decision (``counted_at``, PROCESSING)
  before releasing it. :class:`AllowAllLimits` allows everything (tests of other concerns).
* **fraud** — fraud ``ScoreTransaction`` (:class:`mint.transactions.scoring.FraudScoring`),
  given the user's KYC country (answered by ``CheckLimits``) and whether the recipient is one
  of the sender's contacts (:class:`ContactsChecker`; until social exists: never).
  :class:`AllowAllFraud` answers ALLOW (tests of other concerns).

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


class CheckFailed(Exception):
    """A check could not decide (kyc down, no answer in time, a refusal of the request itself):
    the transaction FAILS with ``failure_reason`` — it never settles without its check."""

    def __init__(self, failure_reason: str, detail: str = "") -> None:
        super().__init__(detail or failure_reason)
        self.failure_reason = failure_reason


@dataclass(frozen=True)
class LimitDecision:
    allowed: bool
    limit: Literal["per_transaction", "daily", "monthly"] | None = None
    limit_value: int | None = None
    remaining: int | None = None
    #: the user's KYC country (ISO 3166-1 alpha-2), "" when not given — fraud's geo rule
    country: str = ""

    def refusal_extra(self) -> dict[str, object]:
        """The fields a refusal carries besides its code (the answer shows them)."""
        return {"limit": self.limit, "limit_value": self.limit_value, "remaining": self.remaining}


@dataclass(frozen=True)
class FraudVerdict:
    decision: Literal["ALLOW", "REVIEW", "BLOCK"]
    score: int = 0
    rules: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"decision": self.decision, "score": self.score, "rules": list(self.rules)}


class LimitsChecker(Protocol):
    def check(self, session: Session, txn: CheckInput) -> LimitDecision:
        """The decision for ``txn`` (raises :class:`CheckFailed` when there is none)."""
        ...


class FraudScorer(Protocol):
    def score(
        self, txn: CheckInput, *, user_country: str, recipient_is_contact: bool
    ) -> FraudVerdict:
        """The verdict for ``txn`` (raises :class:`CheckFailed` when there is none)."""
        ...


class ContactsChecker(Protocol):
    def is_contact(self, user_id: UUID, recipient_id: UUID) -> bool:
        """Whether ``recipient_id`` is one of ``user_id``'s contacts; False when unsure."""
        ...


class NoContacts:
    """No social service: nobody is a contact (services.md §3: not a contact when social does
    not answer in time — the rules then treat every recipient as new)."""

    def is_contact(self, user_id: UUID, recipient_id: UUID) -> bool:
        return False


class AllowAllLimits:
    """Everything is within limits (for tests of other concerns)."""

    def check(self, session: Session, txn: CheckInput) -> LimitDecision:
        return LimitDecision(allowed=True)


class AllowAllFraud:
    """Default fraud seam: every transaction is ALLOW with score 0 (fraud comes later)."""

    def score(
        self, txn: CheckInput, *, user_country: str, recipient_is_contact: bool
    ) -> FraudVerdict:
        return FraudVerdict(decision="ALLOW", score=0, rules=[])


@dataclass(frozen=True)
class Checks:
    limits: LimitsChecker = field(default_factory=AllowAllLimits)
    fraud: FraudScorer = field(default_factory=AllowAllFraud)
    contacts: ContactsChecker = field(default_factory=NoContacts)


def check_limits(checks: Checks, session: Session, txn: CheckInput) -> LimitDecision:
    """Seam: the limits decision for ``txn`` (default: allowed)."""
    return checks.limits.check(session, txn)


def score_fraud(checks: Checks, txn: CheckInput, limits: LimitDecision) -> FraudVerdict:
    """Seam: the fraud verdict for ``txn``, given its limits decision (the user's country)."""
    contact = (
        txn.type == "TRANSFER"
        and txn.sender_id is not None
        and txn.recipient_id is not None
        and checks.contacts.is_contact(txn.sender_id, txn.recipient_id)
    )
    return checks.fraud.score(txn, user_country=limits.country, recipient_is_contact=contact)
