"""gRPC ``mint.wallet.v1.WalletService``: the only way other services move money.

Domain errors map to status codes: Refused → FAILED_PRECONDITION, NotFound → NOT_FOUND,
InvalidArgument → INVALID_ARGUMENT, Conflict → ALREADY_EXISTS; the details string is the stable
reason (``insufficient_funds``, ``wallet_not_found``, ...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from opentelemetry import trace

from mint.kit.service import ServiceContext
from mint.wallet import domain, holds, store
from mint.wallet.domain import Conflict, InvalidArgument, NotFound, Refused, WalletError
from mint.wallet.v1 import wallet_pb2 as pb
from mint.wallet.v1 import wallet_pb2_grpc as pb_grpc

log = structlog.get_logger("mint.wallet.grpc")

_STATUS: tuple[tuple[type[WalletError], grpc.StatusCode], ...] = (
    (Refused, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (Conflict, grpc.StatusCode.ALREADY_EXISTS),
)

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.ServicerContext], Resp]


def status_for(error: WalletError) -> grpc.StatusCode:
    for cls, code in _STATUS:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _abort(context: grpc.ServicerContext, error: WalletError) -> NoReturn:
    span = trace.get_current_span()
    span.set_attribute("mint.wallet.refusal", error.code)
    context.abort(status_for(error), error.code)
    raise AssertionError("unreachable")  # context.abort always raises


def _rpc(method: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Map domain errors raised by ``method`` to the gRPC status with the reason as details."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            return method(self, request, context)
        except WalletError as exc:
            log.info("wallet_refused", rpc=method.__name__, reason=exc.code)
            _abort(context, exc)

    return wrapper


def wallet_message(wallet: store.WalletView) -> pb.Wallet:
    return pb.Wallet(
        id=str(wallet.id),
        user_id=str(wallet.user_id),
        currency=wallet.currency,
        balance=wallet.balance,
        held=wallet.held,
        available=wallet.available,
        status=wallet.status,
    )


def transfer_message(result: store.TransferResult) -> pb.TransferResult:
    return pb.TransferResult(
        transfer_id=result.transfer_id,
        entry_id=str(result.entry_id),
        from_account=result.from_account,
        to_account=result.to_account,
        amount=result.amount,
        currency=result.currency,
        created_at=result.created_at.isoformat(),
        replayed=result.replayed,
        description=result.description,
        kind=result.kind,
        reversal_of=result.reversal_of or "",
    )


def hold_message(result: holds.HoldResult) -> pb.HoldResult:
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
    def __init__(self, ctx: ServiceContext) -> None:
        self.db = ctx.database()

    @_rpc
    def GetWallet(self, request: pb.GetWalletRequest, context: grpc.ServicerContext) -> pb.Wallet:
        return wallet_message(self._wallet(request.user_id))

    @_rpc
    def GetBalance(self, request: pb.GetWalletRequest, context: grpc.ServicerContext) -> pb.Balance:
        wallet = self._wallet(request.user_id)
        return pb.Balance(
            balance=wallet.balance,
            held=wallet.held,
            available=wallet.available,
            currency=wallet.currency,
        )

    @_rpc
    def Transfer(
        self, request: pb.TransferRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            result = store.transfer(
                session,
                request.transfer_id,
                request.from_account,
                request.to_account,
                request.amount,
                request.currency,
                request.description,
            )
        return transfer_message(result)

    @_rpc
    def GetTransfer(
        self, request: pb.GetTransferRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        domain.validate_id(request.transfer_id, "transfer_id")
        with self.db.session() as session:
            result = store.get_transfer(session, request.transfer_id)
        if result is None:
            raise NotFound("transfer_not_found", f"no transfer {request.transfer_id}")
        return transfer_message(result)

    @_rpc
    def Hold(self, request: pb.HoldRequest, context: grpc.ServicerContext) -> pb.HoldResult:
        with self.db.session() as session:
            result = holds.place_hold(
                session, request.hold_id, request.account, request.amount, request.currency
            )
        return hold_message(result)

    @_rpc
    def CaptureHold(
        self, request: pb.CaptureHoldRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            result = holds.capture_hold(
                session,
                request.hold_id,
                request.to_account,
                request.transfer_id,
                request.description,
            )
        return transfer_message(result)

    @_rpc
    def ReleaseHold(
        self, request: pb.ReleaseHoldRequest, context: grpc.ServicerContext
    ) -> pb.HoldResult:
        with self.db.session() as session:
            result = holds.release_hold(session, request.hold_id)
        return hold_message(result)

    @_rpc
    def Reverse(
        self, request: pb.ReverseRequest, context: grpc.ServicerContext
    ) -> pb.TransferResult:
        with self.db.session() as session:
            result = store.reverse(session, request.transfer_id, request.reversal_id)
        return transfer_message(result)

    @_rpc
    def Freeze(self, request: pb.FreezeRequest, context: grpc.ServicerContext) -> pb.Wallet:
        return self._set_frozen(request, frozen=True)

    @_rpc
    def Unfreeze(self, request: pb.FreezeRequest, context: grpc.ServicerContext) -> pb.Wallet:
        return self._set_frozen(request, frozen=False)

    # ---- helpers ----------------------------------------------------------------------------

    def _wallet(self, raw_user_id: str) -> store.WalletView:
        user_id = domain.parse_user_id(raw_user_id)
        with self.db.session() as session:
            wallet = store.get_wallet(session, user_id)
        if wallet is None:
            raise NotFound("wallet_not_found", f"no wallet for user {user_id}")
        return wallet

    def _set_frozen(self, request: pb.FreezeRequest, *, frozen: bool) -> pb.Wallet:
        user_id = domain.parse_user_id(request.user_id)
        with self.db.session() as session:
            wallet = store.set_frozen(session, user_id, frozen)
        log.info(
            "wallet_frozen" if frozen else "wallet_unfrozen",
            user_id=str(user_id),
            reason=request.reason,
        )
        return wallet_message(wallet)
