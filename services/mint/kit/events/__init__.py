"""Exactly-once effects over Kafka: transactional outbox, relay, idempotent consumers, DLQs.

See conventions.md "Events" and events.md. Services use :func:`emit` (in their own transaction),
declare :class:`ConsumerSpec` handlers, and add the tables with :func:`add_event_tables`; the
runner starts one :class:`OutboxRelay` and one :class:`ConsumerRunner` per spec.
"""

from mint.kit.events.cloudevents import (
    Event,
    MalformedEvent,
    build_headers,
    header_dict,
    to_json_data,
)
from mint.kit.events.consumer import (
    ConsumerRunner,
    ConsumerSpec,
    ContractHandler,
    Handler,
    Route,
    on,
)
from mint.kit.events.outbox import OutboxRelay, emit, emit_untyped
from mint.kit.events.tables import (
    OUTBOX,
    PROCESSED_EVENTS,
    add_event_tables,
    create_event_tables,
    drop_event_tables,
)
from mint.kit.events.topics import TOPICS, dlq_topic, ensure_topics, partitions_for

__all__ = [
    "OUTBOX",
    "PROCESSED_EVENTS",
    "TOPICS",
    "ConsumerRunner",
    "ConsumerSpec",
    "ContractHandler",
    "Event",
    "Handler",
    "MalformedEvent",
    "OutboxRelay",
    "Route",
    "add_event_tables",
    "build_headers",
    "create_event_tables",
    "dlq_topic",
    "drop_event_tables",
    "emit",
    "emit_untyped",
    "ensure_topics",
    "header_dict",
    "on",
    "partitions_for",
    "to_json_data",
]
