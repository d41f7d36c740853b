"""The wallet's queries, row locks and inserts (no rules, no events): Session in, ORM rows or
small read models out. The use cases in :mod:`mint.wallet.actions` decide; this module fetches
and writes what they decided.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg.errors
from sqlalchemy import Select, and_, bindparam, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from mint.contracts.money import CURRENCY
from mint.kit.time import utcnow
from mint.wallet import domain
from mint.wallet.domain import AccountKind, AccountState, AccountStatus
from mint.wallet.models import Account, Hold, JournalEntry, Posting

# ---- read models ------------------------------------------------------------------------------


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
class TransferResult:
    transfer_id: str
    entry_id: uuid.UUID
    kind: str
    from_account: str
    to_account: str
    amount: int
    currency: str
    description: str
    created_at: datetime
    reversal_of: str | None = None  # the reversed transfer_id, for a REVERSAL
    replayed: bool = False


@dataclass(frozen=True)
class HoldResult:
    hold_id: str
    account: str
    amount: int
    currency: str
    status: str
    transfer_id: str | None = None  # the capture's transfer_id once CAPTURED
    replayed: bool = False


@dataclass(frozen=True)
class HistoryItem:
    transfer_id: str
    amount: int  # signed, from the owner's side
    balance_after: int
    description: str
    counterparty_id: uuid.UUID | None  # the other user; None for system accounts
    created_at: datetime


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


# ---- accounts -------------------------------------------------------------------------------


def account_id(session: Session, code: str) -> uuid.UUID | None:
    """The id of the account with this (canonical) code."""
    return session.scalar(select(Account.id).where(Account.code == code))


def wallet_id_of(session: Session, user_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(select(Account.id).where(Account.owner_user_id == user_id))


#: One round trip for the accounts of a movement: the user accounts locked in ascending id order
#: (``ORDER BY`` sorts before ``FOR UPDATE`` locks, so opposite transfers never deadlock), the
#: system accounts read unlocked — they keep no running balance (their balance is the sum of
#: their postings) and never change otherwise, so every top-up and withdrawal does not queue
#: behind one hot row.
_ACCOUNTS_FOR_MOVEMENT = text(
    """
    WITH locked AS (
        SELECT * FROM accounts WHERE code = ANY(:codes) AND kind = 'USER'
        ORDER BY id FOR UPDATE
    )
    SELECT * FROM locked
    UNION ALL
    SELECT * FROM accounts WHERE code = ANY(:codes) AND kind = 'SYSTEM'
    """
)


def accounts_for_movement(session: Session, *codes: str) -> dict[str, Account]:
    """The accounts with these codes by code (missing ones absent), users' rows locked until
    the end of the transaction and freshly read."""
    stmt = select(Account).from_statement(_ACCOUNTS_FOR_MOVEMENT)
    rows = session.execute(
        stmt.execution_options(populate_existing=True), {"codes": list(codes)}
    ).scalars()
    return {account.code: account for account in rows}


def lock_accounts(session: Session, *ids: uuid.UUID) -> dict[uuid.UUID, Account]:
    """``SELECT ... FOR UPDATE`` each account, one at a time in ascending id order (so opposite
    transfers never deadlock), and return them freshly read (not stale identity-map copies)."""
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


def get_wallet(session: Session, user_id: uuid.UUID) -> WalletView | None:
    stmt = select(Account).where(Account.owner_user_id == user_id)
    account = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    return wallet_view(account) if account is not None else None


def insert_account(
    session: Session, *, code: str, kind: AccountKind, owner_user_id: uuid.UUID | None
) -> uuid.UUID | None:
    """Insert an ACTIVE empty account; ``None`` when one with this owner or code exists."""
    conflict = Account.owner_user_id if owner_user_id is not None else Account.code
    stmt = (
        pg_insert(Account)
        .values(
            id=uuid.uuid4(),
            owner_user_id=owner_user_id,
            code=code,
            kind=kind.value,
            currency=CURRENCY,
            balance=0,
            held=0,
            status=AccountStatus.ACTIVE.value,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[conflict])
        .returning(Account.id)
    )
    return session.scalar(stmt)


# ---- entries --------------------------------------------------------------------------------


#: A movement's whole ledger write in one round trip: the entry (nothing at all when its
#: transfer id is taken), its postings, and the new balances of its user accounts (locked by
#: the caller). Arrays, so a movement touching no user account (two system accounts) fits too.
_POST_ENTRY = text(
    """
    WITH entry AS (
        INSERT INTO journal_entries (id, transfer_id, kind, description, from_account_id,
                                     to_account_id, amount, currency, reversal_of, created_at)
        VALUES (:id, :transfer_id, :kind, :description, :from_account_id, :to_account_id,
                :amount, :currency, :reversal_of, :created_at)
        ON CONFLICT (transfer_id) DO NOTHING
        RETURNING id
    ), posted AS (
        INSERT INTO postings (entry_id, account_id, amount, balance_after, created_at)
        SELECT entry.id, p.account_id, p.amount, p.balance_after, :created_at
        FROM entry, unnest(CAST(:posting_accounts AS uuid[]), CAST(:posting_amounts AS bigint[]),
                           CAST(:posting_balances AS bigint[]))
                    AS p(account_id, amount, balance_after)
    ), balances AS (
        UPDATE accounts SET balance = b.balance, held = b.held
        FROM entry, unnest(CAST(:balance_accounts AS uuid[]), CAST(:balances AS bigint[]),
                           CAST(:helds AS bigint[])) AS b(id, balance, held)
        WHERE accounts.id = b.id
    )
    SELECT id FROM entry
    """
)


@dataclass(frozen=True)
class NewPosting:
    account: Account
    amount: int  # signed
    #: the account's balance and held amount after it; None for a system account (no
    #: running balance: its row is not written)
    balance: int | None
    held: int | None


def post_entry(
    session: Session,
    *,
    transfer_id: str,
    kind: str,
    description: str,
    amount: int,
    currency: str,
    reversal_of: uuid.UUID | None,
    created_at: datetime,
    postings: tuple[NewPosting, NewPosting],
) -> uuid.UUID | None:
    """Write a journal entry, its two postings (debit first) and the user accounts' new
    balances; ``None`` (nothing written) when ``transfer_id`` is taken."""
    users = [p for p in postings if p.balance is not None]
    entry_id: uuid.UUID | None = session.scalar(
        _POST_ENTRY,
        {
            "id": uuid.uuid4(),
            "transfer_id": transfer_id,
            "kind": kind,
            "description": description,
            "from_account_id": postings[0].account.id,
            "to_account_id": postings[1].account.id,
            "amount": amount,
            "currency": currency,
            "reversal_of": reversal_of,
            "created_at": created_at,
            "posting_accounts": [p.account.id for p in postings],
            "posting_amounts": [p.amount for p in postings],
            "posting_balances": [p.balance for p in postings],
            "balance_accounts": [p.account.id for p in users],
            "balances": [p.balance for p in users],
            "helds": [p.held for p in users],
        },
    )
    if entry_id is not None:
        for p in users:  # the loaded rows in step with what was written (no second write)
            set_committed_value(p.account, "balance", p.balance)
            set_committed_value(p.account, "held", p.held)
    return entry_id


def insert_unique(session: Session, row: Any) -> bool:
    """Insert ``row`` in a savepoint; ``False`` (and nothing written) on a unique violation."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        if isinstance(exc.orig, psycopg.errors.UniqueViolation):
            return False
        raise
    return True


def entry_by_transfer_id(session: Session, transfer_id: str) -> JournalEntry | None:
    return session.scalar(select(JournalEntry).where(JournalEntry.transfer_id == transfer_id))


def is_reversed(session: Session, entry_id: uuid.UUID) -> bool:
    found = session.scalar(select(JournalEntry.id).where(JournalEntry.reversal_of == entry_id))
    return found is not None


def _transfer_query() -> Select[JournalEntry, str, str, str]:
    src, dst, orig = aliased(Account), aliased(Account), aliased(JournalEntry)
    return (
        select(JournalEntry, src.code, dst.code, orig.transfer_id)
        .join(src, src.id == JournalEntry.from_account_id)
        .join(dst, dst.id == JournalEntry.to_account_id)
        .outerjoin(orig, orig.id == JournalEntry.reversal_of)
        .where(JournalEntry.transfer_id == bindparam("transfer_id"))
    )


#: Built once: constructing the aliased joins costs more than running the query.
_TRANSFER_BY_ID = _transfer_query()


def get_transfer(
    session: Session, transfer_id: str, *, replayed: bool = False
) -> TransferResult | None:
    """The posted entry for ``transfer_id`` with its account codes."""
    row = session.execute(_TRANSFER_BY_ID, {"transfer_id": transfer_id}).first()
    if row is None:
        return None
    entry, from_code, to_code, reversal_of = row
    return transfer_result(entry, from_code, to_code, reversal_of, replayed)


def transfer_result(
    entry: JournalEntry,
    from_code: str,
    to_code: str,
    reversal_of: str | None,
    replayed: bool = False,
) -> TransferResult:
    return TransferResult(
        transfer_id=entry.transfer_id,
        entry_id=entry.id,
        kind=entry.kind,
        from_account=from_code,
        to_account=to_code,
        amount=entry.amount,
        currency=entry.currency,
        description=entry.description,
        created_at=entry.created_at,
        reversal_of=reversal_of,
        replayed=replayed,
    )


# ---- holds ----------------------------------------------------------------------------------


def get_hold(session: Session, hold_id: str, *, replayed: bool = False) -> HoldResult | None:
    row = session.execute(
        select(Hold, Account.code)
        .join(Account, Account.id == Hold.account_id)
        .where(Hold.hold_id == hold_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return None
    hold, code = row
    return hold_result(hold, code, replayed)


def hold_row(session: Session, hold_id: str, *, lock: bool = False) -> Hold | None:
    stmt = select(Hold).where(Hold.hold_id == hold_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def hold_result(hold: Hold, code: str, replayed: bool = False) -> HoldResult:
    return HoldResult(
        hold_id=hold.hold_id,
        account=code,
        amount=hold.amount,
        currency=hold.currency,
        status=hold.status,
        transfer_id=hold.capture_transfer_id,
        replayed=replayed,
    )


# ---- history --------------------------------------------------------------------------------


def history(
    session: Session,
    account: uuid.UUID,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> tuple[list[HistoryItem], tuple[datetime, int] | None]:
    """The account's postings, newest first, keyset-paginated on (created_at, posting id):
    the page and the position after its last item (``None`` on the last page)."""
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
        .where(Posting.account_id == account)
    )
    if before is not None:
        stmt = stmt.where(tuple_(Posting.created_at, Posting.id) < tuple_(*before))
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
    after = None
    if len(rows) > limit:
        last = rows[limit - 1]
        after = (last.created_at, last.id)
    return items, after
