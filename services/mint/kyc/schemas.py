"""What kyc's HTTP API takes (the profile details) and answers (profile, documents, limits)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from pydantic import Field, field_validator

from mint.kit.schemas import Body, Schema
from mint.kit.time import Instant, utcnow
from mint.kyc import domain


class ProfileIn(Body):
    country: Annotated[str, Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")]
    full_name: Annotated[str, Field(min_length=1, max_length=200)]
    date_of_birth: date

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return domain.normalize_country(value)

    @field_validator("full_name")
    @classmethod
    def _name(cls, value: str) -> str:
        return domain.normalize_full_name(value)

    @field_validator("date_of_birth")
    @classmethod
    def _born(cls, value: date) -> date:
        return domain.check_date_of_birth(value, utcnow().date())


class DocumentOut(Schema):
    id: uuid.UUID
    type: str
    file_name: str
    content_type: str
    size: int
    status: str
    uploaded_at: Instant


class ProfileOut(Schema):
    tier: str
    status: str
    country: str | None
    full_name: str | None
    date_of_birth: date | None
    rejection_reason: str | None
    submitted_at: Instant | None
    documents: list[DocumentOut]


class LimitsOut(Schema):
    tier: str
    currency: str
    per_transaction: int
    daily: int
    monthly: int
