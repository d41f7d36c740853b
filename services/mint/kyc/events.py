"""Consumers: ``auth.events`` (profiles and the BASIC tier) and ``admin.events`` (review
decisions). Each handler runs in the transaction that records the event as processed, so a
redelivered event has exactly one effect; the transitions themselves are conditional updates."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.orm import Session

from mint.kit.events import ConsumerSpec, Event
from mint.kit.service import ServiceContext
from mint.kyc import store

log = structlog.get_logger("mint.kyc.events")

MAX_REASON_LENGTH = 1000


def _uuid(data: dict[str, Any], key: str) -> uuid.UUID:
    """A required UUID field of the event data (a malformed event fails → retried → DLQ)."""
    try:
        return uuid.UUID(str(data[key]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"event data needs a valid {key!r}") from exc


def handle_auth_event(ctx: ServiceContext, session: Session, event: Event) -> None:
    if event.type == "auth.user_registered":
        user_id = _uuid(event.data, "user_id")
        _, created = store.ensure_profile(session, user_id, actor=event.actor or "system")
        log.info("kyc_profile_created" if created else "kyc_profile_exists", user_id=str(user_id))
    elif event.type == "auth.user_verified":
        user_id = _uuid(event.data, "user_id")
        upgraded = store.upgrade_to_basic(session, user_id, actor=event.actor or "system")
        log.info("kyc_tier_basic" if upgraded else "kyc_tier_unchanged", user_id=str(user_id))


def handle_admin_event(ctx: ServiceContext, session: Session, event: Event) -> None:
    if event.type not in ("admin.kyc_approved", "admin.kyc_rejected"):
        return
    approve = event.type == "admin.kyc_approved"
    profile_id = _uuid(event.data, "profile_id")
    user_id = _uuid(event.data, "user_id")
    reason = str(event.data.get("reason") or "").strip()[:MAX_REASON_LENGTH] or None
    applied = store.decide(
        session,
        profile_id=profile_id,
        user_id=user_id,
        approve=approve,
        reason=reason,
        reviewer=event.actor or "system",
    )
    log.info(
        "kyc_decision_applied" if applied else "kyc_decision_ignored",
        decision="approved" if approve else "rejected",
        profile_id=str(profile_id),
        user_id=str(user_id),
        event_id=event.id,
        detail=None if applied else "profile not under review (stale or repeated decision)",
    )


CONSUMERS = [
    ConsumerSpec("kyc-auth", ["auth.events"], handle_auth_event),
    ConsumerSpec("kyc-admin", ["admin.events"], handle_admin_event),
]
