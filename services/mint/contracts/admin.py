"""``admin.events`` (producer: admin) — events.md "admin": one event per admin action, data
``{target_type, target_id, reason, before, after}`` (+ extra fields for KYC decisions) and
``ce_actor`` = the admin. Keyed and subjected by ``target_id`` (KYC decisions: keyed by the
user). ``target_id`` is a string: not every target is a UUID (limits, sanctions).

Class names start with ``Admin`` (the action's effect is often another service's event of the
same name: ``auth.user_frozen``, ``transaction.reversed``, …), except the KYC decisions
``KycApproved`` / ``KycRejected``, which have no twin.
"""

from typing import ClassVar
from uuid import UUID

from pydantic import JsonValue

from mint.contracts.base import EventContract, Text

#: A JSON object snapshot of the target before / after the action.
Snapshot = dict[str, JsonValue]


class AdminAction(EventContract):
    TOPIC: ClassVar[str] = "admin.events"
    SOURCE: ClassVar[str] = "admin"
    KEY_FIELD: ClassVar[str] = "target_id"
    SUBJECT_FIELD: ClassVar[str] = "target_id"

    target_type: Text
    target_id: Text
    reason: str | None = None
    before: Snapshot | None = None
    after: Snapshot | None = None


class AdminUserFrozen(AdminAction):
    TYPE: ClassVar[str] = "admin.user_frozen"


class AdminUserUnfrozen(AdminAction):
    TYPE: ClassVar[str] = "admin.user_unfrozen"


class AdminRoleChanged(AdminAction):
    TYPE: ClassVar[str] = "admin.role_changed"


class KycDecision(AdminAction):
    """kyc applies these to the profile (services.md §5); keyed by the profile's user."""

    KEY_FIELD: ClassVar[str] = "user_id"

    profile_id: UUID
    user_id: UUID


class KycApproved(KycDecision):
    TYPE: ClassVar[str] = "admin.kyc_approved"


class KycRejected(KycDecision):
    TYPE: ClassVar[str] = "admin.kyc_rejected"

    reason: Text


class AdminFraudCaseReviewed(AdminAction):
    TYPE: ClassVar[str] = "admin.fraud_case_reviewed"


class AdminTransactionReversed(AdminAction):
    TYPE: ClassVar[str] = "admin.transaction_reversed"


class AdminTransactionForceCompleted(AdminAction):
    TYPE: ClassVar[str] = "admin.transaction_force_completed"


class AdminTransactionFailed(AdminAction):
    TYPE: ClassVar[str] = "admin.transaction_failed"


class AdminLimitsUpdated(AdminAction):
    TYPE: ClassVar[str] = "admin.limits_updated"


class AdminSanctionAdded(AdminAction):
    TYPE: ClassVar[str] = "admin.sanction_added"


class AdminSanctionRemoved(AdminAction):
    TYPE: ClassVar[str] = "admin.sanction_removed"
