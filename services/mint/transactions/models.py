"""Transactions tables: transactions, transaction_transitions (+ outbox, processed events and
idempotency keys). The schema is created by ``migrations/versions/0001_initial.py``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mint.kit.db import TYPE_ANNOTATION_MAP, service_metadata
from mint.kit.events import add_event_tables
from mint.kit.idempotency import add_idempotency_table
from mint.kit.time import utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


add_event_tables(Base.metadata)
add_idempotency_table(Base.metadata)


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("type IN ('TOPUP', 'TRANSFER', 'WITHDRAWAL')", name="type"),
        CheckConstraint(
            "status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED', 'REVERSED')",
            name="status",
        ),
        CheckConstraint("amount > 0 AND amount < 1000000000000", name="amount"),
        CheckConstraint(
            "(type = 'TOPUP' AND sender_id IS NULL AND recipient_id IS NOT NULL)"
            " OR (type = 'WITHDRAWAL' AND sender_id IS NOT NULL AND recipient_id IS NULL)"
            " OR (type = 'TRANSFER' AND sender_id IS NOT NULL AND recipient_id IS NOT NULL)",
            name="parties",
        ),
        Index("ix_transactions_sender", "sender_id", "created_at", "id"),
        Index("ix_transactions_recipient", "recipient_id", "created_at", "id"),
        Index(
            "ix_transactions_open",
            "status",
            "updated_at",
            postgresql_where=text("status IN ('PENDING', 'PROCESSING')"),
        ),
        Index("ix_transactions_idempotency", "user_id", "idempotency_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the initiator
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    sender_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    description: Mapped[str | None] = mapped_column(String(255))
    merchant: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(16))
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    fraud: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # {decision, score, rules}
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    #: When the limits check passed: from then on a PENDING transaction counts toward its
    #: user's usage (PROCESSING and COMPLETED always count). None: not checked (yet).
    counted_at: Mapped[datetime | None] = mapped_column()
    #: When a REVIEW's hold was placed (nothing to hold for a top-up) and its request answered
    #: 202; the review expiry counts from it. None on a REVIEW: the hold is not confirmed yet.
    review_opened_at: Mapped[datetime | None] = mapped_column()


class Transition(Base):
    """Every status change: who (a user id, an admin id or ``system``), when, why."""

    __tablename__ = "transaction_transitions"
    __table_args__ = (Index("ix_transaction_transitions_txn", "transaction_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transactions.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))  # None: creation
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
