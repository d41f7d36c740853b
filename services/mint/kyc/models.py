"""kyc tables: one profile per user, its current documents (+ outbox / processed events)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mint.kit.db import TYPE_ANNOTATION_MAP, service_metadata
from mint.kit.events import add_event_tables
from mint.kit.idempotency import add_idempotency_table
from mint.kit.time import utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


add_event_tables(Base.metadata)
add_idempotency_table(Base.metadata)  # Idempotency-Key on POST /documents


class Profile(Base):
    __tablename__ = "profiles"
    __table_args__ = (
        CheckConstraint("tier IN ('UNVERIFIED', 'BASIC', 'VERIFIED')", name="tier"),
        CheckConstraint(
            "status IN ('NONE', 'PENDING_REVIEW', 'APPROVED', 'REJECTED')", name="status"
        ),
        CheckConstraint("status <> 'PENDING_REVIEW' OR submitted_at IS NOT NULL", name="submitted"),
        Index(
            "ix_profiles_pending_queue",
            "submitted_at",
            "id",
            postgresql_where=text("status = 'PENDING_REVIEW'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    tier: Mapped[str] = mapped_column(String(16), default="UNVERIFIED")
    status: Mapped[str] = mapped_column(String(16), default="NONE")
    country: Mapped[str | None] = mapped_column(String(2))
    full_name: Mapped[str | None] = mapped_column(String(200))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    reviewer_id: Mapped[str | None] = mapped_column(String(255))
    submitted_at: Mapped[datetime | None] = mapped_column()
    reviewed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # read-only: documents are written through their own rows (replaced under the profile lock)
    documents: Mapped[list[Document]] = relationship(
        viewonly=True, order_by=lambda: (Document.uploaded_at, Document.id)
    )


class Document(Base):
    """The current document of one type for a profile. The bytes live in object storage under
    ``storage_key``, which never leaves the service."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("profile_id", "type", name="uq_documents_profile_type"),
        CheckConstraint(
            "type IN ('PASSPORT', 'DRIVERS_LICENSE', 'SELFIE', 'UTILITY_BILL', 'OTHER')",
            name="type",
        ),
        CheckConstraint(
            "status IN ('UPLOADED', 'SUBMITTED', 'APPROVED', 'REJECTED')", name="status"
        ),
        CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'application/pdf')", name="content_type"
        ),
        CheckConstraint("size > 0", name="size_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    profile_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="UPLOADED")
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
