"""The one clock and the one timestamp format of the platform (conventions.md: RFC 3339 UTC).

Every instant the platform writes — API bodies, event data, CloudEvents ``ce_time``, gRPC
strings — is :func:`rfc3339`: converted to UTC, microsecond precision, ``Z`` suffix, so the
same instant renders the same way whichever service renders it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    """``2026-11-30T13:39:58.000000Z``: UTC, microseconds, ``Z`` (a naive datetime is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def rfc3339_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def parse_rfc3339(value: str) -> datetime:
    """A timezone-aware UTC datetime (``ValueError`` for anything that is not an instant; a
    value without an offset is taken as UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _instant(value: object) -> datetime:
    """A tz-aware UTC datetime from a datetime (naive = UTC) or an RFC 3339 string — not from
    a number or any other of pydantic's lax forms."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    if isinstance(value, str):
        return parse_rfc3339(value)
    raise ValueError("expected an RFC 3339 timestamp")


#: A datetime field of a pydantic model (API schemas, event contracts): validated to a
#: tz-aware UTC datetime, written as :func:`rfc3339` in JSON, ``date-time`` in OpenAPI.
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
