"""Pure rules of the transaction engine (services.md §3): the state machine, input rules, the
failure-reason → HTTP outcome table, and the transaction object as the API and events carry it.

No I/O here; ``tests/unit/test_state_machine.py`` covers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from mint.kit.errors import Problem, problem_body
from mint.kit.text import no_control_chars


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


class Category(StrEnum):
    FOOD = "FOOD"
    TRANSPORT = "TRANSPORT"
    ENTERTAINMENT = "ENTERTAINMENT"
    UTILITIES = "UTILITIES"
    OTHER = "OTHER"


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


# ---- input rules ------------------------------------------------------------------------------

CURRENCY: Final = "USD"
MIN_AMOUNT: Final = 1
MAX_AMOUNT: Final = 10**12 - 1
DESCRIPTION_MAX: Final = 255
MERCHANT_MAX: Final = 100


Amount = Annotated[StrictInt, Field(ge=MIN_AMOUNT, le=MAX_AMOUNT)]
Description = Annotated[
    StrictStr, Field(max_length=DESCRIPTION_MAX), AfterValidator(no_control_chars)
]
Merchant = Annotated[StrictStr, Field(max_length=MERCHANT_MAX), AfterValidator(no_control_chars)]
#: Documented as the one accepted value; any other is 422 ``unsupported_currency``.
Currency = Annotated[StrictStr, Field(json_schema_extra={"enum": [CURRENCY]})]
CategoryName = Literal["FOOD", "TRANSPORT", "ENTERTAINMENT", "UTILITIES", "OTHER"]


class RequestBody(BaseModel):
    """Request bodies are strict: unknown fields are refused, integers are integers."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TopupBody(RequestBody):
    amount: Amount
    currency: Currency | None = None
    description: Description | None = None


class TransferBody(RequestBody):
    recipient_id: UUID
    amount: Amount
    currency: Currency | None = None
    description: Description | None = None
    merchant: Merchant | None = None
    category: CategoryName | None = None


class WithdrawBody(RequestBody):
    amount: Amount
    currency: Currency | None = None


def check_currency(currency: str | None) -> str:
    """The deployment's currency; anything else is 422 ``unsupported_currency``."""
    if currency is None or currency == CURRENCY:
        return CURRENCY
    raise Problem(422, "unsupported_currency", f"only {CURRENCY} is supported")


# ---- outcomes: failure reason → HTTP status ----------------------------------------------------

#: failure_reason (a public code, never the wallet's internal reason) → HTTP status.
FAILURE_STATUS: Final[Mapping[str, int]] = {
    "insufficient_funds": 422,
    "account_frozen": 403,
    "recipient_unavailable": 422,
    "self_transfer": 422,
    "recipient_not_found": 404,
    "wallet_not_found": 404,
    "unsupported_currency": 422,
    "limit_exceeded": 422,
    "fraud_blocked": 403,
    "recovery_timeout": 503,
    "wallet_refused": 422,
    "dependency_unavailable": 503,
}

#: Wallet refusal (FAILED_PRECONDITION details) → failure_reason. A frozen recipient is
#: ``recipient_unavailable`` so the sender never learns why.
WALLET_REASONS: Final[Mapping[str, str]] = {
    "insufficient_funds": "insufficient_funds",
    "sender_frozen": "account_frozen",
    "recipient_frozen": "recipient_unavailable",
    "self_transfer": "self_transfer",
    "unsupported_currency": "unsupported_currency",
}

_DETAILS: Final[Mapping[str, str]] = {
    "insufficient_funds": "insufficient available funds",
    "account_frozen": "your account is frozen",
    "recipient_unavailable": "the recipient cannot receive money",
    "self_transfer": "cannot transfer to yourself",
    "recipient_not_found": "recipient not found",
    "wallet_not_found": "you have no wallet yet",
    "unsupported_currency": f"only {CURRENCY} is supported",
    "limit_exceeded": "transaction limit exceeded",
    "fraud_blocked": "the transaction was blocked",
    "recovery_timeout": "the transaction could not be completed in time",
    "wallet_refused": "the wallet refused the transaction",
    "dependency_unavailable": "a service the transaction depends on is unavailable; retry later",
}


def failure_reason_for_wallet(details: str, txn_type: str = TxnType.TRANSFER) -> str:
    """The public failure reason for a wallet refusal (details ``code`` or ``code: text``).

    In a top-up the user is the wallet's *recipient*: their own frozen account is
    ``account_frozen`` (nothing to hide from them), not ``recipient_unavailable``."""
    code = details.partition(": ")[0].strip()
    if txn_type == TxnType.TOPUP and code == "recipient_frozen":
        return "account_frozen"
    return WALLET_REASONS.get(code, "wallet_refused")


def outcome(txn: Mapping[str, Any], **extra: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP answer (status, body) for a transaction object in a settled state — what the
    first request answers and what the idempotency row stores for replays."""
    status = txn["status"]
    if status == Status.COMPLETED:
        return 201, dict(txn)
    if status == Status.FAILED:
        reason = txn["failure_reason"] or "wallet_refused"
        code = FAILURE_STATUS.get(reason, 422)
        body = problem_body(code, reason, _DETAILS.get(reason, reason.replace("_", " ")))
        return code, {**body, **extra, "transaction_id": txn["id"]}
    if status == Status.CANCELLED:
        body = problem_body(409, "transaction_cancelled", "the transaction was cancelled")
        return 409, {**body, "transaction_id": txn["id"]}
    if status == Status.REVERSED:
        return 201, dict(txn)
    raise ValueError(f"no final outcome for status {status}")


# ---- the transaction object -------------------------------------------------------------------


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _uuid(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def serialize(txn: Any) -> dict[str, Any]:
    """The transaction object of services.md §3, exactly as the API returns it and the events
    carry it. ``txn`` is anything with the model's attributes."""
    fraud = txn.fraud
    return {
        "id": str(txn.id),
        "type": str(txn.type),
        "status": str(txn.status),
        "amount": int(txn.amount),
        "currency": txn.currency,
        "sender_id": _uuid(txn.sender_id),
        "recipient_id": _uuid(txn.recipient_id),
        "description": txn.description,
        "merchant": txn.merchant,
        "category": txn.category,
        "reference": txn.reference,
        "fraud": None
        if fraud is None
        else {
            "decision": fraud.get("decision"),
            "score": fraud.get("score"),
            "rules": list(fraud.get("rules") or []),
        },
        "failure_reason": txn.failure_reason,
        "created_at": rfc3339(txn.created_at),
        "completed_at": rfc3339(txn.completed_at),
    }


# ---- wallet accounts ---------------------------------------------------------------------------

FUNDING_ACCOUNT: Final = "external:funding"
PAYOUT_ACCOUNT: Final = "external:payout"


def user_account(user_id: UUID) -> str:
    return f"user:{user_id}"


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
