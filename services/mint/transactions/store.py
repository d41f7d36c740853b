"""The transactions' queries, row locks and inserts (no rules, no events): Session in, rows out.
The use cases in :mod:`mint.transactions.actions` decide; this module fetches and writes."""

from __future__ import annotations

import uuid
import zlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, text, tuple_
from sqlalchemy.orm import Session

from mint.kit import idempotency
from mint.kit.time import utcnow
from mint.transactions.domain import Status, TxnType
from mint.transactions.models import Transaction, Transition


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
    """Record a new PENDING transaction and its creation transition. Both are written with the
    unit of work's next flush (at the latest its commit), together with what the checks change
    on the row — one INSERT, not an INSERT then an UPDATE."""
    now = utcnow()
    txn = Transaction(
        id=uuid.uuid4(),
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


def user_lock_key(user_id: UUID) -> int:
    """The advisory-lock key of one user's limit checks."""
    return zlib.crc32(f"mint.transactions.user.{user_id}".encode()) & 0x7FFFFFFF


def lock_user(session: Session, user_id: UUID) -> None:
    """Serialise this user's limit checks until the end of the transaction: a transaction-scoped
    advisory lock, so it is held from reading the usage until the decision is committed."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": user_lock_key(user_id)})


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
        and_(t.type == TxnType.TOPUP.value, t.recipient_id == user_id),
        and_(
            t.type.in_((TxnType.TRANSFER.value, TxnType.WITHDRAWAL.value)),
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


def add_transition(
    session: Session,
    txn: Transaction,
    from_status: str,
    *,
    actor: str,
    reason: str | None,
    at: datetime,
) -> None:
    """Record ``txn``'s change from ``from_status`` to its current status (written with the
    unit of work's next flush)."""
    session.add(
        Transition(
            transaction_id=txn.id,
            from_status=from_status,
            to_status=txn.status,
            actor=actor,
            reason=reason,
            at=at,
        )
    )


# ---- reads -----------------------------------------------------------------------------------


def _party(user_id: UUID) -> Any:
    return or_(Transaction.sender_id == user_id, Transaction.recipient_id == user_id)


def get(session: Session, txn_id: UUID, *, party: UUID | None = None) -> Transaction | None:
    """The transaction; with ``party``, only when that user sent or received it."""
    query = select(Transaction).where(Transaction.id == txn_id)
    if party is not None:
        query = query.where(_party(party))
    return session.scalars(query).first()


def list_page(
    session: Session,
    *,
    party: UUID | None,
    limit: int,
    before: tuple[datetime, UUID] | None = None,
    status: str | None = None,
    type: str | None = None,
) -> tuple[list[Transaction], tuple[datetime, UUID] | None]:
    """Newest first, keyset-paginated on (created_at, id): the page and the position of its
    last item when there are more (``None`` on the last page). ``party`` None lists
    everyone's (admin)."""
    query = select(Transaction)
    if party is not None:
        query = query.where(_party(party))
    if status is not None:
        query = query.where(Transaction.status == status)
    if type is not None:
        query = query.where(Transaction.type == type)
    if before is not None:
        query = query.where(tuple_(Transaction.created_at, Transaction.id) < before)
    query = query.order_by(Transaction.created_at.desc(), Transaction.id.desc()).limit(limit + 1)
    rows = list(session.scalars(query))
    if len(rows) > limit:
        last = rows[limit - 1]
        return rows[:limit], (last.created_at, last.id)
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


def _under_review() -> Any:
    return Transaction.fraud["decision"].astext == "REVIEW"


def unopened_reviews(session: Session, older_than: timedelta, limit: int) -> list[UUID]:
    """PENDING reviews whose hold is not confirmed, not updated for ``older_than``."""
    query = (
        select(Transaction.id)
        .where(
            Transaction.status == Status.PENDING.value,
            _under_review(),
            Transaction.review_opened_at.is_(None),
            Transaction.updated_at < func.now() - older_than,
        )
        .order_by(Transaction.updated_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def expired_reviews(session: Session, opened_before: datetime, limit: int) -> list[UUID]:
    """PENDING reviews opened before ``opened_before`` (oldest first)."""
    query = (
        select(Transaction.id)
        .where(
            Transaction.status == Status.PENDING.value,
            _under_review(),
            Transaction.review_opened_at < opened_before,
        )
        .order_by(Transaction.review_opened_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def count_unsettled(session: Session, older_than: timedelta) -> dict[str, int]:
    """PENDING and PROCESSING transactions not updated for ``older_than``, by status."""
    rows = session.execute(
        select(Transaction.status, func.count())
        .where(
            Transaction.status.in_([Status.PENDING.value, Status.PROCESSING.value]),
            Transaction.updated_at < func.now() - older_than,
        )
        .group_by(Transaction.status)
    )
    counts = {Status.PENDING.value: 0, Status.PROCESSING.value: 0}
    counts.update({status: int(n) for status, n in rows.tuples()})
    return counts


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
