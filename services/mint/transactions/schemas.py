"""What the transactions API takes (strict request bodies) and answers (the transaction object
of services.md §3, built from the row with ``TransactionOut.model_validate``)."""

from __future__ import annotations

from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from mint.contracts.money import CURRENCY, MAX_AMOUNT, MIN_AMOUNT
from mint.contracts.transaction import Category
from mint.kit.schemas import Body, Schema
from mint.kit.text import no_control_chars
from mint.kit.time import Instant
from mint.transactions.domain import Status, TxnType

DESCRIPTION_MAX: Final = 255
MERCHANT_MAX: Final = 100

Amount = Annotated[StrictInt, Field(ge=MIN_AMOUNT, le=MAX_AMOUNT)]
Description = Annotated[
    StrictStr, Field(max_length=DESCRIPTION_MAX), AfterValidator(no_control_chars)
]
Merchant = Annotated[StrictStr, Field(max_length=MERCHANT_MAX), AfterValidator(no_control_chars)]
#: Documented as the one accepted value; any other is refused ``unsupported_currency`` (422)
#: by the use case, not as a validation error.
Currency = Annotated[StrictStr, Field(json_schema_extra={"enum": [CURRENCY]})]


# ---- requests (unknown fields refused, integers are integers) ---------------------------------


class TopupBody(Body):
    amount: Amount
    currency: Currency | None = None
    description: Description | None = None


class TransferBody(Body):
    recipient_id: UUID
    amount: Amount
    currency: Currency | None = None
    description: Description | None = None
    merchant: Merchant | None = None
    category: Category | None = None


class WithdrawBody(Body):
    amount: Amount
    currency: Currency | None = None


MovementBody = TopupBody | TransferBody | WithdrawBody


# ---- responses --------------------------------------------------------------------------------


class FraudOut(Schema):
    decision: str | None
    score: int | None
    rules: list[str]


class TransactionOut(Schema):
    """The transaction object (services.md §3), as the API answers it; the transaction.*
    events carry the same object (their contracts in mint.contracts.transaction)."""

    id: UUID
    type: TxnType
    status: Status
    amount: int
    currency: str
    sender_id: UUID | None
    recipient_id: UUID | None
    description: str | None
    merchant: str | None
    category: str | None
    reference: dict[str, Any] | None
    fraud: FraudOut | None
    failure_reason: str | None
    created_at: Instant
    completed_at: Instant | None


class TransactionPage(Schema):
    items: list[TransactionOut]
    next_cursor: str | None
