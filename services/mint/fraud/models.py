"""fraud tables: one assessment per scored transaction, the cases REVIEW and BLOCK open, the
per-user statistics and the sanctions list (+ outbox / processed events)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mint.kit.db import TYPE_ANNOTATION_MAP, service_metadata
from mint.kit.events import add_event_tables
from mint.kit.time import utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


add_event_tables(Base.metadata)

TYPES_CHECK = "type IN ('TOPUP', 'TRANSFER', 'WITHDRAWAL')"


class Assessment(Base):
    """The decision ScoreTransaction answered for a transaction; a repeat answers it again."""

    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint(TYPES_CHECK, name="type"),
        CheckConstraint("decision IN ('ALLOW', 'REVIEW', 'BLOCK')", name="decision"),
    )

    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    decision: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    rules: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    reason: Mapped[str] = mapped_column(Text)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """A REVIEW (OPEN until reviewed or cancelled) or a BLOCK (closed at once as BLOCKED)."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(TYPES_CHECK, name="type"),
        CheckConstraint(
            "status IN ('OPEN', 'APPROVED', 'REJECTED', 'BLOCKED', 'CANCELLED')", name="status"
        ),
        CheckConstraint("decision IN ('REVIEW', 'BLOCK')", name="decision"),
        CheckConstraint("(status = 'OPEN') = (closed_at IS NULL)", name="closed"),
        Index("ix_cases_created", "created_at", "id"),
        Index("ix_cases_status_created", "status", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    rules: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    type: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    recipient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reviewer_id: Mapped[str | None] = mapped_column(String(255))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()


class UserStats(Base):
    """Welford running statistics of a user's COMPLETED transactions of one type."""

    __tablename__ = "user_stats"
    __table_args__ = (CheckConstraint(TYPES_CHECK, name="type"),)

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    mean: Mapped[float] = mapped_column(Double)
    m2: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sanction(Base):
    """A user on the sanctions list: a transfer to them is blocked."""

    __tablename__ = "sanctions"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
