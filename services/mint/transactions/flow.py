"""The money-movement flow (services.md §3): claim → PENDING → checks → PROCESSING → wallet
``Transfer`` → COMPLETED | FAILED, each step its own short database transaction.

Crash safety: the idempotency claim is committed before anything else; once the PENDING row
exists the claim is never abandoned — it is completed with the transaction's final outcome, by
this flow or by the recovery job, so a retry never starts a second movement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import structlog
from starlette.responses import JSONResponse

from mint.kit import idempotency
from mint.kit.db import Database, utcnow
from mint.kit.errors import PROBLEM_CONTENT_TYPE, problem_body
from mint.kit.service import ServiceContext
from mint.transactions import checks, domain, store
from mint.transactions.checks import CheckFailed, CheckInput, Checks
from mint.transactions.domain import Status, TxnType
from mint.transactions.limits import KycLimits, limited_user
from mint.transactions.models import Transaction
from mint.transactions.wallet_client import Posted, Refused, post_transfer, transfer_request

log = structlog.get_logger("mint.transactions.flow")


@dataclass(frozen=True)
class NewTransaction:
    """A validated request to move money, initiated by ``user_id``."""

    user_id: UUID
    type: TxnType
    amount: int
    currency: str
    sender_id: UUID | None
    recipient_id: UUID | None
    description: str | None = None
    merchant: str | None = None
    category: str | None = None
    reference: dict[str, Any] | None = None
    client_ip: str | None = None


@dataclass
class Engine:
    """One per running service: the database, the wallet stub (lazily built) and the checks."""

    db: Database
    wallet_factory: Callable[[], Any]
    checks: Checks = field(default_factory=Checks)
    _wallet: Any = None

    @property
    def wallet(self) -> Any:
        if self._wallet is None:
            self._wallet = self.wallet_factory()
        return self._wallet

    # ---- the HTTP entry point -----------------------------------------------------------------

    def submit(self, new: NewTransaction, key: str, fingerprint: str) -> JSONResponse:
        """Run the whole flow for one idempotent request and answer it."""
        claim = idempotency.begin(self.db, new.user_id, key, fingerprint)
        if not isinstance(claim, idempotency.Claimed):
            return idempotency.respond(claim)
        try:
            with self.db.session() as session:
                txn = store.create(
                    session,
                    user_id=new.user_id,
                    type=new.type.value,
                    amount=new.amount,
                    currency=new.currency,
                    sender_id=new.sender_id,
                    recipient_id=new.recipient_id,
                    description=new.description,
                    merchant=new.merchant,
                    category=new.category,
                    reference=new.reference,
                    idempotency_key=key,
                    actor=str(new.user_id),
                )
                txn_id = txn.id
        except BaseException:
            try:  # nothing durable happened: free the key for a corrected retry
                idempotency.abandon(self.db, new.user_id, key)
            except Exception:
                log.exception("idempotency_abandon_failed")  # recovery frees it later
            raise
        status, body = self.drive(txn_id, actor=str(new.user_id), client_ip=new.client_ip)
        return respond(status, body)

    # ---- the steps ---------------------------------------------------------------------------

    def drive(
        self, txn_id: UUID, *, actor: str, client_ip: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """PENDING → checks → PROCESSING → wallet → settled; returns the HTTP outcome."""
        with self.db.session() as session:
            txn = _locked(session, txn_id)
            if txn.status != Status.PENDING:
                return current_outcome(txn)
            decided = self._decide(session, txn, actor, client_ip)
            if decided is not None:
                return decided
            request = transfer_request(txn)
        return self.post(txn_id, request, txn_type=txn.type, actor=actor)

    def _decide(
        self, session: Any, txn: Transaction, actor: str, client_ip: str | None
    ) -> tuple[int, dict[str, Any]] | None:
        """Checks on a locked PENDING transaction: a settled outcome, or None when it moved to
        PROCESSING and the wallet must be called."""
        if txn.type == TxnType.TRANSFER and txn.sender_id == txn.recipient_id:
            return store.settle(
                session, txn, Status.FAILED, actor=actor, failure_reason="self_transfer"
            )
        seen = CheckInput(
            transaction_id=txn.id,
            user_id=txn.user_id,
            type=txn.type,
            amount=txn.amount,
            currency=txn.currency,
            sender_id=txn.sender_id,
            recipient_id=txn.recipient_id,
            client_ip=client_ip,
        )
        # The user's lock is held (transaction-scoped) from reading the usage until this
        # decision commits: counted (counted_at, PROCESSING) or FAILED.
        store.lock_user(session, limited_user(seen))
        try:
            limits = checks.check_limits(self.checks, session, seen)
            if not limits.allowed:
                return store.settle(
                    session,
                    txn,
                    Status.FAILED,
                    actor=actor,
                    failure_reason="limit_exceeded",
                    extra=limits.problem_extra(),
                )
            txn.counted_at = utcnow()  # from now on it counts toward the user's usage
            verdict = checks.score_fraud(self.checks, session, seen)
        except CheckFailed as failed:
            log.warning("check_failed", transaction_id=str(txn.id), reason=str(failed))
            return store.settle(
                session, txn, Status.FAILED, actor=actor, failure_reason=failed.failure_reason
            )
        txn.fraud = verdict.as_json()
        if verdict.decision == "BLOCK":
            return store.settle(
                session, txn, Status.FAILED, actor=actor, failure_reason="fraud_blocked"
            )
        if verdict.decision == "REVIEW":
            # The review flow (wallet Hold, 202, transaction.review_required) lands with the
            # fraud integration; until then a scorer must not answer REVIEW.
            raise NotImplementedError("fraud REVIEW is not supported yet")
        store.move(session, txn, Status.PROCESSING, actor=actor, reason="checks passed")
        return None

    def post(
        self, txn_id: UUID, request: Any, *, txn_type: str, actor: str
    ) -> tuple[int, dict[str, Any]]:
        """Call the wallet for a PROCESSING transaction and settle it by the answer. When the
        answer is unknown the transaction stays PROCESSING and the caller gets a 503."""
        result = post_transfer(self.wallet, request, txn_type)
        if not isinstance(result, Posted | Refused):
            return 503, problem_body(
                503,
                "dependency_unavailable",
                "the wallet did not answer; the transaction will be completed or failed shortly",
                transaction_id=str(txn_id),
            )
        with self.db.session() as session:
            txn = _locked(session, txn_id)
            if txn.status != Status.PROCESSING:  # settled meanwhile (recovery, an admin)
                return current_outcome(txn)
            if isinstance(result, Posted):
                return store.settle(session, txn, Status.COMPLETED, actor=actor, reason="posted")
            return store.settle(
                session, txn, Status.FAILED, actor=actor, failure_reason=result.failure_reason
            )


def _locked(session: Any, txn_id: UUID) -> Transaction:
    txn = store.lock(session, txn_id)
    if txn is None:
        raise LookupError(f"transaction {txn_id} vanished")
    return txn


def current_outcome(txn: Transaction) -> tuple[int, dict[str, Any]]:
    """The answer for a transaction someone else is handling or has settled."""
    if domain.is_final(txn.status) or txn.status == Status.COMPLETED:
        return domain.outcome(domain.serialize(txn))
    return 409, problem_body(
        409,
        "idempotency_request_in_progress",
        "the transaction is still being processed",
        transaction_id=str(txn.id),
    )


def respond(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_CONTENT_TYPE if status >= 400 else None
    )


_ENGINE_KEY = "transactions.engine"


def engine_for(ctx: ServiceContext) -> Engine:
    """The context's engine, built on first use: wallet stub from ``MINT_WALLET_GRPC``, limits
    from kyc ``CheckLimits`` at ``MINT_KYC_GRPC`` (fraud: the allow-all seam for now)."""

    def build() -> Engine:
        def wallet() -> Any:
            from mint.kit.rpc import grpc_client
            from mint.wallet.v1.wallet_pb2_grpc import WalletServiceStub

            return grpc_client(ctx.settings, "wallet", WalletServiceStub)

        def kyc() -> Any:
            from mint.kit.rpc import grpc_client
            from mint.kyc.v1.kyc_pb2_grpc import KycServiceStub

            return grpc_client(ctx.settings, "kyc", KycServiceStub)  # MINT_KYC_GRPC

        limits = KycLimits(kyc, timeout=ctx.settings.grpc_deadline_seconds)
        return Engine(db=ctx.database(), wallet_factory=wallet, checks=Checks(limits=limits))

    return ctx.shared(_ENGINE_KEY, build)


def install_engine(ctx: ServiceContext, engine: Engine) -> None:
    """Replace the context's engine (other checks, another wallet target)."""
    ctx.replace_shared(_ENGINE_KEY, engine)
