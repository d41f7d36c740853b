"""The wallet adapter: the one wallet call of a money movement, classified into what the flow
needs to know — posted, declined (with the public failure reason), or unknown (wallet down, no
answer, an error that says nothing about the transfer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from mint.contracts.money import user_of_account
from mint.kit.domain import Invalid, NotFound, Refused
from mint.kit.rpc import error_from_rpc
from mint.transactions import domain
from mint.transactions.domain import TxnType
from mint.transactions.models import Transaction
from mint.wallet.v1 import wallet_pb2

log = structlog.get_logger("mint.transactions.wallet")


@dataclass(frozen=True)
class Posted:
    replayed: bool


@dataclass(frozen=True)
class Declined:
    """A definite refusal: nothing was posted."""

    failure_reason: str


@dataclass(frozen=True)
class Unknown:
    """No definite answer (UNAVAILABLE, DEADLINE_EXCEEDED, an internal error): the transfer may
    or may not have posted, so the transaction stays PROCESSING for recovery."""


WalletAnswer = Posted | Declined | Unknown


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


@dataclass(frozen=True)
class WalletClient:
    """The wallet's idempotent ``Transfer`` over ``stub`` (a ``WalletServiceStub``)."""

    stub: Any

    def post_transfer(self, request: wallet_pb2.TransferRequest, txn_type: str) -> WalletAnswer:
        """Call ``Transfer`` and classify the answer."""
        try:
            result = self.stub.Transfer(request)
        except grpc.RpcError as err:
            return self._classify(err, request, txn_type)
        return Posted(replayed=bool(result.replayed))

    def _classify(
        self, err: grpc.RpcError, request: wallet_pb2.TransferRequest, txn_type: str
    ) -> WalletAnswer:
        error = error_from_rpc(err)
        if isinstance(error, Refused | Invalid):
            return Declined(domain.failure_reason_for_wallet(error.code, txn_type))
        if isinstance(error, NotFound):
            if txn_type != TxnType.TRANSFER:
                return Declined("wallet_not_found")
            return Declined(self._missing_party(request.from_account))
        log.warning("wallet_transfer_unknown", error=repr(error))
        return Unknown()

    def _missing_party(self, from_account: str) -> str:
        """NOT_FOUND names neither account: it is the recipient's unless the sender has no
        wallet."""
        sender = user_of_account(from_account)
        try:
            self.stub.GetWallet(wallet_pb2.GetWalletRequest(user_id=str(sender)))
        except grpc.RpcError as err:
            if isinstance(error_from_rpc(err), NotFound):
                return "wallet_not_found"
        return "recipient_not_found"
