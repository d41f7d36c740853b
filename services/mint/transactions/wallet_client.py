"""The wallet adapter: every wallet call of the transaction engine, each answer classified into
what the flow needs to know — done (posted, held, released, reversed), declined (with the
public failure reason: nothing changed), or unknown (wallet down, no answer, an error that says
nothing about the outcome). Every call is idempotent at the wallet by an id derived from the
transaction (the transfer id and the hold id are the transaction id), so re-issuing one after
an unknown answer never moves money twice."""

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


@dataclass(frozen=True)
class NotPosted:
    """``GetTransfer``: the wallet has no entry with this transfer id."""


@dataclass(frozen=True)
class Done:
    """A hold placed or released (``replayed``: it already was)."""

    replayed: bool


WalletAnswer = Posted | Declined | Unknown
HoldAnswer = Done | Declined | Unknown
#: What a reversal was refused for when the recipient's available balance cannot cover it.
REVERSAL_INSUFFICIENT_FUNDS = "reversal_insufficient_funds"


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


def hold_id(txn: Transaction) -> str:
    return str(txn.id)


@dataclass(frozen=True)
class WalletClient:
    """The wallet's idempotent operations over ``stub`` (a ``WalletServiceStub``)."""

    stub: Any

    def post_transfer(self, request: wallet_pb2.TransferRequest, txn_type: str) -> WalletAnswer:
        """Call ``Transfer`` and classify the answer."""
        try:
            result = self.stub.Transfer(request)
        except grpc.RpcError as err:
            return self._classify(err, request, txn_type)
        return Posted(replayed=bool(result.replayed))

    def settle(self, txn: Transaction) -> WalletAnswer:
        """Post a PROCESSING transaction: capture its review hold when it holds funds, else
        ``Transfer`` — either way with the transaction id as the transfer id."""
        if not domain.holds_funds(txn.type, txn.fraud):
            return self.post_transfer(transfer_request(txn), txn.type)
        _, to_account = domain.accounts_for(txn.type, txn.sender_id, txn.recipient_id)
        request = wallet_pb2.CaptureHoldRequest(
            hold_id=hold_id(txn),
            to_account=to_account,
            transfer_id=str(txn.id),
            description=txn.description or "",
        )
        try:
            self.stub.CaptureHold(request)
        except grpc.RpcError as err:
            error = error_from_rpc(err)
            if isinstance(error, Refused | Invalid | NotFound):
                # a released or unknown hold, a frozen or missing recipient: nothing posted
                reason = domain.failure_reason_for_wallet(error.code, txn.type)
                return Declined(
                    "recipient_unavailable" if error.code == "wallet_not_found" else reason
                )
            log.warning("wallet_capture_unknown", transaction_id=str(txn.id), error=repr(error))
            return Unknown()
        return Posted(replayed=False)

    def place_hold(self, txn: Transaction) -> HoldAnswer:
        """Hold a reviewed transaction's amount on the payer's account (idempotent by hold id).
        Declined as a transfer would be: insufficient funds, a frozen or missing account."""
        from_account, _ = domain.accounts_for(txn.type, txn.sender_id, txn.recipient_id)
        request = wallet_pb2.HoldRequest(
            hold_id=hold_id(txn), account=from_account, amount=txn.amount, currency=txn.currency
        )
        try:
            result = self.stub.Hold(request)
        except grpc.RpcError as err:
            error = error_from_rpc(err)
            if isinstance(error, Refused | Invalid):
                return Declined(domain.failure_reason_for_wallet(error.code, txn.type))
            if isinstance(error, NotFound):
                return Declined("wallet_not_found")
            log.warning("wallet_hold_unknown", transaction_id=str(txn.id), error=repr(error))
            return Unknown()
        return Done(replayed=bool(result.replayed))

    def release_hold(self, txn: Transaction) -> HoldAnswer:
        """Release a transaction's hold, if it has one (no hold — never placed — is released
        already). Declined only when the hold was captured: the money moved."""
        if not domain.holds_funds(txn.type, txn.fraud):
            return Done(replayed=True)
        try:
            result = self.stub.ReleaseHold(wallet_pb2.ReleaseHoldRequest(hold_id=hold_id(txn)))
        except grpc.RpcError as err:
            error = error_from_rpc(err)
            if isinstance(error, NotFound):
                return Done(replayed=True)
            if isinstance(error, Refused):
                return Declined(error.code)
            log.warning("wallet_release_unknown", transaction_id=str(txn.id), error=repr(error))
            return Unknown()
        return Done(replayed=bool(result.replayed))

    def find_transfer(self, txn: Transaction) -> Posted | NotPosted | Unknown:
        """``GetTransfer``: whether the wallet posted this transaction (never posts)."""
        try:
            self.stub.GetTransfer(wallet_pb2.GetTransferRequest(transfer_id=str(txn.id)))
        except grpc.RpcError as err:
            if isinstance(error_from_rpc(err), NotFound):
                return NotPosted()
            log.warning("wallet_get_transfer_unknown", transaction_id=str(txn.id))
            return Unknown()
        return Posted(replayed=True)

    def reverse(self, txn: Transaction, reversal_id: str) -> WalletAnswer:
        """Post the mirror entry of a completed transaction (idempotent by ``reversal_id``).
        Declined ``reversal_insufficient_funds`` when the recipient cannot cover it."""
        request = wallet_pb2.ReverseRequest(transfer_id=str(txn.id), reversal_id=reversal_id)
        try:
            result = self.stub.Reverse(request)
        except grpc.RpcError as err:
            error = error_from_rpc(err)
            if isinstance(error, Refused | Invalid | NotFound):
                if error.code in ("insufficient_funds", REVERSAL_INSUFFICIENT_FUNDS):
                    return Declined(REVERSAL_INSUFFICIENT_FUNDS)
                return Declined(error.code)
            log.warning("wallet_reverse_unknown", transaction_id=str(txn.id), error=repr(error))
            return Unknown()
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
