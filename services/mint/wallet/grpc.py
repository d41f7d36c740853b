"""gRPC ``mint.wallet.v1.WalletService``: the only way other services move money.

Each RPC opens a unit of work and calls one use case; a refusal is a domain error the kit's
interceptor answers with the status of its kind and the stable reason as details
(``insufficient_funds`` → FAILED_PRECONDITION, ``wallet_not_found`` → NOT_FOUND, …).
"""

from __future__ import annotations

import grpc
import structlog

from mint.kit.db import Database
from mint.kit.time import rfc3339
from mint.wallet import actions, domain
from mint.wallet.store import HoldResult, TransferResult, WalletView
from mint.wallet.v1 import wallet_pb2 as pb
from mint.wallet.v1 import wallet_pb2_grpc as pb_grpc

log = structlog.get_logger("mint.wallet.grpc")


def wallet_message(wallet: WalletView) -> pb.Wallet:
    return pb.Wallet(
        id=str(wallet.id),
        user_id=str(wallet.user_id),
        currency=wallet.currency,
        balance=wallet.balance,
        held=wallet.held,
        available=wallet.available,
        status=wallet.status,
    )


def transfer_message(result: TransferResult) -> pb.TransferResult:
    return pb.TransferResult(
        transfer_id=result.transfer_id,
        entry_id=str(result.entry_id),
        from_account=result.from_account,
        to_account=result.to_account,
        amount=result.amount,
        currency=result.currency,
        created_at=rfc3339(result.created_at),
        replayed=result.replayed,
        description=result.description,
        kind=result.kind,
        reversal_of=result.reversal_of or "",
    )


def hold_message(result: HoldResult) -> pb.HoldResult:
    return pb.HoldResult(
        hold_id=result.hold_id,
        account=result.account,
        amount=result.amount,
        status=result.status,
        currency=result.currency,
        transfer_id=result.transfer_id or "",
        replayed=result.replayed,
    )


class WalletServicer(pb_grpc.WalletServiceServicer):
    def __init__(self, db: Database) -> None:
        self.db = db

    def GetWallet(self, request: pb.GetWalletRequest, context: grpc.ServicerContext) -> pb.Wallet:
        return wallet_message(self._wallet(request.user_id))

    def GetBalance(self, request: pb.GetWalletRequest, context: grpc.ServicerContext) -> pb.Balance:
        wallet = self._wallet(request.user_id)
        return pb.Balance(
            balance=wallet.balance,
            held=wallet.held,
            available=wallet.available,
            currency=wallet.currency,
        )

    def Transfer(
        self, request: pb.TransferRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            result = actions.transfer(
                session,
                request.transfer_id,
                request.from_account,
                request.to_account,
                request.amount,
                request.currency,
                request.description,
            )
        return transfer_message(result)

    def GetTransfer(
        self, request: pb.GetTransferRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            return transfer_message(actions.get_transfer(session, request.transfer_id))

    def Hold(self, request: pb.HoldRequest, context: grpc.ServicerContext) -> pb.HoldResult:
        with self.db.session() as session:
            result = actions.place_hold(
                session, request.hold_id, request.account, request.amount, request.currency
            )
        return hold_message(result)

    def CaptureHold(
        self, request: pb.CaptureHoldRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            result = actions.capture_hold(
                session,
                request.hold_id,
                request.to_account,
                request.transfer_id,
                request.description,
            )
        return transfer_message(result)

    def ReleaseHold(
        self, request: pb.ReleaseHoldRequest, context: grpc.ServicerContext
    ) -> pb.HoldResult:
        with self.db.session() as session:
            return hold_message(actions.release_hold(session, request.hold_id))

    def Reverse(
        self, request: pb.ReverseRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            result = actions.reverse(session, request.transfer_id, request.reversal_id)
        return transfer_message(result)

    def Freeze(self, request: pb.FreezeRequest, context: grpc.ServicerContext) -> pb.Wallet:
        return self._set_frozen(request, frozen=True)

    def Unfreeze(self, request: pb.FreezeRequest, context: grpc.ServicerContext) -> pb.Wallet:
        return self._set_frozen(request, frozen=False)

    # ---- helpers ----------------------------------------------------------------------------

    def _wallet(self, raw_user_id: str) -> WalletView:
        user_id = domain.parse_user_id(raw_user_id)
        with self.db.session() as session:
            return actions.get_wallet(session, user_id)

    def _set_frozen(self, request: pb.FreezeRequest, *, frozen: bool) -> pb.Wallet:
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            wallet = actions.set_frozen(session, user_id, frozen)
        log.info(
            "wallet_frozen" if frozen else "wallet_unfrozen",
            user_id=str(user_id),
            reason=request.reason,
        )
        return wallet_message(wallet)
