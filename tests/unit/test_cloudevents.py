"""CloudEvents binary-mode headers and Event parsing, without a broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest
from confluent_kafka import Message
from sqlalchemy import MetaData

from mint.kit.events import (
    TOPICS,
    Event,
    MalformedEvent,
    add_event_tables,
    build_headers,
    dlq_topic,
    header_dict,
    partitions_for,
    to_json_data,
)
from mint.kit.events.cloudevents import HeaderList
from mint.kit.time import rfc3339

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _headers(**overrides: str) -> HeaderList:
    base = build_headers(
        id="5b2c7f4e-8f0e-4d59-9c1e-2f3a4b5c6d7e",
        type="wallet.created",
        source="wallet",
        subject="w-1",
        actor="system",
        time=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        trace_headers={"traceparent": TRACEPARENT, "tracestate": "mint=1"},
    )
    values = dict(base)
    for name, value in overrides.items():
        values[name] = value.encode()
    return list(values.items())


def test_build_headers_has_every_cloudevents_header() -> None:
    headers = dict(_headers())
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"5b2c7f4e-8f0e-4d59-9c1e-2f3a4b5c6d7e",
        "ce_type": b"wallet.created",
        "ce_source": b"wallet",
        "ce_time": b"2026-01-02T03:04:05.123456Z",
        "ce_subject": b"w-1",
        "ce_actor": b"system",
        "content-type": b"application/json",
        "traceparent": TRACEPARENT.encode(),
        "tracestate": b"mint=1",
    }


def test_build_headers_without_trace_context_omits_it() -> None:
    headers = dict(
        build_headers(
            id="x", type="t", source="s", subject="", actor="system", time=datetime.now(UTC)
        )
    )
    assert "traceparent" not in headers and "tracestate" not in headers


def test_event_from_message_round_trip() -> None:
    msg = Message(
        topic="wallet.events",
        partition=4,
        offset=17,
        key=b"user-1",
        value=json.dumps({"wallet_id": "w-1", "amount": 500}).encode(),
        headers=_headers(),
    )
    event = Event.from_message(msg)
    assert event.id == "5b2c7f4e-8f0e-4d59-9c1e-2f3a4b5c6d7e"
    assert event.type == "wallet.created"
    assert event.source == "wallet"
    assert event.subject == "w-1"
    assert event.actor == "system"
    assert event.time == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert event.topic == "wallet.events"
    assert event.key == "user-1"
    assert event.data == {"wallet_id": "w-1", "amount": 500}
    assert event.traceparent == TRACEPARENT
    assert event.tracestate == "mint=1"
    assert (event.partition, event.offset) == (4, 17)
    assert event.trace_carrier() == {"traceparent": TRACEPARENT, "tracestate": "mint=1"}


def test_event_from_message_accepts_str_headers_and_empty_value() -> None:
    msg = Message(topic="t", key=None, value=None, headers={"ce_id": "a", "ce_type": "x.y"})
    event = Event.from_message(msg)
    assert event.data == {} and event.key is None and event.traceparent is None


@pytest.mark.parametrize(
    ("headers", "value"),
    [
        ([("ce_type", b"x")], b"{}"),  # no id
        ([("ce_id", b"1")], b"{}"),  # no type
        ([("ce_id", b"1"), ("ce_type", b"x"), ("ce_specversion", b"0.3")], b"{}"),
        ([("ce_id", b"1"), ("ce_type", b"x"), ("ce_time", b"yesterday")], b"{}"),
        ([("ce_id", b"1"), ("ce_type", b"x")], b"not json"),
        ([("ce_id", b"1"), ("ce_type", b"x")], b"[1, 2]"),
        ([("ce_id", b"1"), ("ce_type", b"x")], b"\xff\xfe"),
    ],
)
def test_malformed_messages_are_refused(headers: HeaderList, value: bytes) -> None:
    with pytest.raises(MalformedEvent):
        Event.from_message(Message(topic="t", value=value, headers=headers))


def test_header_dict_last_value_wins_and_skips_none() -> None:
    assert header_dict([("a", b"1"), ("a", b"2"), ("b", None), ("c", "s")]) == {"a": "2", "c": "s"}
    assert header_dict(None) == {}


class Color(Enum):
    RED = "red"


def test_to_json_data_serialises_ids_and_times() -> None:
    uid = uuid.uuid4()
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    out = to_json_data(
        {
            "id": uid,
            "at": moment,
            "day": date(2026, 5, 1),
            "amount": 1250,
            "ratio": 0.5,
            "price": Decimal("1.10"),
            "color": Color.RED,
            "tags": ("a", "b"),
            "nested": [{"id": uid, "ok": True, "none": None}],
        }
    )
    assert out == {
        "id": str(uid),
        "at": "2026-05-01T10:00:00.000000Z",
        "day": "2026-05-01",
        "amount": 1250,
        "ratio": 0.5,
        "price": "1.10",
        "color": "red",
        "tags": ["a", "b"],
        "nested": [{"id": str(uid), "ok": True, "none": None}],
    }
    json.dumps(out)  # really JSON


@pytest.mark.parametrize("bad", [object(), {1: "x"}, float("nan"), b"bytes"])
def test_to_json_data_refuses_what_json_cannot_carry(bad: object) -> None:
    with pytest.raises(TypeError):
        to_json_data({"v": bad} if not isinstance(bad, dict) else bad)


def test_rfc3339_treats_naive_as_utc() -> None:
    assert rfc3339(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000Z"


def test_topic_catalogue_partitions() -> None:
    assert TOPICS["transaction.events"] == 6
    assert TOPICS["wallet.events"] == 6
    assert TOPICS["social.events"] == 6
    assert TOPICS["auth.events"] == 3
    assert len(TOPICS) == 10
    assert partitions_for(dlq_topic("wallet.events")) == 1
    assert partitions_for("something.else") == 3


def test_add_event_tables_is_idempotent_and_shaped() -> None:
    md = MetaData()
    add_event_tables(md)
    add_event_tables(md)
    outbox, processed = md.tables["outbox"], md.tables["processed_events"]
    assert {c.name for c in outbox.primary_key} == {"id"}
    assert {c.name for c in processed.primary_key} == {"group", "event_id"}
    assert {"topic", "key", "type", "source", "subject", "actor", "data", "headers"} <= set(
        outbox.c.keys()
    )
    assert outbox.c.published_at.nullable
    (index,) = outbox.indexes
    assert index.name == "ix_outbox_unpublished"
