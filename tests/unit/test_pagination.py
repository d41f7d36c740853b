"""The kit's keyset cursors: round trip, and anything else is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint.kit import pagination
from mint.kit.domain import Invalid
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


def test_page_sizes_of_list_methods() -> None:
    assert pagination.page_size(0) == pagination.DEFAULT_PAGE
    assert pagination.page_size(1) == 1
    assert pagination.page_size(pagination.MAX_PAGE) == pagination.MAX_PAGE
    for bad in (-1, pagination.MAX_PAGE + 1):
        with pytest.raises(Invalid) as refused:
            pagination.page_size(bad)
        assert refused.value.code == "invalid_page_size"
    with pytest.raises(Invalid) as named:
        pagination.page_size(101, name="limit")
    assert named.value.code == "invalid_limit"


def test_page_tokens_of_list_methods() -> None:
    position = (datetime(2026, 1, 31, 12, 0, tzinfo=UTC), uuid.uuid4())
    assert pagination.decode_page_token(pagination.encode_cursor(*position)) == position
    assert pagination.decode_page_token("") is None
    for bad in ("not-a-token", "nonsense", "e30"):
        with pytest.raises(Invalid) as refused:
            pagination.decode_page_token(bad)
        assert refused.value.code == "invalid_page_token"
