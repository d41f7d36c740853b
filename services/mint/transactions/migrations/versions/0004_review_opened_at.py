"""transactions: review_opened_at — when a REVIEW's hold was placed and its request answered
202 (the 72 h review expiry counts from it; NULL on a REVIEW means the hold is not confirmed
yet and recovery re-issues it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "transactions", sa.Column("review_opened_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("transactions", "review_opened_at")
