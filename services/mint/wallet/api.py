"""Public HTTP API under ``/api/v1/wallet``: the caller's wallet and its history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from mint.kit.security import CurrentUser
from mint.kit.service import DbSession
from mint.wallet import actions
from mint.wallet.schemas import HistoryItemOut, HistoryPage, WalletOut

router = APIRouter(tags=["wallet"])

_WALLET_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "no wallet yet (wallet_not_found)"}
}


@router.get("", response_model=WalletOut, responses=_WALLET_NOT_FOUND)
def get_my_wallet(user: CurrentUser, session: DbSession) -> WalletOut:
    return WalletOut.model_validate(actions.get_wallet(session, user.user_id))


@router.get("/history", response_model=HistoryPage, responses=_WALLET_NOT_FOUND)
def get_history(
    user: CurrentUser,
    session: DbSession,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, max_length=512),
) -> HistoryPage:
    items, next_cursor = actions.history(session, user.user_id, limit, cursor)
    return HistoryPage(
        items=[HistoryItemOut.model_validate(item) for item in items], next_cursor=next_cursor
    )
