"""fraud's use cases — the only place that decides. The gRPC servicer and the event consumers
call these with the caller's unit of work (a ``Session``) and the collaborators they need.
Refusals are domain errors; every ``fraud.*`` event is emitted here, in the transaction of the
change it reports.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from prometheus_client import Counter
from sqlalchemy.orm import Session

from mint.contracts.fraud import CaseOpened, CaseReviewed
from mint.fraud import domain, geo, rules, store
from mint.fraud.domain import BLOCK, TRANSFER, ScoreInput
from mint.fraud.models import Case, Sanction
from mint.fraud.store import Verdict
from mint.fraud.velocity import VelocityWindow
from mint.kit import pagination
from mint.kit.domain import NotFound
from mint.kit.events import emit
from mint.kit.limits import FraudSettings

log = structlog.get_logger("mint.fraud.actions")

DECISIONS = Counter("mint_fraud_decisions_total", "ScoreTransaction decisions", ["decision"])

# ---- scoring ----------------------------------------------------------------------------------


def score_transaction(
    session: Session,
    request: ScoreInput,
    *,
    velocity: VelocityWindow,
    settings: FraudSettings,
    now: datetime,
) -> Verdict:
    """Score one money movement, once: a repeat of the transaction id answers the first
    decision and counts nothing again. One query reads what the rules need, one Redis round
    trip counts a transfer in the velocity window (two when it ends BLOCKED: a blocked attempt
    leaves the window), and the decision, its case and ``fraud.case_opened`` are written in
    the caller's transaction."""
    view = store.scoring_view(
        session,
        transaction_id=request.transaction_id,
        user_id=request.user_id,
        type=request.type,
        recipient_id=request.recipient_id,
    )
    if view.earlier is not None:
        return view.earlier
    transfers = 0
    if request.type == TRANSFER:
        transfers = velocity.count_attempt(
            request.user_id, request.transaction_id, now, settings.velocity.window_seconds
        )
    facts = rules.Facts(
        type=request.type,
        amount=request.amount,
        now=now,
        recipient_is_contact=request.recipient_is_contact,
        recipient_sanctioned=view.recipient_sanctioned,
        transfers_in_window=transfers,
        max_transfers=settings.velocity.max_transfers,
        stats=view.stats,
        ip_country=geo.country_of(request.ip_address) if request.user_country else None,
        user_country=request.user_country,
    )
    decision = domain.decide(
        rules.fired(facts),
        review_threshold=settings.review_threshold,
        block_threshold=settings.block_threshold,
    )
    if decision.decision == BLOCK and request.type == TRANSFER:
        velocity.forget(request.user_id, request.transaction_id)
    status = domain.case_status(decision.decision)
    verdict = Verdict(
        decision=decision.decision,
        score=decision.score,
        rules=decision.rules,
        reason=decision.reason,
        case_id=uuid.uuid4() if status is not None else None,
    )
    if not store.insert_assessment(
        session,
        transaction_id=request.transaction_id,
        user_id=request.user_id,
        type=request.type,
        amount=request.amount,
        verdict=verdict,
    ):
        earlier = store.get_verdict(session, request.transaction_id)
        assert earlier is not None, "the conflicting assessment is committed"
        return earlier
    if status is not None and verdict.case_id is not None:
        _open_case(session, request, verdict, status=status, now=now)
    DECISIONS.labels(verdict.decision).inc()
    return verdict


def _open_case(
    session: Session, request: ScoreInput, verdict: Verdict, *, status: str, now: datetime
) -> None:
    """A REVIEW's case (OPEN) or a BLOCK's (closed at once as BLOCKED), and its event."""
    assert verdict.case_id is not None
    store.insert_case(
        session,
        Case(
            id=verdict.case_id,
            transaction_id=request.transaction_id,
            user_id=request.user_id,
            status=status,
            decision=verdict.decision,
            score=verdict.score,
            rules=list(verdict.rules),
            type=request.type,
            amount=request.amount,
            currency=request.currency,
            recipient_id=request.recipient_id,
            created_at=now,
            closed_at=None if status == domain.OPEN else now,
        ),
    )
    opened = CaseOpened(
        case_id=verdict.case_id,
        transaction_id=request.transaction_id,
        user_id=request.user_id,
        decision=verdict.decision,  # type: ignore[arg-type]  # REVIEW | BLOCK: a case exists
        score=verdict.score,
        rules=verdict.rules,
    )
    emit(session, opened, actor=str(request.user_id))


# ---- cases ------------------------------------------------------------------------------------


def get_case(session: Session, case_id: uuid.UUID) -> Case:
    case = store.get_case(session, case_id)
    if case is None:
        raise NotFound("case_not_found", "no such case")
    return case


def review_case(
    session: Session,
    case_id: uuid.UUID,
    *,
    outcome: str,
    reviewer_id: uuid.UUID,
    notes: str | None,
    now: datetime,
) -> Case:
    """A reviewer's decision on an OPEN case (APPROVE → APPROVED, BLOCK → REJECTED), with
    ``fraud.case_reviewed``; a case in any other status is refused ``case_not_open``."""
    status = domain.review_status(outcome)
    case = store.close_open_case(
        session,
        case_id=case_id,
        status=status,
        closed_at=now,
        reviewer_id=str(reviewer_id),
        notes=notes,
    )
    if case is None:
        domain.refuse_review(get_case(session, case_id).status)
    assert case is not None
    reviewed = CaseReviewed(
        case_id=case.id,
        transaction_id=case.transaction_id,
        user_id=case.user_id,
        outcome=outcome,  # type: ignore[arg-type]  # checked by review_status
        reviewer_id=reviewer_id,
        notes=notes,
    )
    emit(session, reviewed, actor=str(reviewer_id))
    return case


def cancel_case(session: Session, transaction_id: uuid.UUID, *, now: datetime) -> bool:
    """The transaction was cancelled (by its sender or the hold expiry) or failed while under
    review: its OPEN case becomes CANCELLED. ``False``: no OPEN case (none, or already
    decided) — nothing changes."""
    closed = store.close_open_case(
        session, transaction_id=transaction_id, status=domain.CANCELLED, closed_at=now
    )
    return closed is not None


@dataclass(frozen=True)
class CasePage:
    cases: list[Case]
    next_token: str


def list_cases(session: Session, status: str, page_size: int, page_token: str) -> CasePage:
    """Newest first; ``status`` "" = every status."""
    size = pagination.page_size(page_size)
    after = pagination.decode_page_token(page_token)
    rows = store.list_cases(
        session, status=domain.status_filter(status), limit=size + 1, after=after
    )
    page, more = rows[:size], len(rows) > size
    token = domain.encode_page_token(page[-1].created_at, page[-1].id) if more else ""
    return CasePage(cases=page, next_token=token)


# ---- statistics -------------------------------------------------------------------------------


def record_completed(
    session: Session,
    *,
    type: str,
    amount: int,
    sender_id: uuid.UUID | None,
    recipient_id: uuid.UUID | None,
) -> domain.Stats:
    """A COMPLETED transaction joins its initiator's statistics for its type (the consumer's
    exactly-once delivery makes this once per event)."""
    user = domain.initiator(type, sender_id, recipient_id)
    return store.add_to_stats(session, user, type, amount)


# ---- sanctions --------------------------------------------------------------------------------


def list_sanctions(session: Session) -> list[Sanction]:
    return store.list_sanctions(session)


def add_sanction(
    session: Session, user_id: uuid.UUID, *, reason: str | None, added_by: str | None
) -> Sanction:
    sanction = store.upsert_sanction(session, user_id, reason=reason, added_by=added_by)
    log.info("fraud_sanction_added", user_id=str(user_id), added_by=added_by)
    return sanction


def remove_sanction(session: Session, user_id: uuid.UUID) -> bool:
    removed = store.delete_sanction(session, user_id)
    log.info("fraud_sanction_removed", user_id=str(user_id), removed=removed)
    return removed
