"""``webhook.events`` (producer: webhook) — events.md "webhook". ``webhook.test`` is never on
Kafka (it is only what ``POST /{id}/test`` delivers), so it has no contract here."""

from typing import ClassVar
from uuid import UUID

from mint.contracts.base import EventContract, Text


class EndpointDisabled(EventContract):
    """Three consecutive events exhausted their attempts; the owner is notified."""

    TOPIC: ClassVar[str] = "webhook.events"
    TYPE: ClassVar[str] = "webhook.endpoint_disabled"
    SOURCE: ClassVar[str] = "webhook"
    SUBJECT_FIELD: ClassVar[str] = "endpoint_id"

    endpoint_id: UUID
    user_id: UUID
    reason: Text
