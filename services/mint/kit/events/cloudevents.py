"""CloudEvents 1.0 binary mode over Kafka (events.md): headers out, :class:`Event` in."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

from mint.kit.time import parse_rfc3339, rfc3339, utcnow

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

#: Header names on the wire.
H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_TYPE = "ce_type"
H_SOURCE = "ce_source"
H_TIME = "ce_time"
H_SUBJECT = "ce_subject"
H_ACTOR = "ce_actor"
H_TRACEPARENT = "traceparent"
H_TRACESTATE = "tracestate"
H_CONTENT_TYPE = "content-type"

#: Kafka headers as confluent-kafka takes them.
HeaderList = list[tuple[str, str | bytes | None]]


class MalformedEvent(ValueError):
    """A Kafka message that is not a valid Mint CloudEvent (sent straight to the DLQ)."""


class MessageLike(Protocol):
    """What :meth:`Event.from_message` needs of a ``confluent_kafka.Message``."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Any: ...


def to_json_data(value: Any) -> Any:
    """A JSON-ready copy of ``value``: UUIDs → str, datetimes → RFC 3339 UTC, dates → ISO,
    Decimals → str (money is integers; a Decimal is never silently made a float), Enums → value,
    tuples / sets → lists. Raises ``TypeError`` for anything else that JSON cannot carry."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError("NaN / infinity are not JSON")
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return to_json_data(value.value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"event data keys must be strings, got {type(k).__name__}")
            out[k] = to_json_data(v)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json_data(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable event data")


def encode_data(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_headers(
    *,
    id: str,
    type: str,
    source: str,
    subject: str,
    actor: str,
    time: datetime,
    trace_headers: Mapping[str, str] | None = None,
) -> HeaderList:
    """The CloudEvents binary-mode headers of one event (plus W3C trace context if given)."""
    headers: HeaderList = [
        (H_SPECVERSION, SPEC_VERSION.encode()),
        (H_ID, id.encode()),
        (H_TYPE, type.encode()),
        (H_SOURCE, source.encode()),
        (H_TIME, rfc3339(time).encode()),
        (H_SUBJECT, subject.encode()),
        (H_ACTOR, actor.encode()),
        (H_CONTENT_TYPE, CONTENT_TYPE.encode()),
    ]
    for name in (H_TRACEPARENT, H_TRACESTATE):
        value = (trace_headers or {}).get(name)
        if value:
            headers.append((name, value.encode()))
    return headers


def header_dict(raw: Any) -> dict[str, str]:
    """Kafka headers (list of pairs or dict, bytes or str values) → ``{name: str}``.
    When a header repeats, the last value wins."""
    if not raw:
        return {}
    pairs: Sequence[tuple[str, Any]] = list(raw.items()) if isinstance(raw, Mapping) else raw
    out: dict[str, str] = {}
    for name, value in pairs:
        if value is None:
            continue
        out[name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return out


@dataclass(frozen=True)
class Event:
    """One event as a consumer handler sees it."""

    id: str
    type: str
    source: str
    subject: str
    actor: str
    time: datetime
    topic: str
    key: str | None
    data: dict[str, Any]
    traceparent: str | None = None
    tracestate: str | None = None
    partition: int | None = None
    offset: int | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_message(cls, msg: MessageLike) -> Event:
        """Parse a Kafka message in CloudEvents binary mode; :class:`MalformedEvent` if it is
        not one (missing ``ce_id`` / ``ce_type``, bad time, value not a JSON object)."""
        headers = header_dict(msg.headers())
        missing = [h for h in (H_ID, H_TYPE) if not headers.get(h)]
        if missing:
            raise MalformedEvent(f"missing header(s): {', '.join(missing)}")
        spec = headers.get(H_SPECVERSION, SPEC_VERSION)
        if spec != SPEC_VERSION:
            raise MalformedEvent(f"unsupported ce_specversion {spec!r}")
        try:
            time = parse_rfc3339(headers[H_TIME]) if headers.get(H_TIME) else utcnow()
        except ValueError as exc:
            raise MalformedEvent(f"bad ce_time {headers.get(H_TIME)!r}") from exc
        raw_value = msg.value()
        try:
            data = json.loads(raw_value) if raw_value else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedEvent("value is not JSON") from exc
        if not isinstance(data, dict):
            raise MalformedEvent("value is not a JSON object")
        raw_key = msg.key()
        return cls(
            id=headers[H_ID],
            type=headers[H_TYPE],
            source=headers.get(H_SOURCE, ""),
            subject=headers.get(H_SUBJECT, ""),
            actor=headers.get(H_ACTOR, ""),
            time=time,
            topic=msg.topic() or "",
            key=raw_key.decode("utf-8", "replace") if raw_key is not None else None,
            data=data,
            traceparent=headers.get(H_TRACEPARENT),
            tracestate=headers.get(H_TRACESTATE),
            partition=msg.partition(),
            offset=msg.offset(),
            headers=headers,
        )

    def trace_carrier(self) -> dict[str, str]:
        """``{traceparent, tracestate}`` for ``mint.kit.telemetry.extract_context``."""
        carrier: dict[str, str] = {}
        if self.traceparent:
            carrier[H_TRACEPARENT] = self.traceparent
        if self.tracestate:
            carrier[H_TRACESTATE] = self.tracestate
        return carrier
