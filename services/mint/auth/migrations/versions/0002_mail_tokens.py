"""auth: single-use mail tokens (email verification, password reset), stored hashed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mail_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mail_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_mail_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_mail_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'password_reset')", name="ck_mail_tokens_purpose"
        ),
    )
    op.create_index("ix_mail_tokens_user_id_purpose", "mail_tokens", ["user_id", "purpose"])


def downgrade() -> None:
    op.drop_table("mail_tokens")
