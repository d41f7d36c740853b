"""wallet: accounts, journal entries, postings, holds, outbox, processed events

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mint.kit.events import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_user_id", sa.Uuid(), nullable=True),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("held", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("status", sa.String(8), nullable=False, server_default="ACTIVE"),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("owner_user_id", name=op.f("uq_accounts_owner_user_id")),
        sa.UniqueConstraint("code", name=op.f("uq_accounts_code")),
        sa.CheckConstraint("kind IN ('USER', 'SYSTEM')", name=op.f("ck_accounts_kind")),
        sa.CheckConstraint("status IN ('ACTIVE', 'FROZEN')", name=op.f("ck_accounts_status")),
        sa.CheckConstraint("held >= 0", name=op.f("ck_accounts_held_not_negative")),
        sa.CheckConstraint(
            "kind <> 'USER' OR balance - held >= 0", name=op.f("ck_accounts_user_available")
        ),
        sa.CheckConstraint(
            "(kind = 'USER') = (owner_user_id IS NOT NULL)",
            name=op.f("ck_accounts_user_has_owner"),
        ),
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("transfer_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("from_account_id", sa.Uuid(), nullable=False),
        sa.Column("to_account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reversal_of", sa.Uuid(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_journal_entries_transfer_id")),
        sa.UniqueConstraint("reversal_of", name=op.f("uq_journal_entries_reversal_of")),
        sa.ForeignKeyConstraint(
            ["from_account_id"],
            ["accounts.id"],
            name=op.f("fk_journal_entries_from_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["to_account_id"],
            ["accounts.id"],
            name=op.f("fk_journal_entries_to_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["reversal_of"],
            ["journal_entries.id"],
            name=op.f("fk_journal_entries_reversal_of_journal_entries"),
        ),
        sa.CheckConstraint(
            "kind IN ('TRANSFER', 'CAPTURE', 'REVERSAL')", name=op.f("ck_journal_entries_kind")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_journal_entries_amount_positive")),
        sa.CheckConstraint(
            "(kind = 'REVERSAL') = (reversal_of IS NOT NULL)",
            name=op.f("ck_journal_entries_reversal"),
        ),
    )
    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["journal_entries.id"], name=op.f("fk_postings_entry_id_journal_entries")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_postings_account_id_accounts")
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_postings_amount_not_zero")),
    )
    op.create_index(op.f("ix_postings_entry_id"), "postings", ["entry_id"])
    op.create_index(
        op.f("ix_postings_account_history"), "postings", ["account_id", "created_at", "id"]
    )
    op.create_table(
        "holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("hold_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("capture_transfer_id", sa.String(255), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_holds_hold_id")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_holds_account_id_accounts")
        ),
        sa.CheckConstraint(
            "status IN ('OPEN', 'CAPTURED', 'RELEASED')", name=op.f("ck_holds_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_holds_amount_positive")),
        sa.CheckConstraint(
            "(status = 'CAPTURED') = (capture_transfer_id IS NOT NULL)",
            name=op.f("ck_holds_capture"),
        ),
    )
    op.create_index(
        op.f("ix_holds_open_account"),
        "holds",
        ["account_id"],
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    op.drop_index(op.f("ix_holds_open_account"), table_name="holds")
    op.drop_table("holds")
    op.drop_index(op.f("ix_postings_account_history"), table_name="postings")
    op.drop_index(op.f("ix_postings_entry_id"), table_name="postings")
    op.drop_table("postings")
    op.drop_table("journal_entries")
    op.drop_table("accounts")
