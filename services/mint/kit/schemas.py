"""The base of every request and response schema (one schema per direction, in each service's
``schemas.py``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A response built straight from an ORM object or a domain dataclass
    (``WalletOut.model_validate(account)``) — never by copying fields by hand. Datetime fields
    are declared ``Instant`` (:mod:`mint.kit.time`) so every service renders them alike."""

    model_config = ConfigDict(from_attributes=True)


class Body(BaseModel):
    """A request body: unknown fields are refused (422), so a typo is never silently ignored."""

    model_config = ConfigDict(extra="forbid")
