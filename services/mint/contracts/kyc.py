"""``kyc.events`` (producer: kyc) — events.md "kyc". Keyed by ``user_id``; the subject is the
profile when the data names it, else the user."""

from typing import ClassVar, Literal
from uuid import UUID

from mint.contracts.base import EventContract, Text

Tier = Literal["UNVERIFIED", "BASIC", "VERIFIED"]


class KycEvent(EventContract):
    TOPIC: ClassVar[str] = "kyc.events"
    SOURCE: ClassVar[str] = "kyc"
    SUBJECT_FIELD: ClassVar[str] = "user_id"

    user_id: UUID


class KycProfileCreated(KycEvent):
    TYPE: ClassVar[str] = "kyc.profile_created"


class KycSubmitted(KycEvent):
    TYPE: ClassVar[str] = "kyc.submitted"
    SUBJECT_FIELD: ClassVar[str] = "profile_id"

    profile_id: UUID


class TierUpgraded(KycEvent):
    TYPE: ClassVar[str] = "kyc.tier_upgraded"

    previous_tier: Tier
    new_tier: Tier


class VerificationFailed(KycEvent):
    TYPE: ClassVar[str] = "kyc.verification_failed"

    reason: Text
