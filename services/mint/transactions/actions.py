"""The transactions' use cases (services.md §3): submit a money movement, cancel, read, list,
and the recovery pass. The HTTP API, the gRPC servicer and the recovery job all call these.

A money movement is claim → PENDING → limits → fraud → decision, in one short database
transaction, then by the decision:

* ALLOW → PROCESSING → wallet ``Transfer`` → COMPLETED | FAILED (a second transaction);
* BLOCK → FAILED ``fraud_blocked`` at once;
* REVIEW → stays PENDING; the wallet holds the amount, then the review is opened
  (``review_opened_at``, ``transaction.review_required``) and the request is answered 202.
  The reviewer's ``fraud.case_reviewed`` settles it — APPROVE: PROCESSING → capture →
  COMPLETED; BLOCK: release → CANCELLED — as do the sender's cancel and the review expiry
  (release → CANCELLED). Every path that settles a review needs its hold confirmed first, so
  a hold is never placed for a transaction already settled.

Crash safety: the idempotency claim commits together with the PENDING row and the decision
(nothing of a request is durable before that commit, so a retry starts afresh); from then on
the claim is never abandoned — it is completed with the request's final answer in the same
database transaction as the settlement, by the flow or by the recovery pass, so a retry never
starts a second movement. That answer is an HTTP one, rendered by the function the edge
wires in (``Wiring.render``): this module never builds it itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import structlog
from sqlalchemy.orm import Session

from mint.contracts.transaction import (
    TransactionCancelled,
    TransactionCompleted,
    TransactionFailed,
    TransactionFraudBlocked,
    TransactionObject,
    TransactionReversed,
    TransactionReviewRequired,
)
from mint.kit import idempotency
from mint.kit.domain import Unavailable
from mint.kit.events import emit
from mint.kit.time import utcnow
from mint.transactions import checks, domain, store
from mint.transactions.checks import CheckFailed, CheckInput
from mint.transactions.domain import Status, TxnType
from mint.transactions.limits import limited_user
from mint.transactions.models import Transaction
from mint.transactions.outcomes import Render, Settled
from mint.transactions.wallet_client import (
    Declined,
    Done,
    HoldAnswer,
    Posted,
    Unknown,
)

if TYPE_CHECKING:
    from mint.transactions.wiring import Wiring

log = structlog.get_logger("mint.transactions.actions")

#: The actor of what the service does on its own (recovery).
SYSTEM_ACTOR: Final = "system"


@dataclass(frozen=True)
class NewTransaction:
    """A request to move money, initiated by ``user_id`` (the body already validated)."""

    user_id: UUID
    type: TxnType
    amount: int
    currency: str | None  # as asked; None is the deployment's currency
    sender_id: UUID | None
    recipient_id: UUID | None
    description: str | None = None
    merchant: str | None = None
    category: str | None = None
    reference: dict[str, Any] | None = None
    client_ip: str | None = None


#: A request whose Idempotency-Key was already claimed: the caller answers it as the kit says.
NotClaimed = idempotency.Replay | idempotency.InProgress | idempotency.Reused


# ---- the money movement ---------------------------------------------------------------------


def submit(wire: Wiring, new: NewTransaction, key: str, fingerprint: str) -> Settled | NotClaimed:
    """Run the whole flow for one idempotent request. Raises ``Refused unsupported_currency``
    before claiming the key, ``RateLimited too_many_requests`` past the user's bound (nothing
    claimed), ``Conflict idempotency_request_in_progress`` when someone else is moving the
    transaction, and ``Unavailable dependency_unavailable`` when the wallet gave no answer (the
    transaction stays PROCESSING for recovery); both name the transaction.

    Two database transactions: (1) the claim, the PENDING row, the checks under the user's
    lock and the decision (PROCESSING, or FAILED with the answer stored) commit together —
    before that commit nothing is durable and the key is free again; (2) after the wallet's
    answer, the settlement with the request's final answer."""
    currency = domain.check_currency(new.currency)
    actor = str(new.user_id)
    gated = False
    try:
        with wire.db.session() as session:
            claim = idempotency.claim(session, new.user_id, key, fingerprint)
            if not isinstance(claim, idempotency.Claimed):
                return claim  # a replay, or the same request in flight: answered at once
            # A new movement waits on the user's lock holding a pooled connection: bounded per
            # user, and past the bound refused at once (the rollback frees the key).
            if not wire.gate.try_acquire(new.user_id):
                raise wire.gate.refusal()
            gated = True
            txn = _create(session, new, key, currency, actor)
            decided = _decide(wire, session, txn, actor, new.client_ip)
            if decided is not None:
                return decided
        if domain.under_review(txn.fraud):
            return _open_review(wire, txn, actor)
        settled = _post(wire, txn, actor=actor)
        if settled is None:
            raise domain.wallet_silent(txn.id)
        return settled
    finally:
        if gated:
            wire.gate.release(new.user_id)


def _create(
    session: Session, new: NewTransaction, key: str, currency: str, actor: str
) -> Transaction:
    """The PENDING row of a claimed request."""
    return store.create(
        session,
        user_id=new.user_id,
        type=new.type.value,
        amount=new.amount,
        currency=currency,
        sender_id=new.sender_id,
        recipient_id=new.recipient_id,
        description=new.description,
        merchant=new.merchant,
        category=new.category,
        reference=new.reference,
        idempotency_key=key,
        actor=actor,
    )


def _decide(
    wire: Wiring, session: Session, txn: Transaction, actor: str, client_ip: str | None
) -> Settled | None:
    """Checks on a locked PENDING transaction: settled, or None when the wallet must be
    called — the transaction moved to PROCESSING, or (REVIEW) stays PENDING for its hold."""
    if domain.is_self_transfer(txn.type, txn.sender_id, txn.recipient_id):
        return _fail(wire, session, txn, actor, "self_transfer")
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
        limits = checks.check_limits(wire.checks, session, seen)
        if not limits.allowed:
            extra = limits.refusal_extra()
            return _fail(wire, session, txn, actor, domain.LIMIT_EXCEEDED, extra)
        txn.counted_at = utcnow()  # from now on it counts toward the user's usage
        verdict = checks.score_fraud(wire.checks, seen, limits)
    except CheckFailed as failed:
        log.warning("check_failed", transaction_id=str(txn.id), reason=str(failed))
        return _fail(wire, session, txn, actor, failed.failure_reason)
    txn.fraud = verdict.as_json()
    if verdict.decision == "BLOCK":
        return _fail(wire, session, txn, actor, domain.FRAUD_BLOCKED)
    if verdict.decision == "REVIEW":
        return None  # PENDING under review: the hold is placed once this commits
    move(session, txn, Status.PROCESSING, actor=actor, reason="checks passed")
    return None


# ---- review ---------------------------------------------------------------------------------


def _open_review(wire: Wiring, txn: Transaction, actor: str) -> Settled | idempotency.Replay:
    """Place a reviewed transaction's hold and open its review: the request is answered 202
    (PENDING). A refused hold fails the transaction; no answer from the wallet raises
    ``Unavailable`` and leaves it to recovery, which re-issues the idempotent hold."""
    answer = _hold(wire, txn)
    if isinstance(answer, Unknown):
        raise domain.hold_unconfirmed(txn.id)
    with wire.db.session() as session:
        current = _locked(session, txn.id)
        if current.review_opened_at is not None and current.idempotency_key is not None:
            # opened meanwhile (recovery, the reviewer's event), which stored this request's
            # answer — the one every retry replays, whatever happened to it since
            stored = idempotency.stored_answer(session, current.user_id, current.idempotency_key)
            if stored is not None:
                return stored
        if current.status != Status.PENDING or current.review_opened_at is not None:
            return Settled(current)  # settled meanwhile
        return _review_held(wire, session, current, answer, actor)


def _hold(wire: Wiring, txn: Transaction) -> HoldAnswer:
    """The review's hold (a top-up has no payer account: nothing to hold)."""
    if not domain.holds_funds(txn.type, txn.fraud):
        return Done(replayed=False)
    return wire.wallet.place_hold(txn)


def _review_held(
    wire: Wiring, session: Session, txn: Transaction, answer: Done | Declined, actor: str
) -> Settled:
    """The hold's definite answer on a locked, unopened review: FAILED with the wallet's
    reason, or the review opened — 202 stored as the request's answer, the event emitted."""
    if isinstance(answer, Declined):
        return _fail(wire, session, txn, actor, answer.failure_reason)
    settled = Settled(txn)
    if txn.idempotency_key is not None:
        status, body = wire.render(settled)
        idempotency.complete(session, txn.user_id, txn.idempotency_key, status, body)
    txn.review_opened_at = txn.updated_at = utcnow()
    emit(session, TransactionReviewRequired.model_validate(txn, from_attributes=True), actor=actor)
    return settled


def _confirm_review(wire: Wiring, session: Session, txn: Transaction, actor: str) -> bool:
    """Make sure a locked PENDING review has its hold before anything settles it; False when
    the hold was refused (the transaction is FAILED now). ``Unavailable`` when the wallet does
    not answer (nothing changed)."""
    if txn.review_opened_at is not None:
        return True
    answer = _hold(wire, txn)
    if isinstance(answer, Unknown):
        raise domain.hold_unconfirmed(txn.id)
    _review_held(wire, session, txn, answer, actor)
    return txn.status == Status.PENDING


def apply_review(
    wire: Wiring, session: Session, txn_id: UUID, *, approve: bool, actor: str
) -> bool:
    """The reviewer's decision on a transaction under review (from ``fraud.case_reviewed``):
    APPROVE → PROCESSING → capture → COMPLETED (FAILED if the wallet refuses; left PROCESSING
    for recovery if it does not answer); BLOCK → release → CANCELLED. False when there is
    nothing to decide any more (settled already, a repeated or late event). Raises
    ``Unavailable`` when the wallet does not answer a hold or a release (the event is retried)."""
    txn = store.lock(session, txn_id)
    if txn is None or txn.status != Status.PENDING or not domain.under_review(txn.fraud):
        return False
    if not _confirm_review(wire, session, txn, actor):
        return True
    if not approve:
        _release_and_cancel(wire, session, txn, actor, "blocked by the fraud review")
        return True
    move(session, txn, Status.PROCESSING, actor=actor, reason="approved by the fraud review")
    answer = wire.wallet.settle(txn)
    if isinstance(answer, Posted):
        _settle(session, txn, Status.COMPLETED, wire.render, actor=actor, reason="posted")
    elif isinstance(answer, Declined):
        _fail(wire, session, txn, actor, answer.failure_reason)
    # Unknown: PROCESSING is committed with the event; recovery re-drives the capture.
    return True


def _release_and_cancel(
    wire: Wiring, session: Session, txn: Transaction, actor: str, reason: str
) -> Settled:
    """Release a locked review's hold, then CANCELLED. ``Unavailable`` when the wallet does
    not answer (nothing changed: retried by whoever asked)."""
    answer = wire.wallet.release_hold(txn)
    if isinstance(answer, Unknown):
        raise domain.hold_unconfirmed(txn.id)
    if isinstance(answer, Declined):
        # the hold was captured: the money moved, so this transaction cannot be cancelled
        log.error(
            "review_hold_not_released", transaction_id=str(txn.id), code=answer.failure_reason
        )
        raise domain.still_processing(txn.id)
    return _settle(session, txn, Status.CANCELLED, wire.render, actor=actor, reason=reason)


def _post(wire: Wiring, posting: Transaction, *, actor: str) -> Settled | None:
    """Call the wallet for a PROCESSING transaction (``Transfer``, or the capture of its review
    hold) and settle it by the answer; None when the answer is unknown (it stays PROCESSING)."""
    answer = wire.wallet.settle(posting)
    if isinstance(answer, Unknown):
        return None
    with wire.db.session() as session:
        txn = _locked(session, posting.id)
        if txn.status != Status.PROCESSING:  # settled meanwhile (recovery, an admin)
            return _as_settled(txn)
        return _posted(wire, session, txn, answer, actor)


def _posted(
    wire: Wiring, session: Session, txn: Transaction, answer: Posted | Declined, actor: str
) -> Settled:
    """Settle a locked PROCESSING transaction by the wallet's definite answer."""
    if isinstance(answer, Posted):
        return _settle(session, txn, Status.COMPLETED, wire.render, actor=actor, reason="posted")
    return _fail(wire, session, txn, actor, answer.failure_reason)


def _locked(session: Session, txn_id: UUID) -> Transaction:
    txn = store.lock(session, txn_id)
    if txn is None:
        raise LookupError(f"transaction {txn_id} vanished")
    return txn


def _as_settled(txn: Transaction) -> Settled:
    """A transaction someone else has settled, or ``Conflict`` while they are at it."""
    if domain.is_settled(txn.status):
        return Settled(txn)
    raise domain.still_processing(txn.id)


# ---- status changes -------------------------------------------------------------------------

#: The event a transition into each status emits (PROCESSING emits none: events.md); a FAILED
#: ``fraud_blocked`` is ``transaction.fraud_blocked`` instead.
_EVENTS: Final[Mapping[str, type[TransactionObject]]] = {
    Status.COMPLETED: TransactionCompleted,
    Status.FAILED: TransactionFailed,
    Status.CANCELLED: TransactionCancelled,
    Status.REVERSED: TransactionReversed,
}


def move(
    session: Session,
    txn: Transaction,
    to: Status,
    *,
    actor: str,
    reason: str | None = None,
    failure_reason: str | None = None,
) -> None:
    """THE way a status changes: the state machine decides, the transition is recorded, and its
    event goes to the outbox — all in ``session``'s transaction (``txn`` must be locked)."""
    current = txn.status
    txn.status = domain.transition(current, to).value
    now = utcnow()
    txn.updated_at = now
    if to is Status.FAILED:
        txn.failure_reason = failure_reason or reason
    if to is Status.COMPLETED:
        txn.completed_at = now
    store.add_transition(
        session, txn, current, actor=actor, reason=reason or failure_reason, at=now
    )
    contract = _EVENTS.get(txn.status)
    if contract is TransactionFailed and txn.failure_reason == domain.FRAUD_BLOCKED:
        contract = TransactionFraudBlocked
    if contract is not None:
        # The data is the transaction object; keyed by the initiator (sender, or a top-up's
        # recipient), which is ``txn.user_id``.
        emit(session, contract.model_validate(txn, from_attributes=True), actor=actor)


def _settle(
    session: Session,
    txn: Transaction,
    to: Status,
    render: Render,
    *,
    actor: str,
    reason: str | None = None,
    failure_reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Settled:
    """Move ``txn`` to a settled status and, in the same transaction, complete the idempotency
    row of the request that created it with that request's final answer."""
    move(session, txn, to, actor=actor, reason=reason, failure_reason=failure_reason)
    settled = Settled(txn, extra or {})
    # A review's request was answered (202) when the review opened; nothing to store again.
    if txn.idempotency_key is not None and txn.review_opened_at is None:
        status, body = render(settled)
        if not idempotency.complete(session, txn.user_id, txn.idempotency_key, status, body):
            # The stored answer stays as it is: a transaction settles once (its row is locked),
            # so an outcome already there — or a claim gone — means two paths settled it.
            log.error(
                "idempotency_outcome_not_stored",
                transaction_id=str(txn.id),
                status=txn.status,
                unstored_answer_status=status,
            )
    return settled


def _fail(
    wire: Wiring,
    session: Session,
    txn: Transaction,
    actor: str,
    failure_reason: str,
    extra: Mapping[str, Any] | None = None,
) -> Settled:
    return _settle(
        session,
        txn,
        Status.FAILED,
        wire.render,
        actor=actor,
        failure_reason=failure_reason,
        extra=extra,
    )


# ---- cancel and reads -----------------------------------------------------------------------


def cancel(wire: Wiring, txn_id: UUID, user_id: UUID) -> Transaction:
    """Cancel a PENDING transaction, by its initiator only (``Forbidden``; ``Conflict
    invalid_state`` in any other status), releasing its review hold. A party's view: anyone
    else's is ``NotFound``. ``Unavailable`` when the wallet does not answer (nothing changed)."""
    with wire.db.session() as session:
        txn = store.lock(session, txn_id)
        if txn is None or user_id not in (txn.sender_id, txn.recipient_id):
            raise domain.transaction_not_found()
        domain.check_cancel(txn.status, initiator=txn.user_id, user_id=user_id)
        actor = str(user_id)
        if domain.under_review(txn.fraud):
            if txn.review_opened_at is None:
                raise domain.still_processing(txn.id)  # its hold is still being placed
            _release_and_cancel(wire, session, txn, actor, "cancelled by sender")
        else:
            _settle(
                session,
                txn,
                Status.CANCELLED,
                wire.render,
                actor=actor,
                reason="cancelled by sender",
            )
        return txn


def get_transaction(session: Session, txn_id: UUID, *, party: UUID | None = None) -> Transaction:
    """The transaction; with ``party``, only if that user sent or received it (``NotFound``
    otherwise, as for a transaction that does not exist)."""
    txn = store.get(session, txn_id, party=party)
    if txn is None:
        raise domain.transaction_not_found()
    return txn


def list_transactions(
    session: Session,
    *,
    party: UUID | None,
    limit: int,
    cursor: str | None = None,
    status: Status | None = None,
    type: TxnType | None = None,
) -> tuple[list[Transaction], str | None]:
    """Newest first (``party`` None: everyone's, for the admin); the opaque cursor of the next
    page, if any (``Invalid invalid_cursor`` for one this service did not hand out)."""
    before = domain.decode_cursor(cursor) if cursor else None
    rows, last = store.list_page(
        session,
        party=party,
        limit=limit,
        before=before,
        status=status.value if status else None,
        type=type.value if type else None,
    )
    return rows, (domain.encode_cursor(*last) if last is not None else None)


# ---- admin actions (gRPC TransactionService: Reverse, ForceComplete, Fail) -----------------
# Each holds the transaction's row lock across its wallet call, so two admins never act on one
# transaction at once, and every wallet call is idempotent by an id derived from the
# transaction, so a retry after an unknown answer never moves money twice.


@dataclass(frozen=True)
class AdminAction:
    """An admin's request on one transaction: ``actor`` (the admin's user id) and ``reason`` are
    recorded on the transition it makes."""

    transaction_id: UUID
    actor: str
    reason: str


def admin_reverse(wire: Wiring, action: AdminAction) -> Transaction:
    """A COMPLETED transfer → wallet ``Reverse`` (the mirror entry) → REVERSED. Refused
    ``invalid_state`` for anything else and ``reversal_insufficient_funds`` when the recipient
    has spent the money; ``Unavailable`` when the wallet does not answer. Refused or not
    answered, the transaction stays COMPLETED."""
    with wire.db.session() as session:
        txn = _admin_locked(session, action.transaction_id)
        domain.check_reversible(txn.type, txn.status)
        answer = wire.wallet.reverse(txn, domain.reversal_id(txn.id))
        if isinstance(answer, Unknown):
            raise domain.wallet_unavailable(txn.id, txn.status)
        if not isinstance(answer, Posted):
            raise domain.reversal_refused(answer.failure_reason, txn.id)
        move(session, txn, Status.REVERSED, actor=action.actor, reason=action.reason)
        return txn


def force_complete(wire: Wiring, action: AdminAction) -> Transaction:
    """A non-final transaction not under review: PENDING → PROCESSING (committed first), then
    the wallet settles it with the transaction id as the transfer id (a capture when it holds
    funds) — posted → COMPLETED, declined → FAILED with the wallet's public reason (answered,
    not refused: the admin sees the outcome). No answer: ``Unavailable``, it stays PROCESSING
    and recovery re-drives the same transfer id."""
    with wire.db.session() as session:
        txn = _admin_locked(session, action.transaction_id)
        domain.check_admin_settle(txn.status, txn.fraud, "force-complete")
        if txn.status == Status.PENDING:
            move(session, txn, Status.PROCESSING, actor=action.actor, reason=action.reason)
    # PROCESSING is durable before the wallet is asked: a lost answer or a crash leaves it to
    # recovery, never to a PENDING pass that would fail a posted transfer.
    with wire.db.session() as session:
        txn = _admin_locked(session, action.transaction_id)
        if txn.status != Status.PROCESSING:  # settled in between (the flow, recovery, an admin)
            raise domain.invalid_state(txn.status, "force-complete")
        answer = wire.wallet.settle(txn)
        if isinstance(answer, Unknown):
            raise domain.wallet_unavailable(txn.id, txn.status)
        if isinstance(answer, Posted):
            to, failure_reason = Status.COMPLETED, None
        else:
            to, failure_reason = Status.FAILED, answer.failure_reason
        _settle(
            session,
            txn,
            to,
            wire.render,
            actor=action.actor,
            reason=action.reason,
            failure_reason=failure_reason,
        )
        return txn


def admin_fail(wire: Wiring, action: AdminAction) -> Transaction:
    """A non-final transaction not under review → FAILED ``failed_by_admin``, only when the
    wallet shows no posting under its id (any review hold released first). Refused
    ``transfer_posted`` when the money moved (ForceComplete it instead); ``Unavailable`` when
    the wallet does not answer."""
    with wire.db.session() as session:
        txn = _admin_locked(session, action.transaction_id)
        domain.check_admin_settle(txn.status, txn.fraud, "fail")
        in_flight = timedelta(seconds=wire.settings.recovery_processing_after_seconds)
        if txn.status == Status.PROCESSING and utcnow() - txn.updated_at < in_flight:
            # its request may still be posting it (outside this lock); recovery takes it
            # over after this window, under the row lock
            raise domain.still_processing(txn.id)
        found = wire.wallet.find_transfer(txn)
        if isinstance(found, Unknown):
            raise domain.wallet_unavailable(txn.id, txn.status)
        if isinstance(found, Posted):
            raise domain.transfer_posted(txn.id)
        released = wire.wallet.release_hold(txn)
        if isinstance(released, Unknown):
            raise domain.wallet_unavailable(txn.id, txn.status)
        if isinstance(released, Declined):
            raise domain.transfer_posted(txn.id)  # the hold was captured: the money moved
        _settle(
            session,
            txn,
            Status.FAILED,
            wire.render,
            actor=action.actor,
            reason=action.reason,
            failure_reason=domain.FAILED_BY_ADMIN,
        )
        return txn


def _admin_locked(session: Session, txn_id: UUID) -> Transaction:
    txn = store.lock(session, txn_id)
    if txn is None:
        raise domain.transaction_not_found()
    return txn


# ---- recovery -------------------------------------------------------------------------------


@dataclass
class RecoveryReport:
    completed: int = 0
    failed: int = 0
    left: int = 0
    timed_out: int = 0
    reviews_opened: int = 0
    reviews_expired: int = 0
    claims_released: int = 0
    keys_expired: int = 0
    #: Still unsettled past ``stuck_alert_seconds`` after this pass, by status — what an
    #: operator is alerted on (the wallet keeps not answering, a review never came, …).
    stuck: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(v for k, v in vars(self).items() if k != "stuck")


def recover(wire: Wiring) -> RecoveryReport:
    """One recovery pass (services.md §3 "Recovery"): nothing stays stuck, no money is lost or
    created by a crash. Safe to run concurrently with the API (row locks and the state machine
    decide) and repeatedly (the wallet is idempotent by transfer id).

    * PROCESSING past ``recovery_processing_after_seconds`` → re-issue the wallet's idempotent
      ``Transfer`` with the same id: posted → COMPLETED, declined → FAILED, no answer → left
      for the next pass.
    * PENDING past ``recovery_pending_after_seconds`` with no REVIEW decision → FAILED
      ``recovery_timeout`` (it never settles without its checks). PENDING under REVIEW is left
      to the reviewer, except: a review whose hold was never confirmed gets the idempotent
      hold re-issued (opened, or FAILED if refused), and an open review older than the limits
      file's ``review_hold_hours`` expires (hold released, CANCELLED).
    * Idempotency claims whose request died before recording a transaction are abandoned, and
      expired idempotency rows are deleted.

    Each settlement also completes the original request's idempotency row, so a retry of that
    request replays the final outcome."""
    report = RecoveryReport()
    db, settings = wire.db, wire.settings
    batch = settings.recovery_batch
    processing_after = timedelta(seconds=settings.recovery_processing_after_seconds)
    pending_after = timedelta(seconds=settings.recovery_pending_after_seconds)

    with db.session() as session:
        processing = store.stuck(session, Status.PROCESSING, processing_after, batch)
    for txn_id in processing:
        with db.session() as session:
            # The wallet is asked under the row lock: an admin's Fail, which looks for the
            # posting under the same lock, never sees "not posted" while this may post it.
            txn = store.lock(session, txn_id, skip_locked=True)
            if txn is None or txn.status != Status.PROCESSING:
                continue
            answer = wire.wallet.settle(txn)
            if isinstance(answer, Unknown):
                report.left += 1
                continue
            settled = _posted(wire, session, txn, answer, SYSTEM_ACTOR)
        if settled.refusal() is None:
            report.completed += 1
        else:
            report.failed += 1

    with db.session() as session:
        pending = store.stuck(session, Status.PENDING, pending_after, batch)
    for txn_id in pending:
        with db.session() as session:
            txn = store.lock(session, txn_id, skip_locked=True)
            if txn is None or txn.status != Status.PENDING or domain.under_review(txn.fraud):
                continue
            _fail(wire, session, txn, SYSTEM_ACTOR, domain.RECOVERY_TIMEOUT)
            report.timed_out += 1

    _recover_reviews(wire, report, pending_after)

    with db.session() as session:
        stale = store.stale_claims(session, pending_after, batch)
    for user_id, key in stale:
        idempotency.abandon(db, user_id, key)
        report.claims_released += 1
    report.keys_expired = idempotency.cleanup(db, batch=batch)
    with db.session() as session:
        stuck_after = timedelta(seconds=settings.stuck_alert_seconds)
        report.stuck = store.count_unsettled(session, stuck_after)
    return report


def _recover_reviews(wire: Wiring, report: RecoveryReport, pending_after: timedelta) -> None:
    """Reviews whose hold was never confirmed (the wallet did not answer the request's hold),
    and open reviews past the review expiry. A wallet that still does not answer leaves them
    for the next pass."""
    db, batch = wire.db, wire.settings.recovery_batch
    with db.session() as session:
        unopened = store.unopened_reviews(session, pending_after, batch)
    for txn_id in unopened:
        with db.session() as session:
            txn = store.get(session, txn_id)
        if txn is None or txn.status != Status.PENDING or txn.review_opened_at is not None:
            continue
        try:
            _open_review(wire, txn, SYSTEM_ACTOR)
        except Unavailable:
            report.left += 1
        else:
            report.reviews_opened += 1

    hold_hours = wire.limits.current.fraud.review_hold_hours
    opened_before = utcnow() - timedelta(hours=hold_hours)
    with db.session() as session:
        expired = store.expired_reviews(session, opened_before, batch)
    for txn_id in expired:
        try:
            with db.session() as session:
                txn = store.lock(session, txn_id, skip_locked=True)
                if txn is None or txn.status != Status.PENDING or txn.review_opened_at is None:
                    continue
                reason = f"review not decided within {hold_hours} h"
                _release_and_cancel(wire, session, txn, SYSTEM_ACTOR, reason)
        except Unavailable:
            report.left += 1
        else:
            report.reviews_expired += 1
