"""kyc's queries, row locks and inserts (no rules, no events): Session in, ORM rows out. The use
cases in :mod:`mint.kyc.actions` decide; this module fetches and writes what they decided."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, selectinload

from mint.kit.time import utcnow
from mint.kyc.models import Document, Profile

# ---- profiles -----------------------------------------------------------------------------


def insert_profile(session: Session, user_id: uuid.UUID, *, tier: str, status: str) -> bool:
    """Insert the user's profile; ``False`` (nothing written) when the user has one."""
    now = utcnow()
    inserted = session.execute(
        pg_insert(Profile)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            tier=tier,
            status=status,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id"])
        .returning(Profile.id)
    ).first()
    return inserted is not None


def get_profile(session: Session, user_id: uuid.UUID) -> Profile | None:
    return session.scalars(select(Profile).where(Profile.user_id == user_id)).first()


def profile_by_id(session: Session, profile_id: uuid.UUID) -> Profile | None:
    return session.get(Profile, profile_id)


def lock_profile(session: Session, user_id: uuid.UUID) -> Profile:
    """The user's (existing) profile, freshly read and locked until the end of the transaction."""
    return session.scalars(
        select(Profile)
        .where(Profile.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def change_tier(session: Session, user_id: uuid.UUID, *, from_tier: str, to_tier: str) -> bool:
    """``from_tier`` → ``to_tier`` as a conditional update: ``False`` when the profile is in
    any other tier."""
    changed = session.execute(
        update(Profile)
        .where(Profile.user_id == user_id, Profile.tier == from_tier)
        .values(tier=to_tier, updated_at=utcnow())
        .returning(Profile.id)
        .execution_options(synchronize_session=False)
    ).first()
    return changed is not None


def close_review(
    session: Session,
    *,
    profile_id: uuid.UUID,
    user_id: uuid.UUID,
    under_review: str,
    status: str,
    tier: str | None,
    rejection_reason: str | None,
    reviewer: str,
) -> str | None:
    """Record a review outcome on the user's profile if it is still ``under_review`` (a
    conditional update under the row lock); ``tier`` None keeps the tier. Returns the tier the
    profile had before, or ``None`` when nothing changed."""
    before = (
        select(Profile.id, Profile.tier)
        .where(Profile.id == profile_id, Profile.user_id == user_id)
        .with_for_update()
        .subquery()
    )
    now = utcnow()
    values: dict[str, object] = {
        "status": status,
        "rejection_reason": rejection_reason,
        "reviewed_at": now,
        "updated_at": now,
        "reviewer_id": reviewer,
    }
    if tier is not None:
        values["tier"] = tier
    row = session.execute(
        update(Profile)
        .where(Profile.id == before.c.id, Profile.status == under_review)
        .values(**values)
        .returning(before.c.tier)
        .execution_options(synchronize_session=False)
    ).first()
    return None if row is None else str(row[0])


def pending_profiles(
    session: Session, *, status: str, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[Profile]:
    """Up to ``limit`` profiles in ``status``, oldest submission first, after the keyset
    position ``after`` (``(submitted_at, id)``), with their documents loaded."""
    query = select(Profile).where(Profile.status == status)
    if after is not None:
        after_at, after_id = after
        query = query.where(
            (Profile.submitted_at > after_at)
            | ((Profile.submitted_at == after_at) & (Profile.id > after_id))
        )
    query = query.order_by(Profile.submitted_at, Profile.id).limit(limit)
    return list(session.scalars(query.options(selectinload(Profile.documents))))


# ---- documents ----------------------------------------------------------------------------


def documents_of(session: Session, profile_id: uuid.UUID) -> list[Document]:
    return list(
        session.scalars(
            select(Document)
            .where(Document.profile_id == profile_id)
            .order_by(Document.uploaded_at, Document.id)
        )
    )


def set_document_status(session: Session, profile_id: uuid.UUID, status: str) -> None:
    session.execute(
        update(Document)
        .where(Document.profile_id == profile_id)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )


def replace_document(session: Session, new: Document) -> str | None:
    """Make ``new`` its profile's document of its type; returns the storage key of the
    document it replaces (delete that object after commit)."""
    old = session.scalars(
        select(Document).where(Document.profile_id == new.profile_id, Document.type == new.type)
    ).first()
    old_key = old.storage_key if old is not None else None
    if old is not None:
        session.delete(old)
        session.flush()  # the unique (profile, type) row is gone before the new one arrives
    session.add(new)
    session.flush()
    return old_key


def get_document(session: Session, document_id: uuid.UUID) -> Document | None:
    return session.get(Document, document_id)
