"""``auth.events`` (producer: auth) — events.md "auth"."""

from typing import ClassVar, Literal
from uuid import UUID

from mint.contracts.base import EventContract, Text

Role = Literal["user", "admin"]


class AuthEvent(EventContract):
    """Every auth event is about one user: key and subject are ``user_id``."""

    TOPIC: ClassVar[str] = "auth.events"
    SOURCE: ClassVar[str] = "auth"
    SUBJECT_FIELD: ClassVar[str] = "user_id"

    user_id: UUID


class UserRegistered(AuthEvent):
    TYPE: ClassVar[str] = "auth.user_registered"

    email: str
    name: str


class UserVerified(AuthEvent):
    TYPE: ClassVar[str] = "auth.user_verified"


class UserFrozen(AuthEvent):
    TYPE: ClassVar[str] = "auth.user_frozen"

    reason: Text


class UserUnfrozen(AuthEvent):
    TYPE: ClassVar[str] = "auth.user_unfrozen"


class RoleChanged(AuthEvent):
    TYPE: ClassVar[str] = "auth.role_changed"

    role: Role
