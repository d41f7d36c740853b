"""Persistence of transactions: create, lock, move through the state machine (recording the
transition, its event and the idempotent outcome in the caller's transaction), read, list."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from mint.kit import idempotency, pagination
from mint.kit.db import utcnow
from mint.kit.errors import Problem
from mint.kit.events import emit
from mint.transactions import domain
from mint.transactions.domain import Status
from mint.transactions.models import Transaction, Transition

TOPIC = "transaction.events"
SOURCE = "transactions"
SYSTEM = "system"

#: The event a transition into each status emits (PROCESSING emits none: events.md).
EVENT_TYPES: dict[Status, str] = {
    Status.COMPLETED: "transaction.completed",
    Status.FAILED: "transaction.failed",
    Status.CANCELLED: "transaction.cancelled",
    Status.REVERSED: "transaction.reversed",
}


def create(
    session: Session,
    *,
    user_id: UUID,
    type: str,
    amount: int,
    currency: str,
    sender_id: UUID | None,
    recipient_id: UUID | None,
    description: str | None = None,
    merchant: str | None = None,
    category: str | None = None,
    reference: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    actor: str,
) -> Transaction:
    """Record a new PENDING transaction and its creation transition."""
    now = utcnow()
    txn = Transaction(
        user_id=user_id,
        type=type,
        status=Status.PENDING.value,
        amount=amount,
        currency=currency,
        sender_id=sender_id,
        recipient_id=recipient_id,
        description=description,
        merchant=merchant,
        category=category,
        reference=reference,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=now,
    )
    session.add(txn)
    session.flush()
    session.add(
        Transition(
            transaction_id=txn.id, from_status=None, to_status=txn.status, actor=actor, at=now
        )
    )
    return txn


def lock(session: Session, txn_id: UUID, *, skip_locked: bool = False) -> Transaction | None:
    """The transaction, row-locked until the end of ``session``'s transaction (None when it
    does not exist or, with ``skip_locked``, when someone else holds the lock)."""
    query = select(Transaction).where(Transaction.id == txn_id)
    return session.scalars(query.with_for_update(skip_locked=skip_locked)).first()


def lock_user(session: Session, user_id: UUID) -> None:
    """Serialise this user's limit checks until the end of the transaction: a transaction-scoped
    advisory lock, so it is held from reading the usage until the decision is committed."""
    key = zlib.crc32(f"mint.transactions.user.{user_id}".encode()) & 0x7FFFFFFF
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


#: Statuses that always count toward usage; a PENDING one counts once its check passed.
_COUNTING = (Status.PROCESSING.value, Status.COMPLETED.value)


def usage(
    session: Session,
    user_id: UUID,
    *,
    day_start: datetime,
    month_start: datetime,
    exclude: UUID,
    currency: str,
) -> tuple[int, int]:
    """(used today, used this month): the sum of ``user_id``'s other money movements that count
    against the limits — top-ups to them, transfers and withdrawals from them — PROCESSING or
    COMPLETED, or PENDING past their own limits check (``counted_at``), created since
    ``day_start`` / ``month_start``. Call it under :func:`lock_user`."""
    t = Transaction
    mine = or_(
        and_(t.type == domain.TxnType.TOPUP.value, t.recipient_id == user_id),
        and_(
            t.type.in_((domain.TxnType.TRANSFER.value, domain.TxnType.WITHDRAWAL.value)),
            t.sender_id == user_id,
        ),
    )
    counted = or_(
        t.status.in_(_COUNTING),
        and_(t.status == Status.PENDING.value, t.counted_at.is_not(None)),
    )
    since = min(day_start, month_start)
    query = select(
        func.coalesce(func.sum(t.amount).filter(t.created_at >= day_start), 0),
        func.coalesce(func.sum(t.amount).filter(t.created_at >= month_start), 0),
    ).where(mine, counted, t.id != exclude, t.currency == currency, t.created_at >= since)
    today, month = session.execute(query).one()
    return int(today), int(month)


def move(
    session: Session,
    txn: Transaction,
    to: Status,
    *,
    actor: str,
    reason: str | None = None,
    failure_reason: str | None = None,
) -> None:
    """THE way a status changes: the state machine decides, the transition is recorded, and its
    event goes to the outbox — all in ``session``'s transaction (``txn`` must be locked)."""
    current = txn.status
    txn.status = domain.transition(current, to).value
    now = utcnow()
    txn.updated_at = now
    if to is Status.FAILED:
        txn.failure_reason = failure_reason or reason
    if to is Status.COMPLETED:
        txn.completed_at = now
    session.add(
        Transition(
            transaction_id=txn.id,
            from_status=current,
            to_status=txn.status,
            actor=actor,
            reason=reason or failure_reason,
            at=now,
        )
    )
    session.flush()
    event_type = EVENT_TYPES.get(to)
    if event_type is not None:
        if to is Status.FAILED and txn.failure_reason == "fraud_blocked":
            event_type = "transaction.fraud_blocked"
        emit(
            session,
            topic=TOPIC,
            type=event_type,
            subject=str(txn.id),
            data=domain.serialize(txn),
            key=str(txn.user_id),
            actor=actor,
            source=SOURCE,
        )


def settle(
    session: Session,
    txn: Transaction,
    to: Status,
    *,
    actor: str,
    reason: str | None = None,
    failure_reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Move ``txn`` to a settled status and store the HTTP outcome in the idempotency row of the
    request that created it (same transaction). Returns that outcome."""
    move(session, txn, to, actor=actor, reason=reason, failure_reason=failure_reason)
    status, body = domain.outcome(domain.serialize(txn), **(extra or {}))
    if txn.idempotency_key is not None:
        idempotency.complete(session, txn.user_id, txn.idempotency_key, status, body)
    return status, body


# ---- reads -----------------------------------------------------------------------------------


def _party(user_id: UUID) -> Any:
    return or_(Transaction.sender_id == user_id, Transaction.recipient_id == user_id)


def get_for_party(session: Session, txn_id: UUID, user_id: UUID) -> Transaction | None:
    return session.scalars(
        select(Transaction).where(Transaction.id == txn_id, _party(user_id))
    ).first()


def encode_cursor(txn: Transaction) -> str:
    return pagination.encode_cursor(txn.created_at, txn.id)


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        return pagination.decode_cursor(cursor, UUID)
    except pagination.InvalidCursor:
        raise Problem(422, "invalid_cursor", "the cursor is not valid") from None


def list_page(
    session: Session,
    *,
    user_id: UUID | None,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    type: str | None = None,
) -> tuple[Sequence[Transaction], str | None]:
    """Newest first. ``user_id`` None lists everyone's (admin)."""
    query = select(Transaction)
    if user_id is not None:
        query = query.where(_party(user_id))
    if status is not None:
        query = query.where(Transaction.status == status)
    if type is not None:
        query = query.where(Transaction.type == type)
    if cursor:
        created, txn_id = decode_cursor(cursor)
        query = query.where(tuple_(Transaction.created_at, Transaction.id) < (created, txn_id))
    query = query.order_by(Transaction.created_at.desc(), Transaction.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], encode_cursor(rows[limit - 1])
    return rows, None


def stuck(session: Session, status: Status, older_than: timedelta, limit: int) -> list[UUID]:
    """Ids of transactions in ``status`` not updated for ``older_than`` (oldest first)."""
    query = (
        select(Transaction.id)
        .where(
            Transaction.status == status.value,
            Transaction.updated_at < func.now() - older_than,
        )
        .order_by(Transaction.updated_at)
        .limit(limit)
    )
    if status is Status.PENDING:
        # PENDING under review is left to the reviewer or the hold expiry.
        query = query.where(
            or_(Transaction.fraud.is_(None), Transaction.fraud["decision"].astext != "REVIEW")
        )
    return list(session.scalars(query))


def stale_claims(session: Session, older_than: timedelta, limit: int) -> list[tuple[UUID, str]]:
    """In-progress idempotency claims whose request never recorded a transaction (the process
    died between the claim and the PENDING row): safe to abandon."""
    keys = idempotency.KEYS
    query = (
        select(keys.c.user_id, keys.c.key)
        .where(
            keys.c.status == idempotency.IN_PROGRESS,
            keys.c.created_at < func.now() - older_than,
            ~select(Transaction.id)
            .where(
                and_(
                    Transaction.user_id == keys.c.user_id,
                    Transaction.idempotency_key == keys.c.key,
                    # slack for clock skew between the app (txn) and the database (claim)
                    Transaction.created_at >= keys.c.created_at - timedelta(hours=1),
                )
            )
            .exists(),
        )
        .limit(limit)
    )
    return [(row.user_id, row.key) for row in session.execute(query)]
