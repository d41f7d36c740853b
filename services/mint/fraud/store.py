"""fraud's queries, row locks and inserts (no rules, no events): Session in, rows or small read
models out. The use cases in :mod:`mint.fraud.actions` decide; this module fetches and writes
what they decided."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from sqlalchemy import Table, and_, delete, exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mint.fraud.domain import Stats
from mint.fraud.models import Assessment, Case, Sanction, UserStats
from mint.kit.time import utcnow

ASSESSMENTS: Final = cast(Table, Assessment.__table__)
USER_STATS: Final = cast(Table, UserStats.__table__)

# ---- scoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A decision already given for a transaction."""

    decision: str
    score: int
    rules: tuple[str, ...]
    reason: str
    case_id: uuid.UUID | None


@dataclass(frozen=True)
class ScoringView:
    """Everything scoring reads from the database, in one query."""

    earlier: Verdict | None  # this transaction was scored already
    stats: Stats  # the initiator's completed transactions of this type
    recipient_sanctioned: bool


def scoring_view(
    session: Session,
    *,
    transaction_id: uuid.UUID,
    user_id: uuid.UUID,
    type: str,
    recipient_id: uuid.UUID | None,
) -> ScoringView:
    """The earlier assessment, the statistics and the recipient's sanction in ONE statement: a
    single row (``FROM (SELECT 1)``) left-joined to the two keyed rows, the sanction an
    ``EXISTS`` on its primary key."""
    one = select(literal(1).label("one")).subquery("one")
    sanctioned = (
        exists().where(Sanction.user_id == recipient_id) if recipient_id else literal(False)
    )
    row = session.execute(
        select(
            Assessment.decision,
            Assessment.score,
            Assessment.rules,
            Assessment.reason,
            Assessment.case_id,
            UserStats.count.label("stats_count"),  # not ``count``: Row.count is tuple's
            UserStats.mean,
            UserStats.m2,
            sanctioned.label("sanctioned"),
        )
        .select_from(one)
        .outerjoin(Assessment, Assessment.transaction_id == transaction_id)
        .outerjoin(UserStats, and_(UserStats.user_id == user_id, UserStats.type == type))
    ).one()
    earlier = None
    if row.decision is not None:
        earlier = Verdict(row.decision, row.score, tuple(row.rules), row.reason, row.case_id)
    stats = Stats() if row.stats_count is None else Stats(row.stats_count, row.mean, row.m2)
    return ScoringView(earlier=earlier, stats=stats, recipient_sanctioned=bool(row.sanctioned))


def insert_assessment(
    session: Session,
    *,
    transaction_id: uuid.UUID,
    user_id: uuid.UUID,
    type: str,
    amount: int,
    verdict: Verdict,
) -> bool:
    """Record the decision; ``False`` (nothing written) when the transaction has one already
    (a concurrent repeat won)."""
    inserted = session.execute(
        pg_insert(ASSESSMENTS)  # the table, not the entity: Core's insert, not the ORM's bulk path
        .values(
            transaction_id=transaction_id,
            user_id=user_id,
            type=type,
            amount=amount,
            decision=verdict.decision,
            score=verdict.score,
            rules=list(verdict.rules),
            reason=verdict.reason,
            case_id=verdict.case_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["transaction_id"])
        .returning(ASSESSMENTS.c.transaction_id)
    ).first()
    return inserted is not None


def get_verdict(session: Session, transaction_id: uuid.UUID) -> Verdict | None:
    row = session.get(Assessment, transaction_id)
    if row is None:
        return None
    return Verdict(row.decision, row.score, tuple(row.rules), row.reason, row.case_id)


# ---- cases ------------------------------------------------------------------------------------


def insert_case(session: Session, case: Case) -> None:
    session.add(case)
    session.flush()


def get_case(session: Session, case_id: uuid.UUID) -> Case | None:
    return session.get(Case, case_id)


def close_open_case(
    session: Session,
    *,
    status: str,
    closed_at: datetime,
    case_id: uuid.UUID | None = None,
    transaction_id: uuid.UUID | None = None,
    reviewer_id: str | None = None,
    notes: str | None = None,
) -> Case | None:
    """OPEN → ``status`` as a conditional update (by case or by transaction); ``None`` when no
    such case is OPEN."""
    where = Case.id == case_id if case_id is not None else Case.transaction_id == transaction_id
    values: dict[str, object] = {"status": status, "closed_at": closed_at}
    if reviewer_id is not None:
        values.update(reviewer_id=reviewer_id, notes=notes)
    return session.scalars(
        update(Case)
        .where(where, Case.status == "OPEN")
        .values(**values)
        .returning(Case)
        .execution_options(populate_existing=True)
    ).first()


def list_cases(
    session: Session, *, status: str | None, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Case]:
    """Up to ``limit`` cases, newest first, after the keyset position ``(created_at, id)``."""
    query = select(Case)
    if status is not None:
        query = query.where(Case.status == status)
    if after is not None:
        at, case_id = after
        query = query.where(
            (Case.created_at < at) | ((Case.created_at == at) & (Case.id < case_id))
        )
    query = query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)
    return list(session.scalars(query))


# ---- statistics -------------------------------------------------------------------------------


def add_to_stats(session: Session, user_id: uuid.UUID, type: str, amount: int) -> Stats:
    """Fold ``amount`` into the user's statistics for ``type`` in ONE statement (created with
    it when missing): Welford's update of :meth:`mint.fraud.domain.Stats.add`, written in SQL
    so that the row is read, locked and written in a single round trip. Every right-hand side
    reads the row as it was; ``excluded.mean`` is the amount (a first amount: count 1, mean
    the amount, m2 0). ``tests/integration/test_fraud.py`` checks it against ``Stats.add``."""
    row = USER_STATS.c
    new = pg_insert(USER_STATS).values(
        user_id=user_id, type=type, count=1, mean=float(amount), m2=0.0, updated_at=utcnow()
    )
    x, count = new.excluded.mean, row.count + 1
    mean = row.mean + (x - row.mean) / count
    statement = new.on_conflict_do_update(
        index_elements=["user_id", "type"],
        set_={
            "count": count,
            "mean": mean,
            "m2": row.m2 + (x - row.mean) * (x - mean),
            "updated_at": new.excluded.updated_at,
        },
    ).returning(row.count, row.mean, row.m2)
    total, average, m2 = session.execute(statement).one()
    return Stats(total, average, m2)


# ---- sanctions --------------------------------------------------------------------------------


def list_sanctions(session: Session) -> list[Sanction]:
    return list(session.scalars(select(Sanction).order_by(Sanction.created_at, Sanction.user_id)))


def upsert_sanction(
    session: Session, user_id: uuid.UUID, *, reason: str | None, added_by: str | None
) -> Sanction:
    """Put the user on the list (a repeat updates the reason and who added it)."""
    return session.scalars(
        pg_insert(Sanction)
        .values(user_id=user_id, reason=reason, added_by=added_by, created_at=utcnow())
        .on_conflict_do_update(
            index_elements=["user_id"], set_={"reason": reason, "added_by": added_by}
        )
        .returning(Sanction)
        .execution_options(populate_existing=True)
    ).one()


def delete_sanction(session: Session, user_id: uuid.UUID) -> bool:
    deleted = session.execute(
        delete(Sanction).where(Sanction.user_id == user_id).returning(Sanction.user_id)
    ).first()
    return deleted is not None
