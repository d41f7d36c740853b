"""wallet: system accounts keep no running balance — their balance is the sum of their postings
(postings.balance_after is NULL for them, accounts.balance stays 0), so top-ups and
withdrawals of unrelated users never lock the one external:funding / external:payout row

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SYSTEM = "SELECT id FROM accounts WHERE kind = 'SYSTEM'"


def upgrade() -> None:
    op.alter_column("postings", "balance_after", existing_type=sa.BigInteger(), nullable=True)
    op.execute(f"UPDATE postings SET balance_after = NULL WHERE account_id IN ({_SYSTEM})")
    op.execute("UPDATE accounts SET balance = 0 WHERE kind = 'SYSTEM'")
    op.create_check_constraint(
        "system_no_running_balance", "accounts", "kind = 'USER' OR balance = 0"
    )


def downgrade() -> None:
    op.drop_constraint("ck_accounts_system_no_running_balance", "accounts", type_="check")
    op.execute(
        f"""
        UPDATE postings p SET balance_after = s.running FROM (
            SELECT id, SUM(amount) OVER (PARTITION BY account_id ORDER BY id) AS running
            FROM postings WHERE account_id IN ({_SYSTEM})
        ) s WHERE p.id = s.id
        """
    )
    op.execute(
        f"""
        UPDATE accounts a SET balance = COALESCE(
            (SELECT SUM(amount) FROM postings p WHERE p.account_id = a.id), 0)
        WHERE a.id IN ({_SYSTEM})
        """
    )
    op.alter_column("postings", "balance_after", existing_type=sa.BigInteger(), nullable=False)
