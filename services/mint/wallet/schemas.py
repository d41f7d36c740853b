"""What the wallet's HTTP API answers (it takes no bodies)."""

from __future__ import annotations

import uuid

from mint.kit.schemas import Schema
from mint.kit.time import Instant


class WalletOut(Schema):
    id: uuid.UUID
    user_id: uuid.UUID
    currency: str
    balance: int
    held: int
    available: int
    status: str


class HistoryItemOut(Schema):
    transfer_id: str
    amount: int  # signed, from this user's side
    balance_after: int
    description: str
    counterparty_id: uuid.UUID | None  # the other user, null for system accounts
    created_at: Instant


class HistoryPage(Schema):
    items: list[HistoryItemOut]
    next_cursor: str | None
