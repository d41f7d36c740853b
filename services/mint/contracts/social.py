"""``social.events`` (producer: social) — events.md "social".

Keys: contacts by ``owner_id``, money requests by ``requester_id``, splits by ``creator_id``
(``social.split_settled`` carries no creator: keyed by its ``split_id``)."""

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, StrictInt

from mint.contracts.base import Amount, Currency, EventContract, Instant, Nested, Text


class SocialEvent(EventContract):
    TOPIC: ClassVar[str] = "social.events"
    SOURCE: ClassVar[str] = "social"


# ---- contacts ---------------------------------------------------------------------------------


class ContactEvent(SocialEvent):
    KEY_FIELD: ClassVar[str] = "owner_id"
    SUBJECT_FIELD: ClassVar[str] = "contact_id"

    owner_id: UUID
    contact_id: UUID


class ContactAdded(ContactEvent):
    TYPE: ClassVar[str] = "social.contact_added"


class ContactRemoved(ContactEvent):
    TYPE: ClassVar[str] = "social.contact_removed"


# ---- money requests ---------------------------------------------------------------------------


class MoneyRequestEvent(SocialEvent):
    KEY_FIELD: ClassVar[str] = "requester_id"
    SUBJECT_FIELD: ClassVar[str] = "request_id"

    request_id: UUID
    requester_id: UUID
    payer_id: UUID


class MoneyRequestData(MoneyRequestEvent):
    """The request itself (created, accepted)."""

    amount: Amount
    currency: Currency
    note: str | None = None
    expires_at: Instant


class MoneyRequestCreated(MoneyRequestData):
    TYPE: ClassVar[str] = "social.money_request_created"


class MoneyRequestAccepted(MoneyRequestData):
    TYPE: ClassVar[str] = "social.money_request_accepted"


class MoneyRequestDeclined(MoneyRequestEvent):
    TYPE: ClassVar[str] = "social.money_request_declined"


class MoneyRequestCancelled(MoneyRequestEvent):
    TYPE: ClassVar[str] = "social.money_request_cancelled"


class MoneyRequestExpired(MoneyRequestEvent):
    TYPE: ClassVar[str] = "social.money_request_expired"


class MoneyRequestPaid(MoneyRequestEvent):
    TYPE: ClassVar[str] = "social.money_request_paid"

    transaction_id: UUID


class MoneyRequestFailed(MoneyRequestEvent):
    TYPE: ClassVar[str] = "social.money_request_failed"

    transaction_id: UUID
    reason: Text


# ---- bill splits ------------------------------------------------------------------------------


class Participant(Nested):
    user_id: UUID
    amount: Amount


class SplitEvent(SocialEvent):
    KEY_FIELD: ClassVar[str] = "creator_id"
    SUBJECT_FIELD: ClassVar[str] = "split_id"

    split_id: UUID


class SplitCreated(SplitEvent):
    TYPE: ClassVar[str] = "social.split_created"

    creator_id: UUID
    title: Text
    total: Amount
    currency: Currency
    participants: tuple[Participant, ...]


class SplitShareEvent(SplitEvent):
    SUBJECT_FIELD: ClassVar[str] = "share_id"

    share_id: UUID
    participant_id: UUID
    creator_id: UUID


class SplitPaymentRequested(SplitShareEvent):
    """The participant pays their share to the creator; ``attempt`` counts from 1."""

    TYPE: ClassVar[str] = "social.split_payment_requested"

    amount: Amount
    currency: Currency
    attempt: Annotated[StrictInt, Field(ge=1)]


class SplitSharePaid(SplitShareEvent):
    TYPE: ClassVar[str] = "social.split_share_paid"

    transaction_id: UUID


class SplitSettled(SplitEvent):
    """Every share is paid. No creator in the data (events.md): keyed by the split."""

    TYPE: ClassVar[str] = "social.split_settled"
    KEY_FIELD: ClassVar[str] = "split_id"

    participants: tuple[Participant, ...]
