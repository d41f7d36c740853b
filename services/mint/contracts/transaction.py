"""``transaction.events`` (producer: transactions) — events.md "transaction".

The data of every type is the transaction object of services.md §3 exactly as the API returns it
(``mint.transactions.schemas.TransactionOut``; tests/unit/test_contracts.py checks they
agree). Each event type pins the ``status`` it is emitted in.
"""

from typing import ClassVar, Literal, Self
from uuid import UUID

from pydantic import model_validator

from mint.contracts.base import Amount, Currency, EventContract, Instant, Nested, NonNegativeInt

TransactionType = Literal["TOPUP", "TRANSFER", "WITHDRAWAL"]
TransactionStatus = Literal["PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED", "REVERSED"]
Category = Literal["FOOD", "TRANSPORT", "ENTERTAINMENT", "UTILITIES", "OTHER"]
FraudDecision = Literal["ALLOW", "REVIEW", "BLOCK"]
ReferenceType = Literal["money_request", "split_share"]


class Reference(Nested):
    """What a transaction settles: a money request or a split share (social)."""

    type: ReferenceType
    id: UUID


class FraudVerdict(Nested):
    """The fraud decision recorded on the transaction."""

    decision: FraudDecision
    score: NonNegativeInt
    rules: tuple[str, ...] = ()


class TransactionObject(EventContract):
    """The transaction object; abstract — each ``transaction.*`` type subclasses it.

    Keyed by the initiator: the sender (transfers, withdrawals), else the recipient (top-ups).
    """

    TOPIC: ClassVar[str] = "transaction.events"
    SOURCE: ClassVar[str] = "transactions"
    SUBJECT_FIELD: ClassVar[str] = "id"
    KEY_FIELD: ClassVar[str] = "sender_id"

    id: UUID
    type: TransactionType
    status: TransactionStatus
    amount: Amount
    currency: Currency
    sender_id: UUID | None = None
    recipient_id: UUID | None = None
    description: str | None = None
    merchant: str | None = None
    category: Category | None = None
    reference: Reference | None = None
    fraud: FraudVerdict | None = None
    failure_reason: str | None = None
    created_at: Instant
    completed_at: Instant | None = None

    @model_validator(mode="after")
    def _parties(self) -> Self:
        """TOPUP: recipient only; WITHDRAWAL: sender only; TRANSFER: both (the table's rule)."""
        needs = {
            "TOPUP": (False, True),
            "WITHDRAWAL": (True, False),
            "TRANSFER": (True, True),
        }[self.type]
        if (self.sender_id is not None, self.recipient_id is not None) != needs:
            sender, recipient = ("set" if need else "null" for need in needs)
            raise ValueError(f"a {self.type} has sender_id {sender} and recipient_id {recipient}")
        return self

    def key(self) -> str:
        user = self.sender_id or self.recipient_id
        return self.subject() if user is None else str(user)


class TransactionCompleted(TransactionObject):
    TYPE: ClassVar[str] = "transaction.completed"

    status: Literal["COMPLETED"]


class TransactionFailed(TransactionObject):
    """Any failure except a fraud block (that is ``transaction.fraud_blocked``)."""

    TYPE: ClassVar[str] = "transaction.failed"

    status: Literal["FAILED"]

    @model_validator(mode="after")
    def _not_fraud(self) -> Self:
        if self.failure_reason == "fraud_blocked":
            raise ValueError("a fraud block is transaction.fraud_blocked, not transaction.failed")
        return self


class TransactionFraudBlocked(TransactionObject):
    TYPE: ClassVar[str] = "transaction.fraud_blocked"

    status: Literal["FAILED"]
    failure_reason: Literal["fraud_blocked"]


class TransactionReviewRequired(TransactionObject):
    TYPE: ClassVar[str] = "transaction.review_required"

    status: Literal["PENDING"]


class TransactionCancelled(TransactionObject):
    TYPE: ClassVar[str] = "transaction.cancelled"

    status: Literal["CANCELLED"]


class TransactionReversed(TransactionObject):
    TYPE: ClassVar[str] = "transaction.reversed"

    status: Literal["REVERSED"]
