"""``analytics.events`` (producer: analytics) — events.md "analytics". Emitted once per
category per month at 80 % (warning) and 100 % (exceeded) of the user's budget."""

from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field, StringConstraints

from mint.contracts.base import Amount, EventContract, NonNegativeInt
from mint.contracts.transaction import Category

#: A UTC calendar month, ``YYYY-MM``.
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class BudgetEvent(EventContract):
    TOPIC: ClassVar[str] = "analytics.events"
    SOURCE: ClassVar[str] = "analytics"
    SUBJECT_FIELD: ClassVar[str] = "user_id"

    user_id: UUID
    category: Category
    month: Month
    spent: NonNegativeInt
    limit: Amount
    ratio: Annotated[float, Field(ge=0)]


class BudgetWarning(BudgetEvent):
    TYPE: ClassVar[str] = "analytics.budget_warning"


class BudgetExceeded(BudgetEvent):
    TYPE: ClassVar[str] = "analytics.budget_exceeded"
