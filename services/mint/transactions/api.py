"""HTTP API under ``/api/v1/transactions`` (services.md §3)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import JSONResponse

from mint.kit import idempotency
from mint.kit.security import CurrentUser, client_ip
from mint.kit.service import DbSession, wiring
from mint.transactions import actions, answers, domain
from mint.transactions.actions import NewTransaction
from mint.transactions.domain import Status, TxnType
from mint.transactions.outcomes import Settled
from mint.transactions.schemas import (
    MovementBody,
    TopupBody,
    TransactionOut,
    TransactionPage,
    TransferBody,
    WithdrawBody,
)
from mint.transactions.wiring import Wiring

router = APIRouter(tags=["transactions"])

Wired = Annotated[Wiring, Depends(wiring(Wiring))]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Required: 1-255 printable ASCII characters, scoped to the caller.",
    ),
]

_MOVEMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": TransactionOut, "description": "COMPLETED (a replay: Idempotent-Replayed)"},
    202: {
        "model": TransactionOut,
        "description": "PENDING under fraud review: the amount is held until a reviewer "
        "approves (COMPLETED) or blocks it, the sender cancels it or the review expires "
        "(CANCELLED, released)",
    },
    400: {"description": "missing or invalid Idempotency-Key, malformed JSON"},
    403: {"description": "account_frozen, fraud_blocked"},
    404: {"description": "recipient_not_found"},
    409: {"description": "idempotency_request_in_progress"},
    422: {"description": "validation, insufficient_funds, idempotency_key_reused, ..."},
    429: {
        "description": "too_many_requests: this user already has money requests running; "
        "nothing moved and the key was released — retry after Retry-After seconds with the "
        "same key"
    },
    503: {
        "description": "dependency_unavailable, with `transaction_id` and "
        "`transaction_status` (`status` is the HTTP status, RFC 9457). "
        "`transaction_status: FAILED` — nothing moved; a new Idempotency-Key is safe. "
        "`transaction_status: PROCESSING` — the outcome is pending; retry with the SAME key (409 "
        "idempotency_request_in_progress until it is known, then the final answer is "
        "replayed); a new key could pay twice."
    },
}


def _submit(
    request: Request, wire: Wiring, key: str, body: MovementBody, new: NewTransaction
) -> JSONResponse:
    canonical = body.model_dump(mode="json", exclude_none=True)
    fp = idempotency.fingerprint(request.method, request.url.path, canonical)
    outcome = actions.submit(wire, new, key, fp)
    if isinstance(outcome, Settled):
        # the very answer the idempotency row stored with the settlement
        return answers.respond(*wire.render(outcome))
    return idempotency.respond(outcome)


@router.post("/topup", status_code=201, responses=_MOVEMENT_RESPONSES)
def topup(
    body: TopupBody, request: Request, user: CurrentUser, wire: Wired, key: IdempotencyKey = None
) -> JSONResponse:
    """Add money from the funding source to my wallet."""
    valid_key = idempotency.validate_key(key)
    new = NewTransaction(
        user_id=user.user_id,
        type=TxnType.TOPUP,
        amount=body.amount,
        currency=body.currency,
        sender_id=None,
        recipient_id=user.user_id,
        description=body.description,
        client_ip=client_ip(request, wire.settings),
    )
    return _submit(request, wire, valid_key, body, new)


@router.post("/transfer", status_code=201, responses=_MOVEMENT_RESPONSES)
def transfer(
    body: TransferBody, request: Request, user: CurrentUser, wire: Wired, key: IdempotencyKey = None
) -> JSONResponse:
    """Send money to another user."""
    valid_key = idempotency.validate_key(key)
    new = NewTransaction(
        user_id=user.user_id,
        type=TxnType.TRANSFER,
        amount=body.amount,
        currency=body.currency,
        sender_id=user.user_id,
        recipient_id=body.recipient_id,
        description=body.description,
        merchant=body.merchant,
        category=body.category,
        client_ip=client_ip(request, wire.settings),
    )
    return _submit(request, wire, valid_key, body, new)


@router.post("/withdraw", status_code=201, responses=_MOVEMENT_RESPONSES)
def withdraw(
    body: WithdrawBody, request: Request, user: CurrentUser, wire: Wired, key: IdempotencyKey = None
) -> JSONResponse:
    """Move money from my wallet to the payout account."""
    valid_key = idempotency.validate_key(key)
    new = NewTransaction(
        user_id=user.user_id,
        type=TxnType.WITHDRAWAL,
        amount=body.amount,
        currency=body.currency,
        sender_id=user.user_id,
        recipient_id=None,
        client_ip=client_ip(request, wire.settings),
    )
    return _submit(request, wire, valid_key, body, new)


@router.get("", response_model=TransactionPage)
def list_transactions(
    user: CurrentUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=domain.MAX_PAGE)] = domain.DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    status: Status | None = None,
    type: TxnType | None = None,
) -> TransactionPage:
    """My transactions (as sender or recipient), newest first."""
    rows, next_cursor = actions.list_transactions(
        session, party=user.user_id, limit=limit, cursor=cursor, status=status, type=type
    )
    return TransactionPage(
        items=[TransactionOut.model_validate(t) for t in rows], next_cursor=next_cursor
    )


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "transaction_not_found (also another user's transaction)"}
}


@router.get("/{txn_id}", response_model=TransactionOut, responses=_NOT_FOUND)
def get_transaction(txn_id: str, user: CurrentUser, session: DbSession) -> TransactionOut:
    """One of my transactions; anyone else's is a 404."""
    found = actions.get_transaction(
        session, domain.parse_transaction_id(txn_id), party=user.user_id
    )
    return TransactionOut.model_validate(found)


@router.post(
    "/{txn_id}/cancel",
    response_model=TransactionOut,
    responses={
        403: {"description": "forbidden: only the sender can cancel"},
        409: {
            "description": "invalid_state: the transaction is not PENDING; "
            "idempotency_request_in_progress: it is being decided right now"
        },
        503: {"description": "dependency_unavailable: the hold could not be released"},
        **_NOT_FOUND,
    },
)
def cancel_transaction(txn_id: str, user: CurrentUser, wire: Wired) -> TransactionOut:
    """Cancel my PENDING transaction (its initiator only); 409 ``invalid_state`` otherwise."""
    tid: UUID = domain.parse_transaction_id(txn_id)
    # its own unit of work, committed before answering (DbSession commits after the response)
    cancelled = actions.cancel(wire, tid, user.user_id)
    return TransactionOut.model_validate(cancelled)
