"""auth's tables: users, refresh-token families and refresh tokens (stored hashed), single-use
mail tokens (stored hashed), outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mint.kit.db import TYPE_ANNOTATION_MAP, service_metadata
from mint.kit.events import add_event_tables
from mint.kit.time import utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'admin')", name="role"),
        CheckConstraint("status IN ('ACTIVE', 'FROZEN')", name="status"),
        CheckConstraint("email = lower(email)", name="email_lower"),
        # Admin search: newest first, and by email prefix.
        Index("ix_users_created_at_id", "created_at", "id"),
        Index("ix_users_email_prefix", "email", postgresql_ops={"email": "text_pattern_ops"}),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="user", server_default=text("'user'"))
    email_verified: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    status: Mapped[str] = mapped_column(
        String(16), default="ACTIVE", server_default=text("'ACTIVE'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=text("now()")
    )


class RefreshFamily(Base):
    """One login session: every refresh token rotated from one login or registration."""

    __tablename__ = "refresh_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))


class RefreshToken(Base):
    """A refresh token, by its ``jti``; only its SHA-256 is stored."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("refresh_families.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    rotated_to: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)


class MailToken(Base):
    """A single-use token sent by mail (email verification, password reset); only its SHA-256
    is stored. ``used_at`` is set when it is consumed or superseded."""

    __tablename__ = "mail_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'password_reset')", name="purpose"),
        Index("ix_mail_tokens_user_id_purpose", "user_id", "purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=text("now()"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


add_event_tables(Base.metadata)

__all__ = ["Base", "MailToken", "RefreshFamily", "RefreshToken", "User"]
