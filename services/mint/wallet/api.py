"""Public HTTP API under ``/api/v1/wallet``: the caller's wallet and its history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mint.kit.errors import Problem
from mint.kit.security import CurrentUser
from mint.kit.service import DbSession
from mint.wallet import store
from mint.wallet.domain import InvalidArgument, NotFound

router = APIRouter(tags=["wallet"])


class WalletOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    currency: str
    balance: int
    held: int
    available: int
    status: str


class HistoryItemOut(BaseModel):
    transfer_id: str
    amount: int  # signed, from this user's side
    balance_after: int
    description: str
    counterparty_id: uuid.UUID | None  # the other user, null for system accounts
    created_at: datetime


class HistoryPage(BaseModel):
    items: list[HistoryItemOut]
    next_cursor: str | None


_WALLET_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no wallet yet (wallet_not_found)"}
}


@router.get("", response_model=WalletOut, responses=_WALLET_NOT_FOUND)
def get_my_wallet(user: CurrentUser, session: DbSession) -> WalletOut:
    wallet = store.get_wallet(session, user.user_id)
    if wallet is None:
        raise Problem(404, "wallet_not_found", "no wallet yet")
    return WalletOut(
        id=wallet.id,
        user_id=wallet.user_id,
        currency=wallet.currency,
        balance=wallet.balance,
        held=wallet.held,
        available=wallet.available,
        status=wallet.status,
    )


@router.get("/history", response_model=HistoryPage, responses=_WALLET_NOT_FOUND)
def get_history(
    user: CurrentUser,
    session: DbSession,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, max_length=512),
) -> HistoryPage:
    try:
        items, next_cursor = store.history(session, user.user_id, limit, cursor)
    except NotFound:
        raise Problem(404, "wallet_not_found", "no wallet yet") from None
    except InvalidArgument:
        raise Problem(422, "invalid_cursor", "cursor is not valid") from None
    return HistoryPage(
        items=[
            HistoryItemOut(
                transfer_id=i.transfer_id,
                amount=i.amount,
                balance_after=i.balance_after,
                description=i.description,
                counterparty_id=i.counterparty_id,
                created_at=i.created_at,
            )
            for i in items
        ],
        next_cursor=next_cursor,
    )
