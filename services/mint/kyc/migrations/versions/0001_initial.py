"""kyc: profiles, documents, idempotency keys, outbox, processed events

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mint.kit.events import create_event_tables, drop_event_tables
from mint.kit.idempotency import create_idempotency_table, drop_idempotency_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("full_name", sa.String(200), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("reviewer_id", sa.String(255), nullable=True),
        sa.Column("submitted_at", TZ, nullable=True),
        sa.Column("reviewed_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
        sa.UniqueConstraint("user_id", name=op.f("uq_profiles_user_id")),
        sa.CheckConstraint(
            "tier IN ('UNVERIFIED', 'BASIC', 'VERIFIED')", name=op.f("ck_profiles_tier")
        ),
        sa.CheckConstraint(
            "status IN ('NONE', 'PENDING_REVIEW', 'APPROVED', 'REJECTED')",
            name=op.f("ck_profiles_status"),
        ),
        sa.CheckConstraint(
            "status <> 'PENDING_REVIEW' OR submitted_at IS NOT NULL",
            name=op.f("ck_profiles_submitted"),
        ),
    )
    op.create_index(
        "ix_profiles_pending_queue",
        "profiles",
        ["submitted_at", "id"],
        postgresql_where=sa.text("status = 'PENDING_REVIEW'"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("profile_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("uploaded_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["profiles.id"],
            name=op.f("fk_documents_profile_id_profiles"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("profile_id", "type", name="uq_documents_profile_type"),
        sa.UniqueConstraint("storage_key", name=op.f("uq_documents_storage_key")),
        sa.CheckConstraint(
            "type IN ('PASSPORT', 'DRIVERS_LICENSE', 'SELFIE', 'UTILITY_BILL', 'OTHER')",
            name=op.f("ck_documents_type"),
        ),
        sa.CheckConstraint(
            "status IN ('UPLOADED', 'SUBMITTED', 'APPROVED', 'REJECTED')",
            name=op.f("ck_documents_status"),
        ),
        sa.CheckConstraint(
            "content_type IN ('image/jpeg', 'image/png', 'application/pdf')",
            name=op.f("ck_documents_content_type"),
        ),
        sa.CheckConstraint("size > 0", name=op.f("ck_documents_size_positive")),
    )
    create_idempotency_table(op)
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    drop_idempotency_table(op)
    op.drop_table("documents")
    op.drop_index("ix_profiles_pending_queue", table_name="profiles")
    op.drop_table("profiles")
