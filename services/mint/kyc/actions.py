"""kyc's use cases — the only place that decides. The HTTP API, the gRPC servicer and the event
consumers call these; each takes the caller's unit of work (a ``Session``), or the ``Database``
when it must span several short transactions (an upload around object storage), plus the
collaborators it needs from the wiring. Refusals are domain errors; every ``kyc.*`` event is
emitted here, in the transaction of the change it reports.

The events keep the profile as ``ce_subject`` (events.md: the id of the main object), which the
contracts without a ``profile_id`` field cannot know, hence ``subject=`` on those.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

import structlog
from sqlalchemy.orm import Session

from mint.contracts.kyc import KycProfileCreated, KycSubmitted, TierUpgraded, VerificationFailed
from mint.kit import pagination
from mint.kit.db import Database
from mint.kit.domain import NotFound
from mint.kit.events import emit
from mint.kit.limits import LimitsSource, TierLimits
from mint.kit.time import utcnow
from mint.kyc import domain, store
from mint.kyc.models import Document, Profile
from mint.kyc.storage import DocumentStorage, storage_key

log = structlog.get_logger("mint.kyc.actions")

Actor = str | uuid.UUID

# ---- profiles -----------------------------------------------------------------------------


def ensure_profile(session: Session, user_id: uuid.UUID, *, actor: Actor) -> tuple[Profile, bool]:
    """The user's profile, created UNVERIFIED (with ``kyc.profile_created``) if missing; the
    flag says whether it was created now."""
    created = store.insert_profile(session, user_id, tier=domain.UNVERIFIED, status=domain.NONE)
    profile = store.get_profile(session, user_id)
    assert profile is not None, "inserted or already there"
    if created:
        emit(session, KycProfileCreated(user_id=user_id), actor=actor, subject=profile.id)
    return profile, created


def _locked_profile(session: Session, user_id: uuid.UUID, *, actor: Actor) -> Profile:
    """The user's profile (created if missing), locked until the end of the transaction."""
    ensure_profile(session, user_id, actor=actor)
    return store.lock_profile(session, user_id)


def get_profile(session: Session, user_id: uuid.UUID) -> Profile:
    """An existing profile (for other services: no profile is created by looking)."""
    profile = store.get_profile(session, user_id)
    if profile is None:
        raise NotFound("profile_not_found", "no KYC profile for this user")
    return profile


def update_details(
    session: Session, user_id: uuid.UUID, *, country: str, full_name: str, born: date
) -> Profile:
    """The user's own details (already normalised by the request schema)."""
    profile = _locked_profile(session, user_id, actor=user_id)
    domain.refuse_detail_change(profile.status)
    profile.country, profile.full_name, profile.date_of_birth = country, full_name, born
    profile.updated_at = utcnow()
    return profile


def upgrade_to_basic(session: Session, user_id: uuid.UUID, *, actor: Actor) -> bool:
    """A verified e-mail makes an UNVERIFIED profile BASIC (any other tier is left alone)."""
    profile, _ = ensure_profile(session, user_id, actor=actor)
    if not store.change_tier(session, user_id, from_tier=domain.UNVERIFIED, to_tier=domain.BASIC):
        return False
    upgraded = TierUpgraded(user_id=user_id, previous_tier=domain.UNVERIFIED, new_tier=domain.BASIC)
    emit(session, upgraded, actor=actor, subject=profile.id)
    return True


# ---- submission and review ----------------------------------------------------------------


def submit(session: Session, user_id: uuid.UUID) -> Profile:
    """Put the profile under review (``kyc.submitted``); its documents become SUBMITTED."""
    profile = _locked_profile(session, user_id, actor=user_id)
    documents = store.documents_of(session, profile.id)
    domain.refuse_submission(profile.tier, profile.status, {d.type for d in documents})
    now = utcnow()
    profile.status, profile.submitted_at, profile.updated_at = domain.PENDING_REVIEW, now, now
    profile.rejection_reason = profile.reviewer_id = None
    profile.reviewed_at = None
    for document in documents:
        document.status = domain.DOC_SUBMITTED
    emit(session, KycSubmitted(user_id=user_id, profile_id=profile.id), actor=user_id)
    return profile


def approve(session: Session, *, profile_id: uuid.UUID, user_id: uuid.UUID, reviewer: str) -> bool:
    """An admin's approval: the profile under review becomes VERIFIED / APPROVED
    (``kyc.tier_upgraded`` unless it already was VERIFIED). ``False``: the profile was not
    under review (a stale or repeated decision) or is not the user's — nothing changed."""
    previous = store.close_review(
        session,
        profile_id=profile_id,
        user_id=user_id,
        under_review=domain.PENDING_REVIEW,
        status=domain.APPROVED,
        tier=domain.VERIFIED,
        rejection_reason=None,
        reviewer=reviewer,
    )
    if previous is None:
        return False
    store.set_document_status(session, profile_id, domain.DOC_APPROVED)
    if previous != domain.VERIFIED:
        upgraded = TierUpgraded(
            user_id=user_id, previous_tier=domain.parse_tier(previous), new_tier=domain.VERIFIED
        )
        emit(session, upgraded, actor=reviewer, subject=profile_id)
    return True


def reject(
    session: Session,
    *,
    profile_id: uuid.UUID,
    user_id: uuid.UUID,
    reason: str | None,
    reviewer: str,
) -> bool:
    """An admin's rejection: the profile under review keeps its tier, becomes REJECTED with
    the reason (``kyc.verification_failed``) and may be submitted again. ``False`` as for
    :func:`approve`."""
    recorded_reason = domain.rejection_reason(reason)
    previous = store.close_review(
        session,
        profile_id=profile_id,
        user_id=user_id,
        under_review=domain.PENDING_REVIEW,
        status=domain.REJECTED,
        tier=None,
        rejection_reason=recorded_reason,
        reviewer=reviewer,
    )
    if previous is None:
        return False
    store.set_document_status(session, profile_id, domain.DOC_REJECTED)
    failed = VerificationFailed(user_id=user_id, reason=recorded_reason)
    emit(session, failed, actor=reviewer, subject=profile_id)
    return True


@dataclass(frozen=True)
class QueuePage:
    profiles: list[Profile]
    next_token: str  # "" on the last page


def pending_queue(session: Session, page_size: int, token: str) -> QueuePage:
    """Profiles under review, oldest submission first (keyset pagination; 0 = default size)."""
    size = pagination.page_size(page_size)
    after = pagination.decode_page_token(token)
    rows = store.pending_profiles(
        session, status=domain.PENDING_REVIEW, limit=size + 1, after=after
    )
    page, more = rows[:size], len(rows) > size
    last = page[-1] if more and page else None
    next_token = ""
    if last is not None and last.submitted_at is not None:
        next_token = domain.encode_queue_token(last.submitted_at, last.id)
    return QueuePage(page, next_token)


# ---- documents ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDocument:
    """A received file (rewound) whose content type was decided from its bytes."""

    type: str
    content: BinaryIO
    size: int
    sha256: str
    content_type: str
    file_name: str | None


def upload_document(
    db: Database,
    storage: DocumentStorage,
    user_id: uuid.UUID,
    new: NewDocument,
    finish: Callable[[Session, Document], None] | None = None,
) -> Document:
    """Store ``new`` as the user's current document of its type; ``finish`` runs in the
    transaction that switches the row (e.g. to record the idempotent outcome).

    Replacing a document is atomic for readers: the new object is written first, then the row
    is switched in one transaction (under the profile's lock, re-checking that no review is in
    progress), and only after the commit is the old object deleted. If anything fails before
    the commit, the new object is removed and the old document stays current."""
    with db.session() as session:  # fail fast, before moving any bytes
        profile, _ = ensure_profile(session, user_id, actor=user_id)
        domain.refuse_while_in_review(profile.status)
        profile_id = profile.id
    document_id = uuid.uuid4()
    key = storage_key(profile_id, document_id)
    storage.put(key, new.content, new.size, new.content_type)
    try:
        with db.session() as session:
            profile = _locked_profile(session, user_id, actor=user_id)
            domain.refuse_while_in_review(profile.status)
            if profile.id != profile_id:
                raise RuntimeError("the user's profile changed during the upload")
            document = Document(
                id=document_id,
                profile_id=profile_id,
                type=new.type,
                file_name=domain.clean_file_name(new.file_name, new.content_type),
                content_type=new.content_type,
                size=new.size,
                sha256=new.sha256,
                storage_key=key,
                status=domain.DOC_UPLOADED,
                uploaded_at=utcnow(),
            )
            old_key = store.replace_document(session, document)
            profile.updated_at = utcnow()
            if finish is not None:
                finish(session, document)
    except BaseException:
        storage.delete(key)
        raise
    if old_key is not None:
        storage.delete(old_key)
    log.info(
        "kyc_document_stored",
        user_id=str(user_id),
        document_id=str(document_id),
        type=new.type,
        size=new.size,
        replaced=old_key is not None,
    )
    return document


@dataclass(frozen=True)
class DocumentContent:
    document_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    file_name: str
    content_type: str
    size: int
    chunks: Iterator[bytes]


def open_document(
    db: Database, storage: DocumentStorage, document_id: uuid.UUID
) -> DocumentContent:
    """A document's description and its bytes (streamed from storage, for a reviewer)."""
    with db.session() as session:
        document = store.get_document(session, document_id)
        if document is None:
            raise NotFound("document_not_found", "no such document")
        profile = store.profile_by_id(session, document.profile_id)
        assert profile is not None, "documents belong to a profile"
    return DocumentContent(
        document_id=document.id,
        user_id=profile.user_id,
        type=document.type,
        file_name=document.file_name,
        content_type=document.content_type,
        size=document.size,
        chunks=storage.read(document.storage_key),
    )


# ---- limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserLimits:
    """The limits of the user's tier now."""

    tier: str
    currency: str
    per_transaction: int
    daily: int
    monthly: int


@dataclass(frozen=True)
class LimitsDecision:
    check: domain.LimitCheck
    limits: TierLimits
    tier: str
    currency: str
    limits_version: str
    #: the user's KYC country ("" when not given) — the fraud check's ``user_country``
    country: str = ""


def _tier_of(session: Session, user_id: uuid.UUID) -> str:
    """A user kyc has not heard of yet is UNVERIFIED."""
    profile = store.get_profile(session, user_id)
    return profile.tier if profile is not None else domain.UNVERIFIED


def user_limits(session: Session, limits: LimitsSource, user_id: uuid.UUID) -> UserLimits:
    snapshot = limits.current
    tier = _tier_of(session, user_id)
    values = snapshot.for_tier(tier)
    return UserLimits(
        tier=tier,
        currency=snapshot.currency,
        per_transaction=values.per_transaction,
        daily=values.daily,
        monthly=values.monthly,
    )


def check_limits(
    session: Session,
    limits: LimitsSource,
    user_id: uuid.UUID,
    *,
    amount: int,
    used_today: int,
    used_this_month: int,
    currency: str,
) -> LimitsDecision:
    """Does a movement of ``amount`` fit the user's tier limits, given the usage the caller
    (transactions) counted? One limits snapshot for the whole decision."""
    domain.validate_limits_request(amount, used_today, used_this_month)
    snapshot = limits.current
    domain.check_currency(currency, snapshot.currency)
    profile = store.get_profile(session, user_id)  # none yet: UNVERIFIED, no country
    tier = profile.tier if profile is not None else domain.UNVERIFIED
    values = snapshot.for_tier(tier)
    return LimitsDecision(
        check=domain.check_limits(values, amount, used_today, used_this_month),
        limits=values,
        tier=tier,
        currency=snapshot.currency,
        limits_version=snapshot.version,
        country=(profile.country or "") if profile is not None else "",
    )
