"""Persistence and state transitions of profiles and documents (each in the caller's unit of
work, with the ``kyc.*`` events it causes written to the outbox in the same transaction)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from mint.kit import pagination
from mint.kit.db import utcnow
from mint.kit.errors import Problem
from mint.kit.events import emit
from mint.kyc import domain
from mint.kyc.models import Document, Profile

TOPIC = "kyc.events"


def emit_kyc(
    session: Session,
    *,
    type: str,
    user_id: uuid.UUID,
    subject: uuid.UUID,
    data: dict[str, object],
    actor: str | uuid.UUID,
) -> str:
    return emit(
        session,
        topic=TOPIC,
        type=type,
        subject=subject,
        data=data,
        key=user_id,
        actor=actor or "system",
        source="kyc",
    )


# ---- profiles -----------------------------------------------------------------------------


def ensure_profile(
    session: Session, user_id: uuid.UUID, *, actor: str | uuid.UUID = "system"
) -> tuple[Profile, bool]:
    """The user's profile, created UNVERIFIED (with ``kyc.profile_created``) if missing."""
    now = utcnow()
    created = session.execute(
        pg_insert(Profile)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            tier=domain.UNVERIFIED,
            status=domain.NONE,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id"])
        .returning(Profile.id)
    ).first()
    profile = session.scalars(select(Profile).where(Profile.user_id == user_id)).one()
    if created is not None:
        emit_kyc(
            session,
            type="kyc.profile_created",
            user_id=user_id,
            subject=profile.id,
            data={"user_id": user_id},
            actor=actor,
        )
    return profile, created is not None


def lock_profile(session: Session, user_id: uuid.UUID, actor: str | uuid.UUID) -> Profile:
    """The user's profile (created if missing), locked until the end of the transaction."""
    ensure_profile(session, user_id, actor=actor)
    return session.scalars(
        select(Profile)
        .where(Profile.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def get_profile(session: Session, user_id: uuid.UUID) -> Profile | None:
    return session.scalars(select(Profile).where(Profile.user_id == user_id)).first()


def documents_of(session: Session, profile_id: uuid.UUID) -> list[Document]:
    return list(
        session.scalars(
            select(Document)
            .where(Document.profile_id == profile_id)
            .order_by(Document.uploaded_at, Document.id)
        )
    )


def refuse_while_in_review(profile: Profile) -> None:
    if profile.status == domain.PENDING_REVIEW:
        raise Problem(409, "review_in_progress", "the profile is under review")


def update_details(
    session: Session, user_id: uuid.UUID, *, country: str, full_name: str, born: date
) -> Profile:
    profile = lock_profile(session, user_id, user_id)
    refuse_while_in_review(profile)
    if profile.status == domain.APPROVED:
        raise Problem(409, "profile_locked", "a verified profile cannot be changed")
    profile.country, profile.full_name, profile.date_of_birth = country, full_name, born
    profile.updated_at = utcnow()
    return profile


def submit(session: Session, user_id: uuid.UUID) -> Profile:
    profile = lock_profile(session, user_id, user_id)
    documents = documents_of(session, profile.id)
    problems = domain.submission_problems(profile.tier, profile.status, {d.type for d in documents})
    if problems:
        raise Problem(422, problems[0], problems[0].replace("_", " "), missing=problems)
    now = utcnow()
    profile.status, profile.submitted_at, profile.updated_at = domain.PENDING_REVIEW, now, now
    profile.rejection_reason = profile.reviewer_id = None
    profile.reviewed_at = None
    for document in documents:
        document.status = domain.DOC_SUBMITTED
    emit_kyc(
        session,
        type="kyc.submitted",
        user_id=user_id,
        subject=profile.id,
        data={"user_id": user_id, "profile_id": profile.id},
        actor=user_id,
    )
    return profile


def upgrade_to_basic(session: Session, user_id: uuid.UUID, actor: str) -> bool:
    """UNVERIFIED → BASIC (conditional: any other tier is left alone)."""
    profile, _ = ensure_profile(session, user_id, actor=actor)
    changed = session.execute(
        update(Profile)
        .where(Profile.user_id == user_id, Profile.tier == domain.UNVERIFIED)
        .values(tier=domain.BASIC, updated_at=utcnow())
        .returning(Profile.id)
        .execution_options(synchronize_session=False)
    ).first()
    if changed is None:
        return False
    emit_kyc(
        session,
        type="kyc.tier_upgraded",
        user_id=user_id,
        subject=profile.id,
        data={"user_id": user_id, "previous_tier": domain.UNVERIFIED, "new_tier": domain.BASIC},
        actor=actor,
    )
    return True


def decide(
    session: Session,
    *,
    profile_id: uuid.UUID,
    user_id: uuid.UUID,
    approve: bool,
    reason: str | None,
    reviewer: str,
) -> bool:
    """Apply a review decision to a profile under review (a conditional update: a decision for
    a profile that is not PENDING_REVIEW, or not the user's, changes nothing). Approval makes
    the profile VERIFIED / APPROVED; rejection keeps the tier and records the reason."""
    before = (
        select(Profile.id, Profile.tier)
        .where(Profile.id == profile_id, Profile.user_id == user_id)
        .with_for_update()
        .subquery()
    )
    now = utcnow()
    values: dict[str, object] = {"reviewed_at": now, "updated_at": now, "reviewer_id": reviewer}
    if approve:
        values.update(tier=domain.VERIFIED, status=domain.APPROVED, rejection_reason=None)
    else:
        values.update(status=domain.REJECTED, rejection_reason=reason or "rejected")
    row = session.execute(
        update(Profile)
        .where(Profile.id == before.c.id, Profile.status == domain.PENDING_REVIEW)
        .values(**values)
        .returning(before.c.tier)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return False
    previous_tier: str = row[0]
    session.execute(
        update(Document)
        .where(Document.profile_id == profile_id)
        .values(status=domain.DOC_APPROVED if approve else domain.DOC_REJECTED)
        .execution_options(synchronize_session=False)
    )
    if not approve:
        emit_kyc(
            session,
            type="kyc.verification_failed",
            user_id=user_id,
            subject=profile_id,
            data={"user_id": user_id, "reason": values["rejection_reason"]},
            actor=reviewer,
        )
    elif previous_tier != domain.VERIFIED:
        emit_kyc(
            session,
            type="kyc.tier_upgraded",
            user_id=user_id,
            subject=profile_id,
            data={"user_id": user_id, "previous_tier": previous_tier, "new_tier": domain.VERIFIED},
            actor=reviewer,
        )
    return True


# ---- documents ----------------------------------------------------------------------------


def replace_document(session: Session, user_id: uuid.UUID, new: Document) -> str | None:
    """Make ``new`` the profile's current document of its type in this transaction; returns the
    storage key of the document it replaces (delete that object after commit)."""
    profile = lock_profile(session, user_id, user_id)
    refuse_while_in_review(profile)
    if new.profile_id != profile.id:
        raise ValueError("document of another profile")
    old = session.scalars(
        select(Document).where(Document.profile_id == profile.id, Document.type == new.type)
    ).first()
    old_key = old.storage_key if old is not None else None
    if old is not None:
        session.delete(old)
        session.flush()
    session.add(new)
    profile.updated_at = utcnow()
    session.flush()
    return old_key


def get_document(session: Session, document_id: uuid.UUID) -> Document | None:
    return session.get(Document, document_id)


# ---- the review queue ---------------------------------------------------------------------


@dataclass(frozen=True)
class QueuePage:
    profiles: list[Profile]
    next_token: str


def _encode_token(submitted_at: datetime, profile_id: uuid.UUID) -> str:
    return pagination.encode_cursor(submitted_at, profile_id)


def _decode_token(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        return pagination.decode_cursor(token, uuid.UUID)
    except pagination.InvalidCursor:
        raise Problem(400, "invalid_page_token", "page token is not valid") from None


def pending_queue(session: Session, page_size: int, token: str = "") -> QueuePage:
    """Profiles under review, oldest submission first (keyset pagination)."""
    query = select(Profile).where(Profile.status == domain.PENDING_REVIEW)
    if token:
        after_at, after_id = _decode_token(token)
        query = query.where(
            (Profile.submitted_at > after_at)
            | ((Profile.submitted_at == after_at) & (Profile.id > after_id))
        )
    rows = list(
        session.scalars(query.order_by(Profile.submitted_at, Profile.id).limit(page_size + 1))
    )
    more = len(rows) > page_size
    rows = rows[:page_size]
    last = rows[-1] if more and rows else None
    next_token = ""
    if last is not None and last.submitted_at is not None:
        next_token = _encode_token(last.submitted_at, last.id)
    return QueuePage(rows, next_token)
