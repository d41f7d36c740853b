"""Pure rules of the transaction engine (services.md §3): the state machine, input rules, the
refusal each failure reason is, and the wallet accounts of a movement.

No I/O here; ``tests/unit/test_state_machine.py`` covers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from mint.contracts.money import CURRENCY, FUNDING_ACCOUNT, PAYOUT_ACCOUNT, user_account
from mint.kit import pagination
from mint.kit.domain import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    Unavailable,
)


class Status(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REVERSED = "REVERSED"


class TxnType(StrEnum):
    TOPUP = "TOPUP"
    TRANSFER = "TRANSFER"
    WITHDRAWAL = "WITHDRAWAL"


# ---- the state machine: the one place transitions are decided ---------------------------------

TRANSITIONS: Final[Mapping[Status, frozenset[Status]]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.FAILED, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.COMPLETED, Status.FAILED}),
    Status.COMPLETED: frozenset({Status.REVERSED}),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REVERSED: frozenset(),
}
FINAL: Final = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
#: The statuses a request's final answer is known in (COMPLETED may still be reversed later).
SETTLED: Final = FINAL | {Status.COMPLETED}


class IllegalTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"illegal transition {current} -> {target}")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    try:
        return Status(target) in TRANSITIONS[Status(current)]
    except ValueError:
        return False


def transition(current: str, target: str) -> Status:
    """The new status, or ``IllegalTransition`` when the machine forbids the edge."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return Status(target)


def is_final(status: str) -> bool:
    return Status(status) in FINAL


def is_settled(status: str) -> bool:
    return Status(status) in SETTLED


# ---- input rules ------------------------------------------------------------------------------

DEFAULT_PAGE: Final = pagination.DEFAULT_PAGE
MAX_PAGE: Final = pagination.MAX_PAGE


def check_currency(currency: str | None) -> str:
    """The deployment's currency; anything else is refused ``unsupported_currency``."""
    if currency is None or currency == CURRENCY:
        return CURRENCY
    raise Refused("unsupported_currency", f"only {CURRENCY} is supported")


def is_self_transfer(txn_type: str, sender_id: UUID | None, recipient_id: UUID | None) -> bool:
    return txn_type == TxnType.TRANSFER and sender_id == recipient_id


def under_review(fraud: Mapping[str, Any] | None) -> bool:
    """A PENDING transaction the fraud check sent to review waits for the reviewer."""
    return (fraud or {}).get("decision") == "REVIEW"


def holds_funds(txn_type: str, fraud: Mapping[str, Any] | None) -> bool:
    """A transaction sent to review holds its amount on the payer's account until the review
    settles it (captured or released). A top-up has no payer account to hold: its money comes
    from outside, and an approval posts it as any top-up."""
    return under_review(fraud) and txn_type != TxnType.TOPUP


def transaction_not_found() -> NotFound:
    """Also the answer for another user's transaction: its existence is not revealed."""
    return NotFound("transaction_not_found", "transaction not found")


def parse_transaction_id(value: str) -> UUID:
    """A transaction id from a path or a request; anything else names no transaction."""
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise transaction_not_found() from None


def parse_user_id(value: str) -> UUID:
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise Invalid("invalid_user_id", "user_id must be a UUID") from None


def parse_status(value: str) -> Status | None:
    """A status filter (empty: none)."""
    if not value:
        return None
    if value not in Status.__members__:
        raise Invalid("invalid_status", f"unknown status {value!r}")
    return Status(value)


def parse_type(value: str) -> TxnType | None:
    """A type filter (empty: none)."""
    if not value:
        return None
    if value not in TxnType.__members__:
        raise Invalid("invalid_type", f"unknown type {value!r}")
    return TxnType(value)


def page_limit(requested: int) -> int:
    """The page size asked for (0: the default), within ``1..MAX_PAGE``."""
    return pagination.page_size(requested, name="limit")


def encode_cursor(created_at: datetime, txn_id: UUID) -> str:
    return pagination.encode_cursor(created_at, txn_id)


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Inverse of :func:`encode_cursor`; ``Invalid("invalid_cursor")`` when tampered."""
    try:
        return pagination.decode_cursor(cursor, UUID)
    except pagination.InvalidCursor:
        raise Invalid("invalid_cursor", "the cursor is not valid") from None


def check_cancel(status: str, *, initiator: UUID, user_id: UUID) -> None:
    """Only the initiator cancels, and only a transaction the machine lets be cancelled."""
    if initiator != user_id:
        raise Forbidden("forbidden", "only the sender can cancel this transaction")
    if not can_transition(status, Status.CANCELLED):
        raise Conflict("invalid_state", f"a {status} transaction cannot be cancelled")


# ---- failures: what a settled transaction answers ---------------------------------------------

FRAUD_BLOCKED: Final = "fraud_blocked"
LIMIT_EXCEEDED: Final = "limit_exceeded"
RECOVERY_TIMEOUT: Final = "recovery_timeout"
WALLET_REFUSED: Final = "wallet_refused"
#: An admin failed the transaction (``TransactionService.Fail``).
FAILED_BY_ADMIN: Final = "failed_by_admin"

#: failure_reason (a public code, never the wallet's internal reason) → the kind of refusal it
#: is (the edges map a kind to a status once: 403 Forbidden, 404 NotFound, 422 Refused, 503
#: Unavailable).
FAILURE_KINDS: Final[Mapping[str, type[DomainError]]] = {
    "insufficient_funds": Refused,
    "account_frozen": Forbidden,
    "recipient_unavailable": Refused,
    "self_transfer": Refused,
    "recipient_not_found": NotFound,
    "wallet_not_found": NotFound,
    "unsupported_currency": Refused,
    LIMIT_EXCEEDED: Refused,
    FRAUD_BLOCKED: Forbidden,
    RECOVERY_TIMEOUT: Unavailable,
    WALLET_REFUSED: Refused,
    FAILED_BY_ADMIN: Refused,
    "dependency_unavailable": Unavailable,
}

_DETAILS: Final[Mapping[str, str]] = {
    "insufficient_funds": "insufficient available funds",
    "account_frozen": "your account is frozen",
    "recipient_unavailable": "the recipient cannot receive money",
    "self_transfer": "cannot transfer to yourself",
    "recipient_not_found": "recipient not found",
    "wallet_not_found": "you have no wallet yet",
    "unsupported_currency": f"only {CURRENCY} is supported",
    LIMIT_EXCEEDED: "transaction limit exceeded",
    FRAUD_BLOCKED: "the transaction was blocked",
    RECOVERY_TIMEOUT: "the transaction could not be completed in time",
    WALLET_REFUSED: "the wallet refused the transaction",
    FAILED_BY_ADMIN: "the transaction was failed by an operator",
    "dependency_unavailable": "a service the transaction depends on is unavailable; retry later",
}

#: Wallet refusal (its error code) → failure_reason. A frozen recipient is
#: ``recipient_unavailable`` so the sender never learns why.
WALLET_REASONS: Final[Mapping[str, str]] = {
    "insufficient_funds": "insufficient_funds",
    "sender_frozen": "account_frozen",
    "recipient_frozen": "recipient_unavailable",
    "self_transfer": "self_transfer",
    "unsupported_currency": "unsupported_currency",
}


def failure_reason_for_wallet(code: str, txn_type: str = TxnType.TRANSFER) -> str:
    """The public failure reason for a wallet refusal (``code`` or ``code: text``).

    In a top-up the user is the wallet's *recipient*: their own frozen account is
    ``account_frozen`` (nothing to hide from them), not ``recipient_unavailable``."""
    code = code.partition(": ")[0].strip()
    if txn_type == TxnType.TOPUP and code == "recipient_frozen":
        return "account_frozen"
    return WALLET_REASONS.get(code, WALLET_REFUSED)


def refusal(
    status: str,
    failure_reason: str | None,
    transaction_id: UUID,
    extra: Mapping[str, Any] | None = None,
) -> DomainError | None:
    """What a settled transaction answers the request that created it: ``None`` when the money
    moved (COMPLETED, REVERSED) or the transaction awaits its review (PENDING), else the
    refusal naming the transaction — its failure reason (with ``extra`` fields such as a
    limit's) or ``transaction_cancelled``. A 503 also carries
    ``transaction_status: FAILED``: nothing moved, and a new key is safe (see
    :func:`wallet_silent`)."""
    if status in (Status.COMPLETED, Status.REVERSED, Status.PENDING):
        return None  # moved, or (PENDING) accepted for review: not refused
    named = {**(extra or {}), "transaction_id": str(transaction_id)}
    if status == Status.FAILED:
        reason = failure_reason or WALLET_REFUSED
        kind = FAILURE_KINDS.get(reason, Refused)
        if issubclass(kind, Unavailable):  # a 503 says whether anything may still move
            named["transaction_status"] = Status.FAILED.value
        return kind(reason, _DETAILS.get(reason, reason.replace("_", " ")), **named)
    if status == Status.CANCELLED:
        return Conflict("transaction_cancelled", "the transaction was cancelled", **named)
    raise ValueError(f"no final outcome for status {status}")


def still_processing(transaction_id: UUID) -> Conflict:
    """Someone else (another request, recovery) is moving the transaction right now."""
    return Conflict(
        "idempotency_request_in_progress",
        "the transaction is still being processed",
        transaction_id=str(transaction_id),
    )


def wallet_silent(transaction_id: UUID) -> Unavailable:
    """The wallet gave no definite answer: the transaction stays PROCESSING for recovery, and
    the client retries with the same key (which answers 409 until the outcome is known, then
    replays it) — never with a new one, which could pay twice."""
    return Unavailable(
        "dependency_unavailable",
        "the wallet did not answer; the transaction will be completed or failed shortly",
        transaction_id=str(transaction_id),
        transaction_status=Status.PROCESSING.value,
    )


# ---- admin actions (TransactionService Reverse / ForceComplete / Fail) -------------------------

MAX_ADMIN_REASON: Final = 1000


def check_admin_action(reason: str, actor_id: str) -> tuple[str, str]:
    """(reason, actor) of an admin action: a reason is required (it is recorded on the
    transition) and the actor is the admin's user id."""
    reason = reason.strip()
    if not reason:
        raise Invalid("reason_required", "an admin action needs a reason")
    if len(reason) > MAX_ADMIN_REASON:
        raise Invalid("invalid_reason", f"the reason is limited to {MAX_ADMIN_REASON} characters")
    try:
        actor = str(UUID(actor_id))
    except (ValueError, TypeError, AttributeError):
        raise Invalid("invalid_actor_id", "actor_id must be the admin's user id") from None
    return reason, actor


def reversal_id(transaction_id: UUID) -> str:
    """The wallet reversal id of a transaction: derived from it, so a retried ``Reverse``
    (after an unknown answer, or a crash) never posts a second mirror entry."""
    return f"reversal:{transaction_id}"


def invalid_state(status: str, action: str) -> Refused:
    return Refused("invalid_state", f"cannot {action} a {status} transaction", status=status)


def check_reversible(txn_type: str, status: str) -> None:
    """Only a COMPLETED transfer is reversed (a top-up or withdrawal crossed the platform's
    edge: money that left or came from outside is not taken back by a ledger entry)."""
    if txn_type != TxnType.TRANSFER or status != Status.COMPLETED:
        raise invalid_state(f"{status} {txn_type}", "reverse")


def check_admin_settle(status: str, fraud: Mapping[str, Any] | None, action: str) -> None:
    """ForceComplete and Fail act on non-final transactions the reviewer does not own: a
    PENDING transaction under REVIEW is settled by its review (or expiry) only."""
    if status not in (Status.PENDING, Status.PROCESSING):
        raise invalid_state(status, action)
    if status == Status.PENDING and under_review(fraud):
        raise Refused("under_review", "the transaction waits for its fraud review")


def transfer_posted(transaction_id: UUID) -> Refused:
    """``Fail`` refused: the wallet posted the transfer, the money moved (ForceComplete)."""
    return Refused(
        "transfer_posted",
        "the wallet posted this transaction's transfer; complete it instead",
        transaction_id=str(transaction_id),
    )


def reversal_refused(code: str, transaction_id: UUID) -> Refused:
    """The wallet declined a reversal (``reversal_insufficient_funds``: the recipient has spent
    the money); nothing moved and the transaction stays COMPLETED."""
    detail = (
        "the recipient's available balance cannot cover the reversal"
        if code == "reversal_insufficient_funds"
        else "the wallet refused the reversal"
    )
    return Refused(code, detail, transaction_id=str(transaction_id))


def wallet_unavailable(transaction_id: UUID, status: str) -> Unavailable:
    """An admin action the wallet gave no answer to: the transaction is left in ``status``
    (safe to retry: every wallet call is idempotent by an id derived from the transaction)."""
    return Unavailable(
        "dependency_unavailable",
        "the wallet did not answer; retry the action",
        transaction_id=str(transaction_id),
        transaction_status=status,
    )


def hold_unconfirmed(transaction_id: UUID) -> Unavailable:
    """The wallet gave no definite answer to a review's hold or release: nothing settled; the
    transaction stays PENDING under review and is retried (the client: with the same key)."""
    return Unavailable(
        "dependency_unavailable",
        "the wallet did not answer; the transaction stays pending and is retried shortly",
        transaction_id=str(transaction_id),
        transaction_status=Status.PENDING.value,
    )


# ---- wallet accounts ---------------------------------------------------------------------------


def accounts_for(
    txn_type: str, sender_id: UUID | None, recipient_id: UUID | None
) -> tuple[str, str]:
    """(from_account, to_account) of the wallet ``Transfer`` for a transaction."""
    if txn_type == TxnType.TOPUP:
        assert recipient_id is not None
        return FUNDING_ACCOUNT, user_account(recipient_id)
    if txn_type == TxnType.WITHDRAWAL:
        assert sender_id is not None
        return user_account(sender_id), PAYOUT_ACCOUNT
    assert sender_id is not None and recipient_id is not None
    return user_account(sender_id), user_account(recipient_id)
