"""Opaque keyset cursors (conventions.md "List endpoints use cursor pagination").

A cursor is base64url(JSON ``[timestamp, key]``) of the last row of a page; the next page starts
after it in (timestamp, key) order. Every service uses these two functions and maps
:class:`InvalidCursor` to its own answer (a 422 problem on HTTP, INVALID_ARGUMENT on gRPC).
gRPC list methods take their page size and token through :func:`page_size` and
:func:`decode_page_token`, which raise the domain error of a bad one.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Final, TypeVar
from uuid import UUID

from mint.kit.domain import Invalid

Key = TypeVar("Key", UUID, int)

DEFAULT_PAGE: Final = 20
MAX_PAGE: Final = 100


class InvalidCursor(ValueError):
    """The cursor was not produced by :func:`encode_cursor` (or was tampered with)."""


def encode_cursor(at: datetime, key: UUID | int) -> str:
    raw = json.dumps(
        [at.isoformat(), key if isinstance(key, int) else str(key)], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, key_type: type[Key]) -> tuple[datetime, Key]:
    """Inverse of :func:`encode_cursor`; the timestamp must be timezone-aware."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, key = json.loads(raw)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        if key_type is int:
            if not isinstance(key, int) or isinstance(key, bool):
                raise ValueError("bad key")
            return parsed, key  # type: ignore[return-value]
        return parsed, key_type(str(key))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def page_size(requested: int, *, name: str = "page_size") -> int:
    """A requested page size (0: the default) within ``1..MAX_PAGE``; ``Invalid
    invalid_<name>`` otherwise."""
    size = requested or DEFAULT_PAGE
    if not 1 <= size <= MAX_PAGE:
        raise Invalid(f"invalid_{name}", f"{name} must be in 1..{MAX_PAGE}")
    return size


def decode_page_token(token: str) -> tuple[datetime, UUID] | None:
    """The keyset position a page starts after ("" = the first page); ``Invalid
    invalid_page_token`` for a token this service did not hand out."""
    if not token:
        return None
    try:
        return decode_cursor(token, UUID)
    except InvalidCursor:
        raise Invalid("invalid_page_token", "page token is not valid") from None
