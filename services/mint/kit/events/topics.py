"""The topic catalogue of events.md and idempotent topic creation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from mint.kit.catalog import DLQ_PARTITIONS as DLQ_PARTITIONS
from mint.kit.catalog import DLQ_SUFFIX as DLQ_SUFFIX
from mint.kit.catalog import TOPICS as TOPICS

log = structlog.get_logger("mint.events")

DEFAULT_PARTITIONS = 3


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def kafka_name(prefix: str, name: str) -> str:
    """A topic or consumer group name as it is on the wire: the tenant's ``MINT_KAFKA_PREFIX``
    before the catalogue's name (platform.md: tenants share one Kafka). The one place where the
    prefix is applied; everything above it speaks catalogue names."""
    return prefix + name


def catalogue_name(prefix: str, wire_name: str) -> str:
    """The inverse of :func:`kafka_name` for a name read off the wire."""
    return wire_name[len(prefix) :] if prefix and wire_name.startswith(prefix) else wire_name


def partitions_for(topic: str) -> int:
    if topic.endswith(DLQ_SUFFIX):
        return DLQ_PARTITIONS
    return TOPICS.get(topic, DEFAULT_PARTITIONS)


def ensure_topics(
    bootstrap: str,
    topics: Iterable[str] | Mapping[str, int],
    *,
    with_dlq: bool = True,
    timeout: float = 15.0,
) -> None:
    """Create the topics that do not exist yet (and their DLQs when ``with_dlq``).

    ``topics`` is either names (partitions from :data:`TOPICS`, 3 for unknown topics, 1 for
    DLQs) or a ``{name: partitions}`` mapping. Existing topics are left as they are. Replication
    factor is the broker default. Raises ``KafkaException`` when the cluster is unreachable.
    """
    wanted: dict[str, int] = {}
    items = topics.items() if isinstance(topics, Mapping) else ((t, None) for t in topics)
    for name, parts in items:
        wanted[name] = parts or partitions_for(name)
        if with_dlq and not name.endswith(DLQ_SUFFIX):
            wanted.setdefault(dlq_topic(name), DLQ_PARTITIONS)
    if not wanted:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)})
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [
        NewTopic(name, num_partitions=parts, replication_factor=-1)
        for name, parts in sorted(wanted.items())
        if name not in existing
    ]
    if not missing:
        return
    futures = admin.create_topics(missing, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            log.info("kafka_topic_created", topic=name, partitions=wanted[name])
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
