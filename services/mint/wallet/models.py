"""Wallet tables: accounts, journal entries, postings, holds (+ outbox / processed events)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mint.kit.db import TYPE_ANNOTATION_MAP, service_metadata
from mint.kit.events import add_event_tables
from mint.kit.time import utcnow

__all__ = ["Account", "Base", "Hold", "JournalEntry", "Posting"]


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


add_event_tables(Base.metadata)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('USER', 'SYSTEM')", name="kind"),
        CheckConstraint("status IN ('ACTIVE', 'FROZEN')", name="status"),
        CheckConstraint("held >= 0", name="held_not_negative"),
        # user accounts never spend more than they have; system accounts may go negative
        CheckConstraint("kind <> 'USER' OR balance - held >= 0", name="user_available"),
        CheckConstraint("(kind = 'USER') = (owner_user_id IS NOT NULL)", name="user_has_owner"),
        # a system account's balance is the sum of its postings: its row is never written, so
        # movements of unrelated users never queue behind it (actions._post_entry)
        CheckConstraint("kind = 'USER' OR balance = 0", name="system_no_running_balance"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    held: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(8), default="ACTIVE", server_default="ACTIVE")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JournalEntry(Base):
    """One money movement. ``from_account_id`` / ``to_account_id`` / ``amount`` describe it; the
    postings are the ledger's truth (and the invariant checker compares the two)."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        CheckConstraint("kind IN ('TRANSFER', 'CAPTURE', 'REVERSAL')", name="kind"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("(kind = 'REVERSAL') = (reversal_of IS NOT NULL)", name="reversal"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    transfer_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(1000), default="")
    from_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    to_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # at most one reversal per entry
    reversal_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("journal_entries.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index("ix_postings_account_history", "account_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    #: the account's balance after this posting; NULL on system accounts (no running balance)
    balance_after: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Hold(Base):
    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status IN ('OPEN', 'CAPTURED', 'RELEASED')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "(status = 'CAPTURED') = (capture_transfer_id IS NOT NULL)", name="capture"
        ),
        Index("ix_holds_open_account", "account_id", postgresql_where=text("status = 'OPEN'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    hold_id: Mapped[str] = mapped_column(String(255), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(8), default="OPEN")
    capture_transfer_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
