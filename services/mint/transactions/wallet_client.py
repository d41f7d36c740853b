"""The one wallet call of a money movement, classified into what the engine needs to know:
posted, refused (with the public failure reason), or unknown (wallet down / no answer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from mint.transactions import domain
from mint.transactions.domain import TxnType
from mint.transactions.models import Transaction
from mint.wallet.v1 import wallet_pb2

log = structlog.get_logger("mint.transactions.wallet")


@dataclass(frozen=True)
class Posted:
    replayed: bool


@dataclass(frozen=True)
class Refused:
    failure_reason: str


@dataclass(frozen=True)
class Unknown:
    """No definite answer (UNAVAILABLE, DEADLINE_EXCEEDED, an internal error): the transfer may
    or may not have posted, so the transaction stays PROCESSING for recovery."""

    code: str


WalletOutcome = Posted | Refused | Unknown


def transfer_request(txn: Transaction) -> wallet_pb2.TransferRequest:
    from_account, to_account = domain.accounts_for(txn.type, txn.sender_id, txn.recipient_id)
    return wallet_pb2.TransferRequest(
        transfer_id=str(txn.id),  # the transaction id: re-issuing it never posts twice
        from_account=from_account,
        to_account=to_account,
        amount=txn.amount,
        currency=txn.currency,
        description=txn.description or "",
    )


def post_transfer(stub: Any, request: wallet_pb2.TransferRequest, txn_type: str) -> WalletOutcome:
    """Call the wallet's idempotent ``Transfer`` and classify the answer."""
    try:
        result = stub.Transfer(request)
    except grpc.RpcError as err:
        return _classify(stub, err, request, txn_type)
    return Posted(replayed=bool(result.replayed))


def _classify(
    stub: Any, err: grpc.RpcError, request: wallet_pb2.TransferRequest, txn_type: str
) -> WalletOutcome:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else "") or ""
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
        return Refused(domain.failure_reason_for_wallet(details, txn_type))
    if code == grpc.StatusCode.NOT_FOUND:
        if txn_type != TxnType.TRANSFER:
            return Refused("wallet_not_found")
        return Refused(_missing_party(stub, request.from_account))
    log.warning("wallet_transfer_unknown", code=code.name, details=details)
    return Unknown(code=code.name)


def _missing_party(stub: Any, from_account: str) -> str:
    """NOT_FOUND names neither account: it is the recipient's unless the sender has no wallet."""
    try:
        stub.GetWallet(wallet_pb2.GetWalletRequest(user_id=from_account.removeprefix("user:")))
    except grpc.RpcError as err:
        if hasattr(err, "code") and err.code() == grpc.StatusCode.NOT_FOUND:
            return "wallet_not_found"
    return "recipient_not_found"
