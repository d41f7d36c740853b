"""gRPC ``mint.transactions.v1.TransactionService`` for the admin service.

``List`` and ``Get`` are implemented; ``Reverse``, ``ForceComplete`` and ``Fail`` answer
UNIMPLEMENTED (the generated base class) until the admin issue lands.
"""

from __future__ import annotations

from typing import Any, NoReturn
from uuid import UUID

import grpc

from mint.kit.errors import Problem
from mint.kit.service import ServiceContext
from mint.transactions import domain, store
from mint.transactions.domain import Status, TxnType
from mint.transactions.models import Transaction
from mint.transactions.v1 import transactions_pb2 as pb
from mint.transactions.v1 import transactions_pb2_grpc as pb_grpc

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def to_proto(txn: Transaction) -> pb.Transaction:
    obj = domain.serialize(txn)
    msg = pb.Transaction(
        id=obj["id"],
        type=obj["type"],
        status=obj["status"],
        amount=obj["amount"],
        currency=obj["currency"],
        created_at=obj["created_at"],
        user_id=str(txn.user_id),
        updated_at=domain.rfc3339(txn.updated_at) or "",
    )
    for name in (
        "sender_id",
        "recipient_id",
        "description",
        "merchant",
        "category",
        "failure_reason",
        "completed_at",
    ):
        if obj[name] is not None:
            setattr(msg, name, obj[name])
    if obj["reference"] is not None:
        ref = obj["reference"]
        msg.reference.CopyFrom(
            pb.Reference(type=str(ref.get("type", "")), id=str(ref.get("id", "")))
        )
    if obj["fraud"] is not None:
        fraud = obj["fraud"]
        msg.fraud.CopyFrom(
            pb.Fraud(
                decision=fraud["decision"] or "",
                score=int(fraud["score"] or 0),
                rules=[str(r) for r in fraud["rules"]],
            )
        )
    return msg


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("unreachable")


def _uuid(value: str, context: grpc.ServicerContext, missing: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        _abort(context, grpc.StatusCode.NOT_FOUND, missing)


class TransactionServicer(pb_grpc.TransactionServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def Get(self, request: pb.GetTransactionRequest, context: grpc.ServicerContext) -> Any:
        txn_id = _uuid(request.id, context, "transaction_not_found")
        with self.ctx.database().session() as session:
            txn = session.get(Transaction, txn_id)
            if txn is None:
                _abort(context, grpc.StatusCode.NOT_FOUND, "transaction_not_found")
            return to_proto(txn)

    def List(self, request: pb.ListTransactionsRequest, context: grpc.ServicerContext) -> Any:
        limit = request.limit or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_limit")
        if request.status and request.status not in Status.__members__:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_status")
        if request.type and request.type not in TxnType.__members__:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_type")
        user_id = None
        if request.user_id:
            try:
                user_id = UUID(request.user_id)
            except ValueError:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "invalid_user_id")
        with self.ctx.database().session() as session:
            try:
                rows, next_cursor = store.list_page(
                    session,
                    user_id=user_id,
                    limit=limit,
                    cursor=request.cursor or None,
                    status=request.status or None,
                    type=request.type or None,
                )
            except Problem as exc:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, exc.code)
            return pb.ListTransactionsResponse(
                items=[to_proto(t) for t in rows], next_cursor=next_cursor or ""
            )
