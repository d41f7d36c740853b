"""Pure fraud rules of the service (no I/O): the vocabulary, input validation, the decision from
the fired rules and the thresholds, the per-user statistics (Welford), the case lifecycle and
the list cursors (services.md §4). The six scoring rules themselves are in
:mod:`mint.fraud.rules`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from mint.contracts.money import MAX_AMOUNT, MIN_AMOUNT
from mint.kit import pagination
from mint.kit.domain import Invalid, Refused

# ---- vocabulary -------------------------------------------------------------------------------

TOPUP, TRANSFER, WITHDRAWAL = "TOPUP", "TRANSFER", "WITHDRAWAL"
TRANSACTION_TYPES: Final = (TOPUP, TRANSFER, WITHDRAWAL)

ALLOW, REVIEW, BLOCK = "ALLOW", "REVIEW", "BLOCK"

OPEN, APPROVED, REJECTED, BLOCKED, CANCELLED = (
    "OPEN",
    "APPROVED",
    "REJECTED",
    "BLOCKED",
    "CANCELLED",
)
CASE_STATUSES: Final = (OPEN, APPROVED, REJECTED, BLOCKED, CANCELLED)

APPROVE = "APPROVE"
#: A reviewer's outcome → the status it closes an OPEN case with.
REVIEW_OUTCOMES: Final = {APPROVE: APPROVED, BLOCK: REJECTED}

MAX_CURRENCY_LENGTH = 3
MAX_NOTES_LENGTH = 2000
MAX_REASON_LENGTH = 1000
MAX_ACTOR_LENGTH = 255


# ---- input ------------------------------------------------------------------------------------


def parse_id(value: str, code: str) -> uuid.UUID:
    """A UUID from a request field; ``Invalid(code)`` when it is not one."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise Invalid(code, f"not a UUID: {value!r}") from None


@dataclass(frozen=True)
class ScoreInput:
    """One money movement to score, validated."""

    transaction_id: uuid.UUID
    type: str
    user_id: uuid.UUID
    recipient_id: uuid.UUID | None
    amount: int
    currency: str
    ip_address: str
    user_country: str
    recipient_is_contact: bool


def score_input(
    *,
    transaction_id: str,
    type: str,
    user_id: str,
    recipient_id: str,
    amount: int,
    currency: str,
    ip_address: str,
    user_country: str,
    recipient_is_contact: bool,
) -> ScoreInput:
    """The request as a :class:`ScoreInput`; ``Invalid`` with the field's stable code."""
    if type not in TRANSACTION_TYPES:
        raise Invalid("invalid_type", f"type must be one of {', '.join(TRANSACTION_TYPES)}")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise Invalid("invalid_amount", f"amount must be in {MIN_AMOUNT}..{MAX_AMOUNT}")
    recipient = None
    if type == TRANSFER:
        recipient = parse_id(recipient_id, "invalid_recipient_id")
    elif recipient_id:
        raise Invalid("invalid_recipient_id", f"a {type} has no recipient_id")
    if len(currency) > MAX_CURRENCY_LENGTH:
        raise Invalid("invalid_currency", "currency is an ISO 4217 code")
    return ScoreInput(
        transaction_id=parse_id(transaction_id, "invalid_transaction_id"),
        type=type,
        user_id=parse_id(user_id, "invalid_user_id"),
        recipient_id=recipient,
        amount=amount,
        currency=currency.upper(),
        ip_address=ip_address.strip(),
        user_country=user_country.strip().upper(),
        recipient_is_contact=recipient_is_contact,
    )


def text_field(value: str, limit: int, code: str) -> str | None:
    """Free text from a request, trimmed; ``None`` when empty."""
    value = value.strip()
    if len(value) > limit:
        raise Invalid(code, f"at most {limit} characters")
    return value or None


# ---- statistics (Welford) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Running statistics of one user's completed transactions of one type: ``count``, ``mean``
    and ``m2`` (the sum of squared deviations from the mean) — Welford's online algorithm."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @property
    def stddev(self) -> float:
        """The *population* standard deviation (``sqrt(m2 / count)``)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    def add(self, amount: int) -> Stats:
        count = self.count + 1
        delta = amount - self.mean
        mean = self.mean + delta / count
        return Stats(count=count, mean=mean, m2=self.m2 + delta * (amount - mean))


def initiator(type: str, sender_id: uuid.UUID | None, recipient_id: uuid.UUID | None) -> uuid.UUID:
    """Whose statistics a transaction counts in: the sender, or a top-up's recipient."""
    user = recipient_id if type == TOPUP else sender_id
    if user is None:
        raise ValueError(f"a {type} without its initiator")
    return user


# ---- the decision -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    """A rule that fired: its name, its score and whether it blocks whatever the total."""

    name: str
    score: int
    force_block: bool


@dataclass(frozen=True)
class Decision:
    decision: str
    score: int
    rules: tuple[str, ...]
    reason: str


def decide(fired: Sequence[Fired], *, review_threshold: int, block_threshold: int) -> Decision:
    """Score = the sum of the fired rules; BLOCK when a force-block rule fired or the score
    reaches the block threshold, REVIEW when it reaches the review threshold, else ALLOW."""
    score = sum(rule.score for rule in fired)
    names = tuple(rule.name for rule in fired)
    listed = ", ".join(f"{rule.name} ({rule.score})" for rule in fired) or "no rule fired"
    forcing = [rule.name for rule in fired if rule.force_block]
    if forcing:
        decision, why = BLOCK, f"force-block rule {', '.join(forcing)}"
    elif score >= block_threshold:
        decision, why = BLOCK, f"score {score} >= block threshold {block_threshold}"
    elif score >= review_threshold:
        decision, why = REVIEW, f"score {score} >= review threshold {review_threshold}"
    else:
        decision, why = ALLOW, f"score {score} < review threshold {review_threshold}"
    return Decision(decision=decision, score=score, rules=names, reason=f"{listed}; {why}")


def case_status(decision: str) -> str | None:
    """The status a scored transaction's case starts in: REVIEW → OPEN, BLOCK → BLOCKED
    (closed at once); ALLOW opens none."""
    return {REVIEW: OPEN, BLOCK: BLOCKED}.get(decision)


# ---- cases ------------------------------------------------------------------------------------


def review_status(outcome: str) -> str:
    """The status a reviewer's outcome closes an OPEN case with."""
    try:
        return REVIEW_OUTCOMES[outcome]
    except KeyError:
        raise Invalid("invalid_outcome", "outcome must be APPROVE or BLOCK") from None


def refuse_review(status: str) -> None:
    """Only an OPEN case is reviewed (the conditional update found it in ``status``)."""
    raise Refused("case_not_open", f"the case is {status}, not OPEN", status=status)


def status_filter(status: str) -> str | None:
    """A ListCases filter: "" = every status."""
    if not status:
        return None
    if status not in CASE_STATUSES:
        raise Invalid("invalid_status", f"status must be one of {', '.join(CASE_STATUSES)}")
    return status


def encode_page_token(created_at: datetime, case_id: uuid.UUID) -> str:
    return pagination.encode_cursor(created_at, case_id)
