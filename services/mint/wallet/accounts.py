"""Accounts: creating wallets and system accounts, row locks in a fixed order, freezing, the
outbox helper for ``wallet.events``, and the history query of the HTTP API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, aliased

from mint.kit.db import utcnow
from mint.kit.events import emit
from mint.wallet import domain
from mint.wallet.domain import AccountKind, AccountState, AccountStatus, NotFound
from mint.wallet.models import Account, JournalEntry, Posting

TOPIC = "wallet.events"
SOURCE = "wallet"


@dataclass(frozen=True)
class WalletView:
    id: uuid.UUID
    user_id: uuid.UUID
    currency: str
    balance: int
    held: int
    status: str

    @property
    def available(self) -> int:
        return domain.available(self.balance, self.held)


@dataclass(frozen=True)
class HistoryItem:
    transfer_id: str
    amount: int
    balance_after: int
    description: str
    counterparty_id: uuid.UUID | None
    created_at: datetime


# ---- accounts -------------------------------------------------------------------------------


def state_of(account: Account) -> AccountState:
    return AccountState(
        code=account.code,
        kind=AccountKind(account.kind),
        status=AccountStatus(account.status),
        balance=account.balance,
        held=account.held,
    )


def wallet_view(account: Account) -> WalletView:
    assert account.owner_user_id is not None
    return WalletView(
        id=account.id,
        user_id=account.owner_user_id,
        currency=account.currency,
        balance=account.balance,
        held=account.held,
        status=account.status,
    )


def account_id(session: Session, code: str) -> uuid.UUID:
    """The id of the account with this code (``user:<uuid>`` or a system code), or NotFound."""
    code = domain.normalize_account_code(code)
    found = session.scalar(select(Account.id).where(Account.code == code))
    if found is None:
        user = code.startswith(domain.USER_PREFIX)
        raise NotFound("wallet_not_found" if user else "account_not_found", f"no account {code}")
    return found


def lock_accounts(session: Session, *ids: uuid.UUID) -> dict[uuid.UUID, Account]:
    """``SELECT ... FOR UPDATE`` each account, one at a time in ascending id order, and return
    them freshly read (not stale identity-map copies)."""
    locked: dict[uuid.UUID, Account] = {}
    for acc_id in sorted(set(ids)):
        stmt = (
            select(Account)
            .where(Account.id == acc_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        locked[acc_id] = session.execute(stmt).scalar_one()
    return locked


def ensure_user_account(session: Session, user_id: uuid.UUID) -> tuple[WalletView, bool]:
    """Create the user's wallet if missing (ON CONFLICT DO NOTHING on the owner); emit
    ``wallet.created`` only when it was created. Returns the wallet and whether it is new."""
    stmt = (
        pg_insert(Account)
        .values(
            id=uuid.uuid4(),
            owner_user_id=user_id,
            code=domain.user_code(user_id),
            kind=AccountKind.USER.value,
            currency=domain.CURRENCY,
            balance=0,
            held=0,
            status=AccountStatus.ACTIVE.value,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[Account.owner_user_id])
        .returning(Account.id)
    )
    new_id = session.scalar(stmt)
    if new_id is not None:
        emit_wallet_event(
            session,
            "wallet.created",
            subject=str(new_id),
            data={"wallet_id": str(new_id), "user_id": str(user_id), "currency": domain.CURRENCY},
            user_id=user_id,
            actor=str(user_id),
        )
    wallet = get_wallet(session, user_id)
    assert wallet is not None
    return wallet, new_id is not None


def ensure_system_accounts(session: Session) -> None:
    """Create ``external:funding`` and ``external:payout`` if missing (idempotent)."""
    for code in domain.SYSTEM_ACCOUNTS:
        stmt = (
            pg_insert(Account)
            .values(
                id=uuid.uuid4(),
                owner_user_id=None,
                code=code,
                kind=AccountKind.SYSTEM.value,
                currency=domain.CURRENCY,
                balance=0,
                held=0,
                status=AccountStatus.ACTIVE.value,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=[Account.code])
        )
        session.execute(stmt)


def get_wallet(session: Session, user_id: uuid.UUID) -> WalletView | None:
    stmt = select(Account).where(Account.owner_user_id == user_id)
    account = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    return wallet_view(account) if account is not None else None


def set_frozen(session: Session, user_id: uuid.UUID, frozen: bool) -> WalletView:
    """Freeze or unfreeze a user's wallet; emits ``wallet.frozen`` / ``wallet.unfrozen`` only
    when the status changes (a repeat is a no-op)."""
    found = session.scalar(select(Account.id).where(Account.owner_user_id == user_id))
    if found is None:
        raise NotFound("wallet_not_found", f"no wallet for user {user_id}")
    account = lock_accounts(session, found)[found]
    target = AccountStatus.FROZEN if frozen else AccountStatus.ACTIVE
    if account.status != target:
        account.status = target.value
        session.flush()
        emit_wallet_event(
            session,
            "wallet.frozen" if frozen else "wallet.unfrozen",
            subject=str(account.id),
            data={"wallet_id": str(account.id), "user_id": str(user_id)},
            user_id=user_id,
            actor="system",
        )
    return wallet_view(account)


def emit_wallet_event(
    session: Session,
    type_: str,
    *,
    subject: str,
    data: dict[str, Any],
    user_id: uuid.UUID | None,
    actor: str,
) -> None:
    emit(
        session,
        topic=TOPIC,
        type=type_,
        subject=subject,
        data=data,
        key=str(user_id) if user_id else subject,
        actor=actor,
        source=SOURCE,
    )


# ---- history (HTTP API) ---------------------------------------------------------------------


def history(
    session: Session, user_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[HistoryItem], str | None]:
    """The user's postings, newest first, keyset-paginated on (created_at, posting id)."""
    acc_id = session.scalar(select(Account.id).where(Account.owner_user_id == user_id))
    if acc_id is None:
        raise NotFound("wallet_not_found", "no wallet yet")
    other, other_acc = aliased(Posting), aliased(Account)
    stmt = (
        select(
            Posting.id,
            Posting.amount,
            Posting.balance_after,
            Posting.created_at,
            JournalEntry.transfer_id,
            JournalEntry.description,
            other_acc.owner_user_id,
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(other, and_(other.entry_id == Posting.entry_id, other.id != Posting.id))
        .join(other_acc, other_acc.id == other.account_id)
        .where(Posting.account_id == acc_id)
    )
    if cursor:
        created_at, posting_id = domain.decode_cursor(cursor)
        stmt = stmt.where(tuple_(Posting.created_at, Posting.id) < tuple_(created_at, posting_id))
    stmt = stmt.order_by(Posting.created_at.desc(), Posting.id.desc()).limit(limit + 1)
    rows = session.execute(stmt).all()
    items = [
        HistoryItem(
            transfer_id=row.transfer_id,
            amount=row.amount,
            balance_after=row.balance_after,
            description=row.description,
            counterparty_id=row.owner_user_id,
            created_at=row.created_at,
        )
        for row in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = domain.encode_cursor(last.created_at, last.id)
    return items, next_cursor
