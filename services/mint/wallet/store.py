"""Ledger operations. Each runs inside the caller's transaction (``db.session()``), takes row locks
on the accounts it touches in a fixed order (sorted by id, so opposite transfers never deadlock),
and writes its events to the outbox in the same transaction.

Account functions (wallets, freezing, history) live in :mod:`mint.wallet.accounts` and holds in
:mod:`mint.wallet.holds`; the account functions are re-exported here for callers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg.errors
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from mint.kit.db import utcnow
from mint.wallet import domain
from mint.wallet.accounts import (
    HistoryItem,
    WalletView,
    account_id,
    emit_wallet_event,
    ensure_system_accounts,
    ensure_user_account,
    get_wallet,
    history,
    lock_accounts,
    set_frozen,
    state_of,
)
from mint.wallet.domain import Conflict, EntryKind, NotFound, Reason, Refused
from mint.wallet.models import Account, JournalEntry, Posting

__all__ = [
    "HistoryItem",
    "TransferResult",
    "WalletView",
    "account_id",
    "emit_wallet_event",
    "ensure_system_accounts",
    "ensure_user_account",
    "get_transfer",
    "get_wallet",
    "history",
    "insert_unique",
    "lock_accounts",
    "post_entry",
    "reverse",
    "set_frozen",
    "state_of",
    "transfer",
    "transfer_result",
]


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


# ---- transfers ------------------------------------------------------------------------------


def transfer(
    session: Session,
    transfer_id: str,
    from_code: str,
    to_code: str,
    amount: int,
    currency: str = domain.CURRENCY,
    description: str = "",
) -> TransferResult:
    """Post a transfer, or return the first result for a ``transfer_id`` already posted
    (``replayed=True``). Raises Refused / NotFound / InvalidArgument (domain errors)."""
    domain.validate_id(transfer_id, "transfer_id")
    if (done := get_transfer(session, transfer_id, replayed=True)) is not None:
        return done
    domain.validate_amount(amount)
    currency = domain.normalize_currency(currency)
    description = domain.validate_description(description)
    from_code = domain.normalize_account_code(from_code)
    to_code = domain.normalize_account_code(to_code)
    if from_code == to_code:
        raise Refused(Reason.SELF_TRANSFER)
    from_id, to_id = account_id(session, from_code), account_id(session, to_code)
    accounts = lock_accounts(session, from_id, to_id)
    # a concurrent request with the same transfer_id may have committed while we waited
    if (done := get_transfer(session, transfer_id, replayed=True)) is not None:
        return done
    sender, recipient = accounts[from_id], accounts[to_id]
    reason = domain.transfer_refusal(state_of(sender), state_of(recipient), amount, currency)
    if reason is not None:
        raise Refused(reason)
    entry = post_entry(
        session,
        transfer_id=transfer_id,
        kind=EntryKind.TRANSFER,
        sender=sender,
        recipient=recipient,
        amount=amount,
        currency=currency,
        description=description,
    )
    if entry is None:  # lost the unique-violation race: the winner's entry is the answer
        done = get_transfer(session, transfer_id, replayed=True)
        if done is None:
            raise Conflict("transfer_id_conflict")
        return done
    return transfer_result(entry, sender.code, recipient.code, None)


def reverse(session: Session, transfer_id: str, reversal_id: str) -> TransferResult:
    """Post the mirror entry of ``transfer_id`` under ``reversal_id`` (idempotent by it)."""
    domain.validate_id(transfer_id, "transfer_id")
    domain.validate_id(reversal_id, "reversal_id")
    original = session.scalar(select(JournalEntry).where(JournalEntry.transfer_id == transfer_id))
    if original is None:
        raise NotFound("transfer_not_found", f"no transfer {transfer_id}")
    if (done := _reversal_replay(session, transfer_id, reversal_id)) is not None:
        return done
    if original.kind == EntryKind.REVERSAL:
        raise Refused(Reason.NOT_REVERSIBLE)
    accounts = lock_accounts(session, original.from_account_id, original.to_account_id)
    if (done := _reversal_replay(session, transfer_id, reversal_id)) is not None:
        return done
    if session.scalar(select(JournalEntry.id).where(JournalEntry.reversal_of == original.id)):
        raise Refused(Reason.ALREADY_REVERSED)
    payer, payee = accounts[original.to_account_id], accounts[original.from_account_id]
    reason = domain.reversal_refusal(state_of(payer), original.amount)
    if reason is not None:
        raise Refused(reason)
    entry = post_entry(
        session,
        transfer_id=reversal_id,
        kind=EntryKind.REVERSAL,
        sender=payer,
        recipient=payee,
        amount=original.amount,
        currency=original.currency,
        description=f"Reversal of {transfer_id}",
        reversal_of=original.id,
        actor="system",
    )
    if entry is None:
        if (done := _reversal_replay(session, transfer_id, reversal_id)) is not None:
            return done
        raise Refused(Reason.ALREADY_REVERSED)
    return transfer_result(entry, payer.code, payee.code, transfer_id)


def _reversal_replay(session: Session, transfer_id: str, reversal_id: str) -> TransferResult | None:
    done = get_transfer(session, reversal_id, replayed=True)
    if done is None:
        return None
    if done.reversal_of != transfer_id:
        raise Conflict("transfer_id_conflict", f"{reversal_id} is already used")
    return done


def post_entry(
    session: Session,
    *,
    transfer_id: str,
    kind: EntryKind,
    sender: Account,
    recipient: Account,
    amount: int,
    currency: str,
    description: str,
    reversal_of: uuid.UUID | None = None,
    release_held: int = 0,
    actor: str | None = None,
) -> JournalEntry | None:
    """Write the entry, its two postings and the new balances of the (already locked) accounts,
    and emit ``wallet.transfer_posted``. ``None`` if ``transfer_id`` is already taken."""
    now = utcnow()
    entry = JournalEntry(
        id=uuid.uuid4(),
        transfer_id=transfer_id,
        kind=kind.value,
        description=description,
        from_account_id=sender.id,
        to_account_id=recipient.id,
        amount=amount,
        currency=currency,
        reversal_of=reversal_of,
        created_at=now,
    )
    if not insert_unique(session, entry):
        return None
    postings = domain.transfer_postings(sender.code, recipient.code, amount)
    states = {sender.code: state_of(sender), recipient.code: state_of(recipient)}
    after = domain.apply_postings(states, postings, release=release_held)
    for account, posting in zip((sender, recipient), postings, strict=True):
        account.balance = after[account.code].balance
        account.held = after[account.code].held
        session.add(
            Posting(
                entry_id=entry.id,
                account_id=account.id,
                amount=posting.amount,
                balance_after=account.balance,
                created_at=now,
            )
        )
    session.flush()
    user = sender.owner_user_id or recipient.owner_user_id
    emit_wallet_event(
        session,
        "wallet.transfer_posted",
        subject=transfer_id,
        data={
            "transfer_id": transfer_id,
            "from_account": sender.code,
            "to_account": recipient.code,
            "amount": amount,
            "currency": currency,
        },
        user_id=user,
        actor=actor or (str(user) if user else "system"),
    )
    return entry


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


def get_transfer(
    session: Session, transfer_id: str, *, replayed: bool = False
) -> TransferResult | None:
    """The posted entry for ``transfer_id`` (never posts)."""
    return _load_result(session, JournalEntry.transfer_id == transfer_id, replayed)


def _load_result(
    session: Session, where: ColumnElement[bool], replayed: bool
) -> TransferResult | None:
    src, dst, orig = aliased(Account), aliased(Account), aliased(JournalEntry)
    stmt = (
        select(JournalEntry, src.code, dst.code, orig.transfer_id)
        .join(src, src.id == JournalEntry.from_account_id)
        .join(dst, dst.id == JournalEntry.to_account_id)
        .outerjoin(orig, orig.id == JournalEntry.reversal_of)
        .where(where)
    )
    row = session.execute(stmt).first()
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
