"""gRPC ``mint.transactions.v1.TransactionService`` for the admin service.

``List``, ``Get`` and the admin actions ``Reverse``, ``ForceComplete`` and ``Fail`` (each
recorded with the admin as actor and their reason). A refusal is a domain error the kit's
interceptor answers with the status of its kind (``transaction_not_found`` → NOT_FOUND,
``invalid_cursor`` / ``reason_required`` → INVALID_ARGUMENT, ``invalid_state`` →
FAILED_PRECONDITION, ``dependency_unavailable`` → UNAVAILABLE, …).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from mint.kit.time import rfc3339
from mint.transactions import actions, domain
from mint.transactions.models import Transaction
from mint.transactions.schemas import TransactionOut
from mint.transactions.v1 import transactions_pb2 as pb
from mint.transactions.v1 import transactions_pb2_grpc as pb_grpc
from mint.transactions.wiring import Wiring

_OPTIONAL = (
    "sender_id",
    "recipient_id",
    "description",
    "merchant",
    "category",
    "failure_reason",
    "completed_at",
)


def to_proto(txn: Transaction) -> pb.Transaction:
    """The transaction object of the API (same strings), plus ``user_id`` and ``updated_at``."""
    obj = TransactionOut.model_validate(txn).model_dump(mode="json")
    msg = pb.Transaction(
        id=obj["id"],
        type=obj["type"],
        status=obj["status"],
        amount=obj["amount"],
        currency=obj["currency"],
        created_at=obj["created_at"],
        user_id=str(txn.user_id),
        updated_at=rfc3339(txn.updated_at),
    )
    for name in _OPTIONAL:
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


#: An admin use case of ``actions``.
AdminUseCase = Callable[[Wiring, actions.AdminAction], Transaction]


class TransactionServicer(pb_grpc.TransactionServiceServicer):
    def __init__(self, wire: Wiring) -> None:
        self.wire = wire
        self.db = wire.db

    def Get(
        self, request: pb.GetTransactionRequest, context: grpc.ServicerContext
    ) -> pb.Transaction:
        txn_id = domain.parse_transaction_id(request.id)
        with self.db.session() as session:
            return to_proto(actions.get_transaction(session, txn_id))

    def List(
        self, request: pb.ListTransactionsRequest, context: grpc.ServicerContext
    ) -> pb.ListTransactionsResponse:
        limit = domain.page_limit(request.limit)
        status = domain.parse_status(request.status)
        txn_type = domain.parse_type(request.type)
        user_id = domain.parse_user_id(request.user_id) if request.user_id else None
        with self.db.session() as session:
            rows, next_cursor = actions.list_transactions(
                session,
                party=user_id,
                limit=limit,
                cursor=request.cursor or None,
                status=status,
                type=txn_type,
            )
            return pb.ListTransactionsResponse(
                items=[to_proto(t) for t in rows], next_cursor=next_cursor or ""
            )

    def Reverse(
        self, request: pb.AdminActionRequest, context: grpc.ServicerContext
    ) -> pb.Transaction:
        return self._admin(actions.admin_reverse, request)

    def ForceComplete(
        self, request: pb.AdminActionRequest, context: grpc.ServicerContext
    ) -> pb.Transaction:
        return self._admin(actions.force_complete, request)

    def Fail(self, request: pb.AdminActionRequest, context: grpc.ServicerContext) -> pb.Transaction:
        return self._admin(actions.admin_fail, request)

    def _admin(self, use_case: AdminUseCase, request: pb.AdminActionRequest) -> pb.Transaction:
        reason, actor = domain.check_admin_action(request.reason, request.actor_id)
        txn_id = domain.parse_transaction_id(request.id)
        return to_proto(use_case(self.wire, actions.AdminAction(txn_id, actor, reason)))
