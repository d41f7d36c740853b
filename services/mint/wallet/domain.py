"""Pure ledger rules (no I/O): amounts, currencies, account codes, refusals, postings, cursors.

Every movement is a journal entry of two postings that sum to zero. A user account may never
have a negative available balance (``balance - held``); system accounts may go negative
(``external:funding`` is the source of every top-up).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from mint.contracts.money import (
    CURRENCY,
    MAX_AMOUNT,
    MIN_AMOUNT,
    SUPPORTED_CURRENCIES,
    SYSTEM_ACCOUNTS,
    USER_ACCOUNT_PREFIX,
    user_account,
    user_of_account,
)
from mint.kit import pagination
from mint.kit.domain import Invalid, Refused

MAX_ID_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 1000


class AccountKind(StrEnum):
    USER = "USER"
    SYSTEM = "SYSTEM"


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"


class HoldStatus(StrEnum):
    OPEN = "OPEN"
    CAPTURED = "CAPTURED"
    RELEASED = "RELEASED"


class EntryKind(StrEnum):
    TRANSFER = "TRANSFER"
    CAPTURE = "CAPTURE"
    REVERSAL = "REVERSAL"


class Reason(StrEnum):
    """Stable refusal codes (gRPC FAILED_PRECONDITION details)."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    SENDER_FROZEN = "sender_frozen"
    RECIPIENT_FROZEN = "recipient_frozen"
    SELF_TRANSFER = "self_transfer"
    UNSUPPORTED_CURRENCY = "unsupported_currency"
    REVERSAL_INSUFFICIENT_FUNDS = "reversal_insufficient_funds"
    ALREADY_REVERSED = "already_reversed"
    NOT_REVERSIBLE = "not_reversible"
    HOLD_ALREADY_CAPTURED = "hold_already_captured"
    HOLD_RELEASED = "hold_released"


# ---- validation -----------------------------------------------------------------------------


def validate_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Invalid("invalid_amount", "amount must be an integer")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        raise Invalid("invalid_amount", f"amount must be in {MIN_AMOUNT}..{MAX_AMOUNT}")
    return amount


def normalize_currency(currency: str | None) -> str:
    """An empty currency means the deployment's currency; anything but USD is refused."""
    if not currency:
        return CURRENCY
    if currency not in SUPPORTED_CURRENCIES:
        raise Refused(Reason.UNSUPPORTED_CURRENCY, f"currency {currency!r} is not supported")
    return currency


def validate_id(value: str, name: str) -> str:
    """Client-chosen ids (transfer_id, hold_id, reversal_id): 1..255 printable characters."""
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise Invalid(f"invalid_{name}", f"{name} must be 1..{MAX_ID_LENGTH} characters")
    return value


def validate_description(description: str | None) -> str:
    description = description or ""
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise Invalid("invalid_description", "description is too long")
    return description


def parse_user_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise Invalid("invalid_user_id", "user_id must be a UUID") from None


def normalize_account_code(code: str) -> str:
    """Canonical form of ``user:<uuid>`` (lower-case UUID) or a system code."""
    if code.startswith(USER_ACCOUNT_PREFIX):
        return user_account(parse_user_id(code[len(USER_ACCOUNT_PREFIX) :]))
    if code in SYSTEM_ACCOUNTS:
        return code
    raise Invalid("invalid_account", f"unknown account code {code!r}")


def owner_of(code: str) -> uuid.UUID | None:
    """The user id behind a ``user:<uuid>`` code, ``None`` for system accounts."""
    return user_of_account(code)


# ---- account state and refusals -------------------------------------------------------------


@dataclass(frozen=True)
class AccountState:
    code: str
    kind: AccountKind
    status: AccountStatus = AccountStatus.ACTIVE
    balance: int = 0
    held: int = 0

    @property
    def available(self) -> int:
        return available(self.balance, self.held)

    @property
    def is_user(self) -> bool:
        return self.kind == AccountKind.USER

    @property
    def frozen(self) -> bool:
        return self.status == AccountStatus.FROZEN

    def can_cover(self, amount: int) -> bool:
        """System accounts may go negative; a user account only spends what is available."""
        return not self.is_user or self.available >= amount


def available(balance: int, held: int) -> int:
    return balance - held


def transfer_refusal(
    sender: AccountState, recipient: AccountState, amount: int, currency: str = CURRENCY
) -> Reason | None:
    """Why a transfer must be refused, or ``None``. Checked in this order."""
    if currency not in SUPPORTED_CURRENCIES:
        return Reason.UNSUPPORTED_CURRENCY
    if sender.code == recipient.code:
        return Reason.SELF_TRANSFER
    if sender.frozen:
        return Reason.SENDER_FROZEN
    if recipient.frozen:
        return Reason.RECIPIENT_FROZEN
    if not sender.can_cover(amount):
        return Reason.INSUFFICIENT_FUNDS
    return None


def hold_refusal(account: AccountState, amount: int, currency: str = CURRENCY) -> Reason | None:
    if currency not in SUPPORTED_CURRENCIES:
        return Reason.UNSUPPORTED_CURRENCY
    if account.frozen:
        return Reason.SENDER_FROZEN
    if not account.can_cover(amount):
        return Reason.INSUFFICIENT_FUNDS
    return None


def capture_refusal(sender: AccountState, recipient: AccountState) -> Reason | None:
    """Capturing moves money already reserved, so only identity and freezes matter."""
    if sender.code == recipient.code:
        return Reason.SELF_TRANSFER
    if sender.frozen:
        return Reason.SENDER_FROZEN
    if recipient.frozen:
        return Reason.RECIPIENT_FROZEN
    return None


def reversal_refusal(original_recipient: AccountState, amount: int) -> Reason | None:
    """A reversal takes the money back from the original recipient, who must still have it."""
    if not original_recipient.can_cover(amount):
        return Reason.REVERSAL_INSUFFICIENT_FUNDS
    return None


# ---- postings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    account: str
    amount: int  # signed: negative debits the account, positive credits it


def transfer_postings(from_code: str, to_code: str, amount: int) -> tuple[Posting, Posting]:
    validate_amount(amount)
    return Posting(from_code, -amount), Posting(to_code, amount)


def is_balanced(postings: Iterable[Posting]) -> bool:
    items = list(postings)
    return len(items) >= 2 and sum(p.amount for p in items) == 0


def apply_postings(
    accounts: Mapping[str, AccountState], postings: Iterable[Posting], *, release: int = 0
) -> dict[str, AccountState]:
    """New states after posting a balanced set; ``release`` is taken off the first (debited)
    account's ``held`` (a hold capture). Raises ``ValueError`` for an unbalanced set."""
    items = list(postings)
    if not is_balanced(items):
        raise ValueError("postings must sum to zero")
    out = dict(accounts)
    for i, posting in enumerate(items):
        state = out[posting.account]
        held = state.held - release if i == 0 else state.held
        out[posting.account] = replace(state, balance=state.balance + posting.amount, held=held)
    return out


# ---- opaque history cursor ------------------------------------------------------------------


def encode_cursor(created_at: datetime, row_id: int) -> str:
    return pagination.encode_cursor(created_at, row_id)


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Inverse of :func:`encode_cursor`; ``Invalid("invalid_cursor")`` when tampered."""
    try:
        return pagination.decode_cursor(cursor, int)
    except pagination.InvalidCursor:
        raise Invalid("invalid_cursor", "cursor is not valid") from None
