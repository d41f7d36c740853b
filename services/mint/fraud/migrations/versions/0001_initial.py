"""fraud: assessments, cases, user statistics, sanctions, outbox, processed events

Revision ID: 0001
Revises:
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mint.kit.events import create_event_tables, drop_event_tables
from mint.kit.events.tables import add_outbox_parking, drop_outbox_parking

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
TYPES_CHECK = "type IN ('TOPUP', 'TRANSFER', 'WITHDRAWAL')"
RULES = postgresql.ARRAY(sa.String(64))


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rules", RULES, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_assessments")),
        sa.CheckConstraint(TYPES_CHECK, name=op.f("ck_assessments_type")),
        sa.CheckConstraint(
            "decision IN ('ALLOW', 'REVIEW', 'BLOCK')", name=op.f("ck_assessments_decision")
        ),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("rules", RULES, nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("recipient_id", sa.Uuid(), nullable=True),
        sa.Column("reviewer_id", sa.String(255), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("closed_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_cases_transaction_id")),
        sa.CheckConstraint(TYPES_CHECK, name=op.f("ck_cases_type")),
        sa.CheckConstraint(
            "status IN ('OPEN', 'APPROVED', 'REJECTED', 'BLOCKED', 'CANCELLED')",
            name=op.f("ck_cases_status"),
        ),
        sa.CheckConstraint("decision IN ('REVIEW', 'BLOCK')", name=op.f("ck_cases_decision")),
        sa.CheckConstraint("(status = 'OPEN') = (closed_at IS NULL)", name=op.f("ck_cases_closed")),
    )
    op.create_index("ix_cases_created", "cases", ["created_at", "id"])
    op.create_index("ix_cases_status_created", "cases", ["status", "created_at", "id"])
    op.create_table(
        "user_stats",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("mean", sa.Double(), nullable=False),
        sa.Column("m2", sa.Double(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "type", name=op.f("pk_user_stats")),
        sa.CheckConstraint(TYPES_CHECK, name=op.f("ck_user_stats_type")),
    )
    op.create_table(
        "sanctions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("added_by", sa.String(255), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_sanctions")),
    )
    create_event_tables(op)
    add_outbox_parking(op)


def downgrade() -> None:
    drop_outbox_parking(op)
    drop_event_tables(op)
    op.drop_table("sanctions")
    op.drop_table("user_stats")
    op.drop_index("ix_cases_status_created", table_name="cases")
    op.drop_index("ix_cases_created", table_name="cases")
    op.drop_table("cases")
    op.drop_table("assessments")
