"""Money on the wire: the one currency, the amount range and the ledger's account codes.

Shared by every producer and consumer (conventions.md "Money", services.md §2): amounts are
integer minor units in ``MIN_AMOUNT..MAX_AMOUNT``; wallet accounts are ``user:<uuid>`` or one of
the two system accounts. Standard library only.
"""

from __future__ import annotations

from typing import Final
from uuid import UUID

CURRENCY: Final = "USD"
SUPPORTED_CURRENCIES: Final[frozenset[str]] = frozenset({CURRENCY})
MIN_AMOUNT: Final = 1
MAX_AMOUNT: Final = 10**12 - 1

#: The source of every top-up and the sink of every withdrawal (may go negative).
FUNDING_ACCOUNT: Final = "external:funding"
PAYOUT_ACCOUNT: Final = "external:payout"
SYSTEM_ACCOUNTS: Final[tuple[str, ...]] = (FUNDING_ACCOUNT, PAYOUT_ACCOUNT)
USER_ACCOUNT_PREFIX: Final = "user:"


def user_account(user_id: UUID | str) -> str:
    """``user:<uuid>`` (canonical lower-case UUID); ``ValueError`` when ``user_id`` is not one."""
    return f"{USER_ACCOUNT_PREFIX}{UUID(str(user_id))}"


def user_of_account(code: str) -> UUID | None:
    """The user behind a ``user:<uuid>`` code; ``None`` for any other code (system accounts).
    ``ValueError`` for a ``user:`` code whose id is not a UUID."""
    if not code.startswith(USER_ACCOUNT_PREFIX):
        return None
    return UUID(code[len(USER_ACCOUNT_PREFIX) :])


def normalize_account(code: str) -> str:
    """The canonical form of an account code; ``ValueError`` for an unknown one."""
    if code.startswith(USER_ACCOUNT_PREFIX):
        try:
            return user_account(code[len(USER_ACCOUNT_PREFIX) :])
        except ValueError:
            raise ValueError(f"account {code!r} is not user:<uuid>") from None
    if code in SYSTEM_ACCOUNTS:
        return code
    raise ValueError(f"unknown account {code!r} (expected user:<uuid> or {SYSTEM_ACCOUNTS})")
