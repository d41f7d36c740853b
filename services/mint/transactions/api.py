"""HTTP API under ``/api/v1/transactions`` (services.md §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse

from mint.kit import idempotency
from mint.kit.errors import Problem
from mint.kit.security import CurrentUser, client_ip
from mint.kit.service import Ctx
from mint.transactions import domain, store
from mint.transactions.domain import Status, TopupBody, TransferBody, TxnType, WithdrawBody
from mint.transactions.flow import NewTransaction, engine_for

router = APIRouter(tags=["transactions"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Required: 1-255 printable ASCII characters, scoped to the caller.",
    ),
]


class FraudOut(BaseModel):
    decision: str | None
    score: int | None
    rules: list[str]


class TransactionOut(BaseModel):
    """The transaction object (services.md §3), as ``domain.serialize`` builds it."""

    id: UUID
    type: TxnType
    status: Status
    amount: int
    currency: str
    sender_id: UUID | None
    recipient_id: UUID | None
    description: str | None
    merchant: str | None
    category: str | None
    reference: dict[str, Any] | None
    fraud: FraudOut | None
    failure_reason: str | None
    created_at: datetime
    completed_at: datetime | None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


_MOVEMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": TransactionOut, "description": "COMPLETED (a replay: Idempotent-Replayed)"},
    400: {"description": "missing or invalid Idempotency-Key, malformed JSON"},
    403: {"description": "account_frozen, fraud_blocked"},
    404: {"description": "recipient_not_found"},
    409: {"description": "idempotency_request_in_progress"},
    422: {"description": "validation, insufficient_funds, idempotency_key_reused, ..."},
    503: {"description": "dependency_unavailable"},
}


def _submit(
    request: Request, ctx: Ctx, key: str, body: domain.RequestBody, new: NewTransaction
) -> JSONResponse:
    canonical = body.model_dump(mode="json", exclude_none=True)
    fp = idempotency.fingerprint(request.method, request.url.path, canonical)
    return engine_for(ctx).submit(new, key, fp)


@router.post("/topup", status_code=201, responses=_MOVEMENT_RESPONSES)
def topup(
    body: TopupBody, request: Request, user: CurrentUser, ctx: Ctx, key: IdempotencyKey = None
) -> JSONResponse:
    """Add money from the funding source to my wallet."""
    valid_key = idempotency.validate_key(key)
    new = NewTransaction(
        user_id=user.user_id,
        type=TxnType.TOPUP,
        amount=body.amount,
        currency=domain.check_currency(body.currency),
        sender_id=None,
        recipient_id=user.user_id,
        description=body.description,
        client_ip=client_ip(request, ctx.settings),
    )
    return _submit(request, ctx, valid_key, body, new)


@router.post("/transfer", status_code=201, responses=_MOVEMENT_RESPONSES)
def transfer(
    body: TransferBody, request: Request, user: CurrentUser, ctx: Ctx, key: IdempotencyKey = None
) -> JSONResponse:
    """Send money to another user."""
    valid_key = idempotency.validate_key(key)
    new = NewTransaction(
        user_id=user.user_id,
        type=TxnType.TRANSFER,
        amount=body.amount,
        currency=domain.check_currency(body.currency),
        sender_id=user.user_id,
        recipient_id=body.recipient_id,
        description=body.description,
        merchant=body.merchant,
        category=body.category,
        client_ip=client_ip(request, ctx.settings),
    )
    return _submit(request, ctx, valid_key, body, new)


@router.post("/withdraw", status_code=201, responses=_MOVEMENT_RESPONSES)
def withdraw(
    body: WithdrawBody, request: Request, user: CurrentUser, ctx: Ctx, key: IdempotencyKey = None
) -> JSONResponse:
    """Move money from my wallet to the payout account."""
    valid_key = idempotency.validate_key(key)
    new = NewTransaction(
        user_id=user.user_id,
        type=TxnType.WITHDRAWAL,
        amount=body.amount,
        currency=domain.check_currency(body.currency),
        sender_id=user.user_id,
        recipient_id=None,
        client_ip=client_ip(request, ctx.settings),
    )
    return _submit(request, ctx, valid_key, body, new)


@router.get("", response_model=None, responses={200: {"model": TransactionPage}})
def list_transactions(
    user: CurrentUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: Status | None = None,
    type: TxnType | None = None,
) -> dict[str, Any]:
    """My transactions (as sender or recipient), newest first."""
    with ctx.database().session() as session:
        rows, next_cursor = store.list_page(
            session,
            user_id=user.user_id,
            limit=limit,
            cursor=cursor,
            status=status.value if status else None,
            type=type.value if type else None,
        )
        return {"items": [domain.serialize(t) for t in rows], "next_cursor": next_cursor}


def _parse_id(txn_id: str) -> UUID:
    try:
        return UUID(txn_id)
    except ValueError:
        raise _not_found() from None


def _not_found() -> Problem:
    return Problem(404, "transaction_not_found", "transaction not found")


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "transaction_not_found (also another user's transaction)"}
}


@router.get(
    "/{txn_id}", response_model=None, responses={200: {"model": TransactionOut}, **_NOT_FOUND}
)
def get_transaction(txn_id: str, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """One of my transactions; anyone else's is a 404."""
    with ctx.database().session() as session:
        txn = store.get_for_party(session, _parse_id(txn_id), user.user_id)
        if txn is None:
            raise _not_found()
        return domain.serialize(txn)


@router.post(
    "/{txn_id}/cancel",
    response_model=None,
    responses={
        200: {"model": TransactionOut},
        403: {"description": "forbidden: only the sender can cancel"},
        409: {"description": "invalid_state: the transaction is not PENDING"},
        **_NOT_FOUND,
    },
)
def cancel_transaction(txn_id: str, user: CurrentUser, ctx: Ctx) -> dict[str, Any]:
    """Cancel my PENDING transaction (its initiator only); 409 ``invalid_state`` otherwise."""
    tid = _parse_id(txn_id)
    with ctx.database().session() as session:
        txn = store.lock(session, tid)
        if txn is None or user.user_id not in (txn.sender_id, txn.recipient_id):
            raise _not_found()
        if txn.user_id != user.user_id:
            raise Problem(403, "forbidden", "only the sender can cancel this transaction")
        if not domain.can_transition(txn.status, Status.CANCELLED):
            raise Problem(409, "invalid_state", f"a {txn.status} transaction cannot be cancelled")
        # A hold (REVIEW) is released here once the review flow lands.
        store.settle(
            session, txn, Status.CANCELLED, actor=str(user.user_id), reason="cancelled by sender"
        )
        return domain.serialize(txn)
