"""Idempotent Kafka consumers: one effect per event id and group, retries, then ``<topic>.dlq``.

Messages are taken from Kafka in batches (``consumer_batch_size``) and a batch is handled in
one database transaction — its ``(group, event id)`` rows in one insert, the handlers in the
partition's order, one commit — so a busy consumer pays one round trip per batch, not per
event. A batch that cannot go together (a malformed event, a handler that raises, the database
down) is rolled back whole and handled one message at a time, as before: retries with backoff,
the DLQ, never a skipped event, order kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from opentelemetry.trace import SpanKind
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mint.kit.events.cloudevents import Event, HeaderList, MalformedEvent, header_dict
from mint.kit.events.contract import Contract
from mint.kit.events.tables import PROCESSED_EVENTS
from mint.kit.events.topics import catalogue_name, dlq_topic, ensure_topics, kafka_name
from mint.kit.telemetry import (
    CONSUMER_DLQ,
    CONSUMER_FAILED,
    CONSUMER_LAG,
    CONSUMER_PROCESSED,
    extract_context,
)
from mint.kit.telemetry import tracer as get_tracer
from mint.kit.time import utcnow

if TYPE_CHECKING:
    from mint.kit.config import KitSettings
    from mint.kit.db import Database

log = structlog.get_logger("mint.events.consumer")

C = TypeVar("C", bound=Contract)
#: A handler of one contract: the session of the transaction that records the event as
#: processed, the event's data as its model, and the envelope (id, actor, time, …).
ContractHandler = Callable[[Session, C, Event], None]
#: A handler of every event of its topics, undecoded (the kit's tests of the machinery).
Handler = Callable[[Session, Event], None]


@dataclass(frozen=True)
class Route(Generic[C]):
    contract: type[C]
    handler: ContractHandler[C]


def on(contract: type[C], handler: ContractHandler[C]) -> Route[C]:
    """``on(UserRegistered, create_wallet)``: call ``handler`` for each event of that type."""
    return Route(contract, handler)


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group of a service and what it does with each event, once.

    ``routes`` dispatch by contract: the group subscribes to their topics, decodes each event
    of a routed type into its model (data that does not fit goes straight to the DLQ) and
    ignores the other types of those topics. A handler runs inside the transaction that
    records ``(group, event id)`` in ``processed_events``; raising rolls both back and the
    event is retried."""

    group: str
    routes: Sequence[Route[Any]] = ()
    topics: Sequence[str] = ()  # subscribed besides the routes' topics (with ``handler``)
    handler: Handler | None = None  # every event of ``topics``, undecoded
    _by_type: dict[str, Route[Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[str, Route[Any]] = {}
        for route in self.routes:
            if route.contract.TYPE in by_type:
                raise ValueError(f"{self.group}: two handlers for {route.contract.TYPE}")
            by_type[route.contract.TYPE] = route
        object.__setattr__(self, "_by_type", by_type)

    @property
    def subscribed(self) -> list[str]:
        topics = {route.contract.TOPIC for route in self.routes} | set(self.topics)
        return sorted(topics)

    def bind(self, event: Event) -> Callable[[Session], None] | None:
        """What to do with ``event`` in the processing transaction (None: not ours to handle).
        Raises ``MalformedEvent`` when a routed type's data does not fit its contract."""
        route = self._by_type.get(event.type)
        if route is not None:
            try:
                data = route.contract.from_data(event.data)
            except ValueError as exc:
                raise MalformedEvent(str(exc)) from exc
            return lambda session: route.handler(session, data, event)
        handler = self.handler
        if handler is not None and event.topic in self.topics:
            return lambda session: handler(session, event)
        return None


class _Stopped(Exception):
    """``stop`` was set while a message was being retried: leave it uncommitted."""


class ConsumerRunner:
    """Runs one :class:`ConsumerSpec` until ``stop`` is set (Kafka group ``mint.<svc>.<group>``)."""

    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        db: Database,
        settings: KitSettings,
        service: str,
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.spec = spec
        self.settings = settings
        self.group_id = kafka_name(
            settings.kafka_prefix, f"{settings.consumer_group_prefix}.{service}.{spec.group}"
        )
        self._extra_config = dict(consumer_config or {})
        self._producer: Producer | None = None
        self._tracer = get_tracer("mint.events")

    # ---- loop -------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        if not self._ensure_topics(stop):
            return
        consumer = Consumer(self._consumer_config())
        consumer.subscribe(self._wire(self.spec.subscribed))
        log.info("consumer_started", group=self.group_id, topics=list(self.spec.subscribed))
        try:
            while not stop.is_set():
                first = consumer.poll(0.5)
                if first is None:
                    continue
                # and whatever else is already fetched: no wait, so a batch forms only when
                # events arrive faster than they are handled
                more = self.settings.consumer_batch_size - 1
                polled = [first, *consumer.consume(more, 0)] if more else [first]
                try:
                    self._process_polled(consumer, polled, stop)
                except _Stopped:
                    break  # uncommitted: the next owner of the partition redelivers it
        finally:
            consumer.close()
            if self._producer is not None:
                self._producer.flush(5)
            log.info("consumer_stopped", group=self.group_id)

    def _consumer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap.servers": self.settings.kafka_bootstrap_servers,
            "group.id": self.group_id,
            "client.id": f"{self.group_id}-{threading.get_ident()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.settings.kafka_session_timeout_ms,
            "log_level": 3,
        }
        config.update(self._extra_config)
        return config

    def _ensure_topics(self, stop: threading.Event) -> bool:
        """Create the topics (and DLQs) if missing; retries while Kafka is unreachable."""
        delay = 0.5
        warned = False
        while not stop.is_set():
            try:
                ensure_topics(
                    self.settings.kafka_bootstrap_servers,
                    self._wire(self.spec.subscribed),
                    timeout=10,
                )
                return True
            except KafkaException as exc:
                if not warned:
                    log.warning("consumer_kafka_unavailable", group=self.group_id, error=str(exc))
                    warned = True
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
        return False

    def _wire(self, topics: Sequence[str]) -> list[str]:
        return [kafka_name(self.settings.kafka_prefix, topic) for topic in topics]

    def _on_poll_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        if err.fatal():
            log.error("consumer_fatal_error", group=self.group_id, error=str(err))
            raise KafkaException(err)
        log.debug("consumer_poll_error", group=self.group_id, error=str(err))

    def _commit(self, consumer: Consumer, msg: Message) -> None:
        # Asynchronous: the effect is already committed with its (group, event id) row, so an
        # offset lost to a crash or a rebalance only redelivers what dedup absorbs — waiting
        # for the broker's acknowledgement of every offset would only slow the group down.
        try:
            consumer.commit(message=msg, asynchronous=True)
        except KafkaException as exc:  # rebalance: the new owner redelivers; dedup absorbs it
            log.warning("consumer_commit_failed", group=self.group_id, error=str(exc))

    def _record_lag(self, consumer: Consumer, msg: Message) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is None or partition is None or offset is None:
            return
        try:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=0.1, cached=True
            )
        except KafkaException:
            return
        if high >= 0:
            CONSUMER_LAG.labels(self.spec.group, topic, str(partition)).set(
                max(0, high - offset - 1)
            )

    # ---- a batch ----------------------------------------------------------------------------

    def _process_polled(
        self, consumer: Consumer, polled: list[Message], stop: threading.Event
    ) -> None:
        messages = []
        for msg in polled:
            err = msg.error()
            if err is not None:
                self._on_poll_error(err)
            else:
                messages.append(msg)
        if not messages:
            return
        failed_at = self._process_together(messages) if len(messages) > 1 else None
        if failed_at is None and len(messages) > 1:
            last: dict[tuple[str | None, int | None], Message] = {}
            for msg in messages:
                last[(msg.topic(), msg.partition())] = msg
            for msg in last.values():
                self._commit(consumer, msg)
                self._record_lag(consumer, msg)
            return
        for index, msg in enumerate(messages):
            # the event whose handler failed in the batch has had its first attempt there
            self.process(msg, stop, attempted=1 if index == failed_at else 0)
            self._commit(consumer, msg)
            self._record_lag(consumer, msg)

    def _process_together(self, messages: list[Message]) -> int | None:
        """Handle ``messages`` in one transaction. None when they all were; else (everything
        rolled back) the index of the message whose handler raised, or -1 when the batch could
        not be tried together (a malformed event, the database)."""
        bound: list[tuple[int, Event, str, Callable[[Session], None]]] = []
        for index, msg in enumerate(messages):
            topic = catalogue_name(self.settings.kafka_prefix, msg.topic() or "")
            try:
                event = replace(Event.from_message(msg), topic=topic)
                action = self.spec.bind(event)
            except MalformedEvent:
                return -1  # dead-lettered on its own, in order
            if action is None:
                log.debug("consumer_event_ignored", group=self.group_id, event_type=event.type)
            else:
                bound.append((index, event, topic, action))
        if not bound:
            return None
        running = -1
        try:
            with self.db.session() as session:
                claimed = set(
                    session.execute(
                        pg_insert(PROCESSED_EVENTS)
                        .values(
                            [
                                {
                                    "group": self.spec.group,
                                    "event_id": e.id,
                                    "processed_at": utcnow(),
                                }
                                for _, e, _, _ in bound
                            ]
                        )
                        .on_conflict_do_nothing()
                        .returning(PROCESSED_EVENTS.c.event_id)
                    ).scalars()
                )
                for index, event, _, action in bound:
                    running = index
                    with self._span(event) as span:
                        if event.id not in claimed:  # handled before, or earlier in this batch
                            span.set_attribute("mint.duplicate", True)
                            continue
                        claimed.discard(event.id)
                        action(session)
        except Exception as exc:
            log.info(
                "consumer_batch_retried_one_by_one",
                group=self.group_id,
                size=len(messages),
                error=repr(exc),
            )
            return running
        for _, _, topic, _ in bound:
            CONSUMER_PROCESSED.labels(self.spec.group, topic).inc()
        return None

    # ---- one message ------------------------------------------------------------------------

    def process(self, msg: Message, stop: threading.Event, *, attempted: int = 0) -> None:
        """Handle one message: effect once, retries with backoff, then the DLQ (``attempted``:
        attempts already made, in a batch that failed on it)."""
        topic = catalogue_name(self.settings.kafka_prefix, msg.topic() or "")
        try:
            event = replace(Event.from_message(msg), topic=topic)
            action = self.spec.bind(event)
        except MalformedEvent as exc:
            log.warning(
                "consumer_malformed_event", group=self.group_id, topic=topic, error=str(exc)
            )
            CONSUMER_FAILED.labels(self.spec.group, topic).inc()
            self._dead_letter(msg, exc, attempts=1, stop=stop)
            return
        if action is None:
            log.debug("consumer_event_ignored", group=self.group_id, event_type=event.type)
            return
        max_attempts = self.settings.consumer_max_attempts
        attempt = min(attempted, max_attempts - 1)
        while True:
            attempt += 1
            try:
                self._handle(event, action)
                CONSUMER_PROCESSED.labels(self.spec.group, topic).inc()
                return
            except Exception as exc:
                CONSUMER_FAILED.labels(self.spec.group, topic).inc()
                if isinstance(exc, DBAPIError) and not self.db.ping():
                    # The database is down: not the event's fault. Wait, never dead-letter.
                    log.warning("consumer_database_unavailable", group=self.group_id)
                    attempt -= 1
                    self._backoff(stop, 5.0)
                    continue
                log.warning(
                    "consumer_handler_failed",
                    group=self.group_id,
                    event_id=event.id,
                    event_type=event.type,
                    attempt=attempt,
                    error=repr(exc),
                )
                if attempt >= max_attempts:
                    self._dead_letter(msg, exc, attempts=attempt, stop=stop)
                    return
                self._backoff(stop, self.settings.consumer_backoff_seconds * 2 ** (attempt - 1))

    @staticmethod
    def _backoff(stop: threading.Event, seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    def _span(self, event: Event) -> Any:
        """The processing span of ``event``, continuing the trace its producer started."""
        return self._tracer.start_as_current_span(
            f"{event.topic} process",
            context=extract_context(event.trace_carrier()),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": event.topic,
                "messaging.consumer.group.name": self.group_id,
                "messaging.message.id": event.id,
                "messaging.kafka.offset": event.offset if event.offset is not None else -1,
                "cloudevents.event_type": event.type,
            },
        )

    def _handle(self, event: Event, action: Callable[[Session], None]) -> None:
        with self._span(event) as span, self.db.session() as session:
            claimed = session.execute(
                pg_insert(PROCESSED_EVENTS)
                .values(group=self.spec.group, event_id=event.id, processed_at=utcnow())
                .on_conflict_do_nothing()
                .returning(PROCESSED_EVENTS.c.event_id)
            ).first()
            if claimed is None:
                span.set_attribute("mint.duplicate", True)
                log.debug("consumer_duplicate_skipped", group=self.group_id, event_id=event.id)
                return
            action(session)  # an exception is recorded on the span

    # ---- dead letters -----------------------------------------------------------------------

    def _dead_letter(
        self, msg: Message, exc: BaseException, *, attempts: int, stop: threading.Event
    ) -> None:
        """Copy the message to ``<topic>.dlq`` (original headers + ``mint_error``,
        ``mint_attempts``); retried until delivered, as the offset must not move before."""
        topic = catalogue_name(self.settings.kafka_prefix, msg.topic() or "")
        original = header_dict(msg.headers())
        headers: HeaderList = [
            (k, v.encode()) for k, v in original.items() if not k.startswith("mint_")
        ]
        headers += [
            ("mint_error", f"{type(exc).__name__}: {exc}"[:1000].encode()),
            ("mint_attempts", str(attempts).encode()),
            ("mint_group", self.group_id.encode()),
            ("mint_original_partition", str(msg.partition()).encode()),
            ("mint_original_offset", str(msg.offset()).encode()),
        ]
        delay = 0.5
        while True:
            error = self._produce_dlq(self._wire([dlq_topic(topic)])[0], msg, headers)
            if error is None:
                break
            log.warning("consumer_dlq_publish_failed", group=self.group_id, error=error)
            self._backoff(stop, delay)
            delay = min(delay * 2, 10.0)
        CONSUMER_DLQ.labels(self.spec.group, topic).inc()
        log.error(
            "consumer_dead_lettered",
            group=self.group_id,
            topic=topic,
            partition=msg.partition(),
            offset=msg.offset(),
            attempts=attempts,
            error=repr(exc),
        )

    def _produce_dlq(self, topic: str, msg: Message, headers: HeaderList) -> str | None:
        result: list[KafkaError | None] = []
        producer = self._dlq_producer()
        try:
            producer.produce(
                topic,
                value=msg.value(),
                key=msg.key(),
                headers=headers,
                on_delivery=lambda err, _msg: result.append(err),
            )
        except (KafkaException, BufferError) as exc:
            return str(exc)
        producer.flush(15)
        if not result:
            return "delivery not confirmed"
        return None if result[0] is None else str(result[0])

    def _dlq_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {
                    "bootstrap.servers": self.settings.kafka_bootstrap_servers,
                    "client.id": f"{self.group_id}-dlq",
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "message.timeout.ms": 10_000,
                    "log_level": 3,
                }
            )
        return self._producer
