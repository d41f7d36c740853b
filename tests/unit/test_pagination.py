"""The kit's keyset cursors: round trip, and anything else is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint.kit.pagination import InvalidCursor, decode_cursor, encode_cursor

aware = st.datetimes(timezones=st.just(UTC))


@given(at=aware, key=st.uuids())
def test_uuid_cursor_round_trips(at: datetime, key: uuid.UUID) -> None:
    assert decode_cursor(encode_cursor(at, key), uuid.UUID) == (at, key)


@given(at=aware, key=st.integers(min_value=0, max_value=2**62))
def test_int_cursor_round_trips(at: datetime, key: int) -> None:
    assert decode_cursor(encode_cursor(at, key), int) == (at, key)


@pytest.mark.parametrize(
    "cursor",
    ["", "not base64!", "e30", encode_cursor(datetime(2026, 1, 1), 1)],  # "{}", naive time
)
def test_garbage_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, int)


def test_key_type_is_checked() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(datetime.now(UTC), uuid.uuid4()), int)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor(datetime.now(UTC), 7), uuid.UUID)
