"""``audit.events``: security events (events.md "audit"). Today only auth produces them; their
``ce_type`` is in the ``auth.`` namespace. Never a password, token or link: the data is exactly
``{user_id (if known), ip, user_agent}``."""

from typing import ClassVar
from uuid import UUID

from mint.contracts.base import EventContract


class SecurityEvent(EventContract):
    """Keyed by the user when known; otherwise key and subject are ``unknown``."""

    TOPIC: ClassVar[str] = "audit.events"
    SOURCE: ClassVar[str] = "auth"
    SUBJECT_FIELD: ClassVar[str] = "user_id"

    user_id: UUID | None = None
    ip: str
    user_agent: str


class LoginSucceeded(SecurityEvent):
    TYPE: ClassVar[str] = "auth.login_succeeded"


class LoginFailed(SecurityEvent):
    TYPE: ClassVar[str] = "auth.login_failed"


class RefreshReused(SecurityEvent):
    TYPE: ClassVar[str] = "auth.refresh_reused"


class PasswordReset(SecurityEvent):
    TYPE: ClassVar[str] = "auth.password_reset"
