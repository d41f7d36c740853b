"""transactions: transactions, transitions, outbox, processed events, idempotency keys

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mint.kit.events import create_event_tables, drop_event_tables
from mint.kit.idempotency import create_idempotency_table, drop_idempotency_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
STATUSES = "'PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED', 'REVERSED'"
PARTIES = (
    "(type = 'TOPUP' AND sender_id IS NULL AND recipient_id IS NOT NULL)"
    " OR (type = 'WITHDRAWAL' AND sender_id IS NOT NULL AND recipient_id IS NULL)"
    " OR (type = 'TRANSFER' AND sender_id IS NOT NULL AND recipient_id IS NOT NULL)"
)


def upgrade() -> None:
    op.create_table(
        "transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=True),
        sa.Column("recipient_id", sa.Uuid(), nullable=True),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("merchant", sa.String(100), nullable=True),
        sa.Column("category", sa.String(16), nullable=True),
        sa.Column("reference", postgresql.JSONB(), nullable=True),
        sa.Column("fraud", postgresql.JSONB(), nullable=True),
        sa.Column("failure_reason", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("completed_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.CheckConstraint(
            "type IN ('TOPUP', 'TRANSFER', 'WITHDRAWAL')", name=op.f("ck_transactions_type")
        ),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_transactions_status")),
        sa.CheckConstraint(
            "amount > 0 AND amount < 1000000000000", name=op.f("ck_transactions_amount")
        ),
        sa.CheckConstraint(PARTIES, name=op.f("ck_transactions_parties")),
    )
    op.create_index("ix_transactions_sender", "transactions", ["sender_id", "created_at", "id"])
    op.create_index(
        "ix_transactions_recipient", "transactions", ["recipient_id", "created_at", "id"]
    )
    op.create_index(
        "ix_transactions_open",
        "transactions",
        ["status", "updated_at"],
        postgresql_where=sa.text("status IN ('PENDING', 'PROCESSING')"),
    )
    op.create_index("ix_transactions_idempotency", "transactions", ["user_id", "idempotency_key"])
    op.create_table(
        "transaction_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_transitions")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_transaction_transitions_transaction_id_transactions"),
        ),
    )
    op.create_index(
        "ix_transaction_transitions_txn", "transaction_transitions", ["transaction_id", "id"]
    )
    create_event_tables(op)
    create_idempotency_table(op)


def downgrade() -> None:
    drop_idempotency_table(op)
    drop_event_tables(op)
    op.drop_index("ix_transaction_transitions_txn", table_name="transaction_transitions")
    op.drop_table("transaction_transitions")
    for name in (
        "ix_transactions_idempotency",
        "ix_transactions_open",
        "ix_transactions_recipient",
        "ix_transactions_sender",
    ):
        op.drop_index(name, table_name="transactions")
    op.drop_table("transactions")
