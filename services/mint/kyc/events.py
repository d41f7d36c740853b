"""Consumers: ``auth.events`` (profiles and the BASIC tier) and ``admin.events`` (review
decisions). Each handler runs in the transaction that records the event as processed, so a
redelivered event has exactly one effect; the transitions themselves are conditional updates."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from mint.contracts.admin import KycApproved, KycDecision, KycRejected
from mint.contracts.auth import UserRegistered, UserVerified
from mint.kit.events import ConsumerSpec, Event, on
from mint.kyc import actions

log = structlog.get_logger("mint.kyc.events")


def _actor(event: Event) -> str:
    return event.actor or "system"


def create_profile(session: Session, data: UserRegistered, event: Event) -> None:
    _, created = actions.ensure_profile(session, data.user_id, actor=_actor(event))
    log.info("kyc_profile_created" if created else "kyc_profile_exists", user_id=str(data.user_id))


def upgrade_to_basic(session: Session, data: UserVerified, event: Event) -> None:
    upgraded = actions.upgrade_to_basic(session, data.user_id, actor=_actor(event))
    log.info("kyc_tier_basic" if upgraded else "kyc_tier_unchanged", user_id=str(data.user_id))


def apply_approval(session: Session, data: KycApproved, event: Event) -> None:
    applied = actions.approve(
        session, profile_id=data.profile_id, user_id=data.user_id, reviewer=_actor(event)
    )
    _log_decision(data, event, "approved", applied)


def apply_rejection(session: Session, data: KycRejected, event: Event) -> None:
    applied = actions.reject(
        session,
        profile_id=data.profile_id,
        user_id=data.user_id,
        reason=data.reason,
        reviewer=_actor(event),
    )
    _log_decision(data, event, "rejected", applied)


def _log_decision(data: KycDecision, event: Event, decision: str, applied: bool) -> None:
    log.info(
        "kyc_decision_applied" if applied else "kyc_decision_ignored",
        decision=decision,
        profile_id=str(data.profile_id),
        user_id=str(data.user_id),
        event_id=event.id,
        detail=None if applied else "profile not under review (stale or repeated decision)",
    )


CONSUMERS = [
    ConsumerSpec(
        "kyc-auth", routes=[on(UserRegistered, create_profile), on(UserVerified, upgrade_to_basic)]
    ),
    ConsumerSpec(
        "kyc-admin", routes=[on(KycApproved, apply_approval), on(KycRejected, apply_rejection)]
    ),
]
