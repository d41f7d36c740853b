"""Transactional outbox: :func:`emit` writes an event in the caller's transaction;
:class:`OutboxRelay` publishes the rows to Kafka with an idempotent producer."""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from mint.kit.events.cloudevents import build_headers, encode_data, to_json_data
from mint.kit.events.contract import Contract
from mint.kit.events.tables import OUTBOX
from mint.kit.events.topics import ensure_topics
from mint.kit.telemetry import OUTBOX_BACKLOG, OUTBOX_PUBLISHED, extract_context, inject_context
from mint.kit.telemetry import tracer as get_tracer
from mint.kit.time import utcnow

if TYPE_CHECKING:
    from mint.kit.config import KitSettings
    from mint.kit.db import Database

log = structlog.get_logger("mint.events.outbox")

# Relays running in this process: a commit that emitted events wakes them at once.
_RELAYS: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()
_HOOK_FLAG = "mint_outbox_wake_hook"
# Only one relay per database publishes at a time, which keeps per-key order across replicas.
_RELAY_LOCK_SQL = text("SELECT pg_try_advisory_xact_lock(727275)")


def _wake_relays(_: Session) -> None:
    for relay in list(_RELAYS):
        relay.notify()


def emit(
    session: Session,
    event: Contract,
    *,
    actor: str | uuid.UUID,
    key: str | uuid.UUID | None = None,
    subject: str | uuid.UUID | None = None,
) -> str:
    """Write ``event`` (a model of :mod:`mint.contracts`) to the outbox in ``session``'s
    transaction and return its id (``ce_id``). Topic, type, source, partition key and subject
    come from the contract; ``key`` / ``subject`` override them where the contract cannot know
    (rare). Nothing is published unless the transaction commits."""
    return emit_untyped(
        session,
        topic=event.TOPIC,
        type=event.TYPE,
        subject=subject if subject is not None else event.subject(),
        data=event.to_data(),
        key=key if key is not None else event.key(),
        actor=actor,
        source=event.SOURCE,
    )


def emit_untyped(
    session: Session,
    *,
    topic: str,
    type: str,
    subject: str | uuid.UUID,
    data: Mapping[str, Any],
    key: str | uuid.UUID,
    actor: str | uuid.UUID,
    source: str,
) -> str:
    """The outbox primitive under :func:`emit`, for events without a contract (the kit's own
    tests of the machinery). Services emit contracts.

    Nothing is published unless the transaction commits. The current trace context is stored
    with the row so the relay's publish span (and every consumer) continues this trace.
    ``data`` goes through :func:`to_json_data` (UUIDs, datetimes, ... become JSON strings).
    """
    if not topic or not type or not source:
        raise ValueError("emit needs a topic, a type and a source")
    payload = to_json_data(data)
    if not isinstance(payload, dict):
        raise TypeError("event data must be a JSON object (a mapping)")
    event_id = uuid.uuid4()
    session.execute(
        insert(OUTBOX).values(
            id=event_id,
            topic=topic,
            key=str(key),
            type=type,
            source=source,
            subject=str(subject),
            actor=str(actor),
            data=payload,
            headers=inject_context({}),
            created_at=utcnow(),
        )
    )
    if not session.info.get(_HOOK_FLAG):
        session.info[_HOOK_FLAG] = True
        sa_event.listen(session, "after_commit", _wake_relays)
    return str(event_id)


class _Batch:
    """Delivery bookkeeping for one produced batch."""

    def __init__(self) -> None:
        self.results: dict[uuid.UUID, str | None] = {}
        self.spans: dict[uuid.UUID, trace.Span] = {}
        self.fatal = False

    def delivered(self, row_id: uuid.UUID, err: KafkaError | None, msg: Message | None) -> None:
        if row_id in self.results:
            return
        self.results[row_id] = None if err is None else str(err)
        span = self.spans.pop(row_id, None)
        if err is not None and err.fatal():
            self.fatal = True
        if span is not None:
            if err is None and msg is not None:
                span.set_attribute("messaging.destination.partition.id", str(msg.partition()))
                span.set_attribute("messaging.kafka.offset", msg.offset() or 0)
            elif err is not None:
                span.set_status(Status(StatusCode.ERROR, str(err)))
            span.end()


class OutboxRelay:
    """Publishes unpublished outbox rows, oldest first, and marks the delivered ones.

    Safe with several replicas (``FOR UPDATE SKIP LOCKED`` plus a transaction advisory lock so
    only one replica publishes at a time, preserving order). While Kafka is unreachable the rows
    stay and are retried with bounded backoff; the outage is logged once, and its end once.
    """

    def __init__(
        self,
        db: Database,
        settings: KitSettings,
        *,
        batch_size: int = 500,
        max_backoff_seconds: float = 10.0,
        message_timeout_ms: int = 10_000,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.batch_size = batch_size
        self.max_backoff = max_backoff_seconds
        self._message_timeout_ms = message_timeout_ms
        self._extra_config = dict(producer_config or {})
        self._producer: Producer | None = None
        self._known_topics: set[str] = set()
        self._wake = threading.Event()
        self._failures = 0
        self._outage_since: float | None = None
        self._last_backlog_at = 0.0
        self._tracer = get_tracer("mint.events")
        _RELAYS.add(self)

    # ---- loop -------------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake the relay now (called automatically after a commit that emitted events)."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        log.info("outbox_relay_started", bootstrap=self.settings.kafka_bootstrap_servers)
        try:
            while not stop.is_set():
                self._wake.clear()
                delay = self.settings.outbox_poll_seconds
                try:
                    published = self.publish_once()
                    self._recovered()
                    if published >= self.batch_size:
                        delay = 0.0  # more rows are waiting
                except Exception as exc:
                    delay = self._failed(exc)
                self._sleep(stop, delay, wakeable=self._outage_since is None)
        finally:
            self.close()
            log.info("outbox_relay_stopped")

    def _sleep(self, stop: threading.Event, delay: float, *, wakeable: bool) -> None:
        deadline = time.monotonic() + delay
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if wakeable and self._wake.wait(min(remaining, 0.25)):
                return
            if not wakeable:
                stop.wait(min(remaining, 0.25))

    def _failed(self, exc: Exception) -> float:
        self._failures += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("outbox_publish_failing", error=str(exc), error_type=type(exc).__name__)
        return float(min(self.max_backoff, 0.5 * 2 ** min(self._failures - 1, 10)))

    def _recovered(self) -> None:
        if self._outage_since is not None:
            down = time.monotonic() - self._outage_since
            log.info("outbox_publish_recovered", outage_seconds=round(down, 1))
        self._failures = 0
        self._outage_since = None

    # ---- one batch --------------------------------------------------------------------------

    def publish_once(self) -> int:
        """Publish up to ``batch_size`` rows; returns how many were published. Raises when some
        rows could not be delivered (they stay unpublished)."""
        if self._outage_since is not None:
            self._probe()  # cheap reachability check before producing into a dead cluster
        published = 0
        failed: dict[uuid.UUID, str] = {}
        with self.db.session() as session:
            if not session.execute(_RELAY_LOCK_SQL).scalar():
                return 0  # another replica is publishing
            rows = session.execute(
                select(OUTBOX)
                .where(OUTBOX.c.published_at.is_(None))
                .order_by(OUTBOX.c.created_at, OUTBOX.c.seq)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                self._ensure_topics({row.topic for row in rows})
                results = self._produce(rows)
                ok = [rid for rid, err in results.items() if err is None]
                failed = {rid: err for rid, err in results.items() if err is not None}
                if ok:
                    session.execute(
                        update(OUTBOX).where(OUTBOX.c.id.in_(ok)).values(published_at=utcnow())
                    )
                    for row in rows:
                        if row.id in results and results[row.id] is None:
                            OUTBOX_PUBLISHED.labels(row.topic).inc()
                    published = len(ok)
                for rid, err in failed.items():
                    session.execute(
                        update(OUTBOX)
                        .where(OUTBOX.c.id == rid)
                        .values(attempts=OUTBOX.c.attempts + 1, last_error=err[:1000])
                    )
        self._update_backlog(force=bool(rows))
        if failed:
            raise KafkaException(
                f"{len(failed)} event(s) not delivered: {next(iter(failed.values()))}"
            )
        return published

    def _produce(self, rows: Sequence[Row[Any]]) -> dict[uuid.UUID, str | None]:
        producer = self._get_producer()
        batch = _Batch()
        for row in rows:
            span = self._tracer.start_span(
                f"{row.topic} publish",
                context=extract_context(dict(row.headers or {})),
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "publish",
                    "messaging.destination.name": row.topic,
                    "messaging.message.id": str(row.id),
                    "messaging.kafka.message.key": row.key,
                    "cloudevents.event_type": row.type,
                },
            )
            batch.spans[row.id] = span
            with trace.use_span(span, end_on_exit=False):
                carrier = inject_context({})
            headers = build_headers(
                id=str(row.id),
                type=row.type,
                source=row.source,
                subject=row.subject,
                actor=row.actor,
                time=row.created_at,
                trace_headers=carrier,
            )

            def on_delivery(
                err: KafkaError | None, msg: Message | None, _rid: uuid.UUID = row.id
            ) -> None:
                batch.delivered(_rid, err, msg)

            try:
                self._produce_one(producer, row, headers, on_delivery)
            except (KafkaException, BufferError) as exc:
                batch.results[row.id] = str(exc)
                failed_span = batch.spans.pop(row.id)
                failed_span.set_status(Status(StatusCode.ERROR, str(exc)))
                failed_span.end()
        remaining = producer.flush(self._message_timeout_ms / 1000 + 5)
        if remaining:
            producer.purge(in_queue=True, in_flight=False, blocking=True)
            producer.poll(0)
        for rid in [r.id for r in rows if r.id not in batch.results]:
            batch.results[rid] = "delivery not confirmed"
            pending = batch.spans.pop(rid, None)
            if pending is not None:
                pending.set_status(Status(StatusCode.ERROR, "delivery not confirmed"))
                pending.end()
        if batch.fatal:
            self._discard_producer()
        return batch.results

    @staticmethod
    def _produce_one(producer: Producer, row: Row[Any], headers: Any, cb: Any) -> None:
        for _ in range(50):
            try:
                producer.produce(
                    row.topic,
                    value=encode_data(row.data),
                    key=row.key.encode("utf-8"),
                    headers=headers,
                    on_delivery=cb,
                )
                return
            except BufferError:
                producer.poll(0.1)  # local queue full: serve delivery reports, then retry
        raise BufferError("producer queue stays full")

    # ---- Kafka plumbing ---------------------------------------------------------------------

    def _get_producer(self) -> Producer:
        if self._producer is None:
            config: dict[str, Any] = {
                "bootstrap.servers": self.settings.kafka_bootstrap_servers,
                "client.id": f"mint-{self.settings.service_name}-outbox",
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": self._message_timeout_ms,
                "log_level": 0,  # librdkafka's own log is noisy during outages; see error_cb
                "error_cb": self._on_kafka_error,
            }
            config.update(self._extra_config)
            self._producer = Producer(config)
        return self._producer

    def _on_kafka_error(self, err: KafkaError) -> None:
        if err.fatal():
            log.error("outbox_producer_fatal", error=str(err))
        else:
            log.debug("outbox_producer_error", error=str(err))

    def _probe(self) -> None:
        self._get_producer().list_topics(timeout=3)

    def _ensure_topics(self, topics: set[str]) -> None:
        new = topics - self._known_topics
        if new:
            ensure_topics(self.settings.kafka_bootstrap_servers, sorted(new), timeout=5)
            self._known_topics |= new

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.purge(in_queue=True, in_flight=True, blocking=False)
            producer.poll(0)

    def _update_backlog(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_backlog_at < 5:
            return
        self._last_backlog_at = now
        try:
            with self.db.session() as session:
                count = session.execute(
                    select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
                ).scalar_one()
            OUTBOX_BACKLOG.set(count)
        except Exception:  # the metric is best effort
            log.debug("outbox_backlog_unavailable", exc_info=True)

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(5)
