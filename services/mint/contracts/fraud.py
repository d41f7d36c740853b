"""``fraud.events`` (producer: fraud) — events.md "fraud"."""

from typing import ClassVar, Literal
from uuid import UUID

from mint.contracts.base import EventContract, NonNegativeInt

#: A REVIEW opens a case; a BLOCK is recorded as a case already closed (services.md §4).
CaseDecision = Literal["REVIEW", "BLOCK"]
ReviewOutcome = Literal["APPROVE", "BLOCK"]


class FraudCaseEvent(EventContract):
    TOPIC: ClassVar[str] = "fraud.events"
    SOURCE: ClassVar[str] = "fraud"
    SUBJECT_FIELD: ClassVar[str] = "case_id"

    case_id: UUID
    transaction_id: UUID
    user_id: UUID


class CaseOpened(FraudCaseEvent):
    TYPE: ClassVar[str] = "fraud.case_opened"

    decision: CaseDecision
    score: NonNegativeInt
    rules: tuple[str, ...]


class CaseReviewed(FraudCaseEvent):
    TYPE: ClassVar[str] = "fraud.case_reviewed"

    outcome: ReviewOutcome
    reviewer_id: UUID
    notes: str | None = None
