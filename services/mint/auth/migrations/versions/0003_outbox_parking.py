"""auth: outbox retry backoff and parking (next_attempt_at, parked_at): a row the
cluster keeps refusing is set aside, not retried forever (`mint outbox requeue` puts it back)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from __future__ import annotations

from alembic import op

from mint.kit.events.tables import add_outbox_parking, drop_outbox_parking

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_parking(op)


def downgrade() -> None:
    drop_outbox_parking(op)
