"""mint.kit.time: the platform's one instant format, whatever the input's zone or precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from mint.kit.time import Instant, parse_rfc3339, rfc3339, rfc3339_or_none, utcnow

PARIS = timezone(timedelta(hours=1))


def test_the_same_instant_renders_the_same_in_any_zone() -> None:
    utc = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert rfc3339(utc) == "2026-11-30T12:00:00.000000Z"
    assert rfc3339(utc.astimezone(PARIS)) == rfc3339(utc)
    assert rfc3339(datetime(2026, 11, 30, 12, 0)) == rfc3339(utc)  # naive is UTC
    assert rfc3339(utc.replace(microsecond=5)) == "2026-11-30T12:00:00.000005Z"
    assert rfc3339_or_none(None) is None


@given(st.datetimes(timezones=st.just(PARIS)))
def test_parse_inverts_format(moment: datetime) -> None:
    parsed = parse_rfc3339(rfc3339(moment))
    assert parsed == moment and parsed.tzinfo == UTC


def test_parse_accepts_offsets_and_refuses_garbage() -> None:
    assert parse_rfc3339("2026-11-30T13:00:00+01:00") == datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert parse_rfc3339("2026-11-30T12:00:00").tzinfo == UTC
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")


def test_instant_fields_render_rfc3339_in_json() -> None:
    class Out(BaseModel):
        at: Instant

    out = Out(at=datetime(2026, 11, 30, 13, 0, tzinfo=PARIS))
    assert out.at.tzinfo == UTC
    assert out.model_dump_json() == '{"at":"2026-11-30T12:00:00.000000Z"}'
    assert utcnow().tzinfo == UTC
