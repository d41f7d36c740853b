"""Transactional outbox: :func:`emit` writes an event in the caller's transaction;
:class:`OutboxRelay` publishes the rows to Kafka with an idempotent producer, in order per key,
setting aside (parking) a row the cluster keeps refusing; :func:`requeue_parked` puts parked
rows back in line (``mint outbox requeue``)."""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import Select, func, insert, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from mint.kit.events.cloudevents import build_headers, encode_data, to_json_data
from mint.kit.events.contract import Contract
from mint.kit.events.tables import OUTBOX
from mint.kit.events.topics import ensure_topics, kafka_name
from mint.kit.telemetry import (
    OUTBOX_BACKLOG,
    OUTBOX_PARKED,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
    OUTBOX_ROWS_PARKED,
    OUTBOX_STUCK,
    extract_context,
    inject_context,
)
from mint.kit.telemetry import tracer as get_tracer
from mint.kit.time import utcnow

if TYPE_CHECKING:
    from mint.kit.config import KitSettings
    from mint.kit.db import Database

log = structlog.get_logger("mint.events.outbox")

# Relays running in this process: a commit that emitted events wakes them at once.
_RELAYS: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()
_EMITTED = "mint_outbox_emitted"  # session.info flag: this transaction wrote outbox rows
# Only one relay per database publishes at a time, which keeps per-key order across replicas.
_RELAY_LOCK_SQL = text("SELECT pg_try_advisory_xact_lock(727275)")


@sa_event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    """After a commit that emitted events, wake this process's relays. One listener for every
    session (a listener added per session costs more than the insert it follows)."""
    if session.info.pop(_EMITTED, False):
        for relay in list(_RELAYS):
            relay.notify()


@sa_event.listens_for(Session, "after_rollback")
def _forget_emitted(session: Session) -> None:
    session.info.pop(_EMITTED, None)


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
    session.info[_EMITTED] = True
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


# Backoff of a row the cluster refused: 1/2 s, doubling, capped at the relay's max backoff.
_ROW_BACKOFF_BASE_SECONDS = 0.5


@dataclass(frozen=True)
class ParkedRow:
    """A row set aside (``mint outbox parked``)."""

    id: uuid.UUID
    topic: str
    key: str
    type: str
    attempts: int
    last_error: str | None
    created_at: datetime
    parked_at: datetime


def _due_rows(limit: int) -> Select[Any]:
    """The oldest unpublished rows whose key has no unpublished row parked or backing off: a
    row never overtakes an older row of its key (the partition key, the user the event is
    about), while the other keys' rows keep flowing."""
    held = OUTBOX.alias("held")
    held_keys = select(held.c.key).where(
        held.c.published_at.is_(None),
        held.c.parked_at.is_not(None) | (held.c.next_attempt_at > func.now()),
    )
    return (
        select(OUTBOX)
        .where(OUTBOX.c.published_at.is_(None), OUTBOX.c.key.not_in(held_keys))
        .order_by(OUTBOX.c.created_at, OUTBOX.c.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def parked_rows(session: Session, *, limit: int = 100) -> list[ParkedRow]:
    """The parked rows, oldest first."""
    rows = session.execute(
        select(
            OUTBOX.c.id,
            OUTBOX.c.topic,
            OUTBOX.c.key,
            OUTBOX.c.type,
            OUTBOX.c.attempts,
            OUTBOX.c.last_error,
            OUTBOX.c.created_at,
            OUTBOX.c.parked_at,
        )
        .where(OUTBOX.c.published_at.is_(None), OUTBOX.c.parked_at.is_not(None))
        .order_by(OUTBOX.c.created_at, OUTBOX.c.seq)
        .limit(limit)
    ).all()
    return [ParkedRow(**row._asdict()) for row in rows]


def requeue_parked(session: Session, ids: Collection[uuid.UUID] | None = None) -> list[uuid.UUID]:
    """Put parked rows (all, or those of ``ids``) back in line, their attempts counted from zero
    again; the relay then publishes them, and the rows of their keys that waited behind them, in
    order. Returns the ids re-queued (an id that is not a parked row is left alone)."""
    stmt = update(OUTBOX).where(OUTBOX.c.published_at.is_(None), OUTBOX.c.parked_at.is_not(None))
    if ids is not None:
        stmt = stmt.where(OUTBOX.c.id.in_(list(ids)))
    requeued = session.execute(
        stmt.values(parked_at=None, next_attempt_at=None, attempts=0).returning(OUTBOX.c.id)
    )
    return list(requeued.scalars())


class OutboxRelay:
    """Publishes unpublished outbox rows, oldest first, and marks the delivered ones.

    Safe with several replicas (``FOR UPDATE SKIP LOCKED`` plus a transaction advisory lock so
    only one replica publishes at a time, preserving order).

    Order per key: a batch goes out in waves of at most one row per key, and a key whose row is
    not delivered drops out of the batch, so a row is published only after every older row of
    its key. Rows of other keys (and other topics) are delivered regardless.

    Failures: a row refused or not confirmed while the cluster answers counts an attempt and is
    retried — on its own, so a row that merely shared a refused record batch gets through —
    after a backoff (1/2 s doubling, capped at ``max_backoff_seconds``) with the later rows of
    its key waiting behind it; after ``outbox_max_attempts`` it is parked — kept, logged
    at ERROR (``outbox_row_parked``), counted (``mint_outbox_parked``), retried only once
    ``mint outbox requeue`` puts it back. When nothing can be delivered and the cluster does not
    answer, that is an outage, not the rows' fault: no attempt counts, the rows stay and the
    relay backs off (bounded); the outage is logged once, and its end once. Rows unpublished
    (and not parked) past ``outbox_stuck_seconds`` are reported: ``mint_outbox_stuck`` and an
    ERROR ``outbox_rows_stuck`` when they appear, repeated every ``outbox_stuck_seconds``.
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
        self._batch_was_full = False
        self._last_observed_at = 0.0
        self._stuck_reported_at: float | None = None
        self._tracer = get_tracer("mint.events")
        self._due = _due_rows(batch_size)  # built once: constructing it costs more than running it
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
                    self.publish_once()
                    self._recovered()
                    if self._batch_was_full:
                        delay = 0.0  # more rows are waiting
                except Exception as exc:
                    delay = self._failed(exc)
                    self.observe()  # rows pile up in an outage: that is when they get stuck
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
                # Woken by a commit: let the commits of concurrent requests land too, so one
                # pass publishes them together instead of one pass (a transaction and a
                # broker round trip) per event.
                stop.wait(self.settings.outbox_linger_seconds)
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
        """Publish up to ``batch_size`` due rows; returns how many were delivered. A row that
        failed while the cluster answers is counted (and parked at the limit); raises when
        nothing could be delivered and the cluster does not answer (an outage: the rows stay,
        no attempt counted)."""
        if self._outage_since is not None:
            self._probe()  # cheap reachability check before producing into a dead cluster
        rows: Sequence[Row[Any]] = []
        delivered: list[uuid.UUID] = []
        failed: dict[uuid.UUID, str] = {}
        parked: list[tuple[Row[Any], str]] = []
        outage = False
        with self.db.session() as session:
            if not session.execute(_RELAY_LOCK_SQL).scalar():
                return 0  # another replica is publishing
            rows = session.execute(self._due).all()
            if rows:
                results = self._publish(rows)
                delivered = [rid for rid, err in results.items() if err is None]
                failed = {rid: err for rid, err in results.items() if err is not None}
                outage = bool(failed) and not delivered and not self._reachable()
                self._mark_delivered(session, rows, delivered)
                if outage:
                    self._note_errors(session, failed)
                else:
                    parked = self._count_failures(session, rows, failed)
        self._batch_was_full = len(rows) >= self.batch_size
        for row, error in parked:  # committed: now say so
            OUTBOX_ROWS_PARKED.labels(row.topic).inc()
            log.error(
                "outbox_row_parked",
                event_id=str(row.id),
                topic=row.topic,
                key=row.key,
                type=row.type,
                attempts=row.attempts + 1,
                error=error,
                requeue=f"mint outbox requeue {self.settings.service_name} --id {row.id}",
            )
        # Gauges every few seconds under load (each reading is a query); at once when rows were
        # parked, which an operator must see.
        self.observe(force=bool(parked))
        if outage:
            raise KafkaException(
                f"{len(failed)} event(s) not delivered and the cluster does not answer: "
                f"{next(iter(failed.values()))}"
            )
        return len(delivered)

    def _publish(self, rows: Sequence[Row[Any]]) -> dict[uuid.UUID, str | None]:
        """Deliver ``rows`` in waves of one row per key; a key whose row failed drops out, so
        its later rows are not tried (absent from the result)."""
        unusable = self._ensure_topics({row.topic for row in rows})
        queues: dict[str, deque[Row[Any]]] = {}
        for row in rows:
            queues.setdefault(row.key, deque()).append(row)
        results: dict[uuid.UUID, str | None] = {}
        while queues:
            wave = [queue.popleft() for queue in queues.values()]
            ready = []
            for row in wave:
                if row.topic in unusable:
                    results[row.id] = unusable[row.topic]
                else:
                    ready.append(row)
            # A row that failed before is produced alone: the broker refuses a whole record
            # batch for one bad message (too large, …), so a poison row would otherwise take
            # down again the rows that happen to share its partition and batch.
            fresh = [row for row in ready if row.attempts == 0]
            suspects = [[row] for row in ready if row.attempts > 0]
            for group in [fresh, *suspects] if fresh else suspects:
                results.update(self._produce(group))
            for row in wave:
                if results[row.id] is not None or not queues[row.key]:
                    del queues[row.key]
        return results

    @staticmethod
    def _mark_delivered(
        session: Session, rows: Sequence[Row[Any]], delivered: list[uuid.UUID]
    ) -> None:
        if not delivered:
            return
        session.execute(
            update(OUTBOX).where(OUTBOX.c.id.in_(delivered)).values(published_at=utcnow())
        )
        done = set(delivered)
        for row in rows:
            if row.id in done:
                OUTBOX_PUBLISHED.labels(row.topic).inc()

    @staticmethod
    def _note_errors(session: Session, failed: Mapping[uuid.UUID, str]) -> None:
        """An outage: the error is kept for the operator, the rows' attempts are not counted."""
        for rid, err in failed.items():
            session.execute(update(OUTBOX).where(OUTBOX.c.id == rid).values(last_error=err[:1000]))

    def _count_failures(
        self, session: Session, rows: Sequence[Row[Any]], failed: Mapping[uuid.UUID, str]
    ) -> list[tuple[Row[Any], str]]:
        """Count an attempt for each failed row: backoff, or parked at the limit (returned)."""
        parked: list[tuple[Row[Any], str]] = []
        for row in rows:
            error = failed.get(row.id)
            if error is None:
                continue
            OUTBOX_PUBLISH_FAILURES.labels(row.topic).inc()
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": error[:1000]}
            if attempts >= self.settings.outbox_max_attempts:
                values.update(parked_at=func.now(), next_attempt_at=None)
                parked.append((row, error))
            else:
                backoff = timedelta(seconds=self._row_backoff(attempts))
                values["next_attempt_at"] = func.now() + backoff
                log.warning(
                    "outbox_row_failed",
                    event_id=str(row.id),
                    topic=row.topic,
                    key=row.key,
                    attempts=attempts,
                    max_attempts=self.settings.outbox_max_attempts,
                    error=error,
                )
            session.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(**values))
        return parked

    def _row_backoff(self, attempts: int) -> float:
        return float(min(self.max_backoff, _ROW_BACKOFF_BASE_SECONDS * 2 ** min(attempts - 1, 10)))

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
                self._produce_one(producer, self._wire(row.topic), row, headers, on_delivery)
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
    def _produce_one(producer: Producer, topic: str, row: Row[Any], headers: Any, cb: Any) -> None:
        for _ in range(50):
            try:
                producer.produce(
                    topic,
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

    def _reachable(self) -> bool:
        """Whether the cluster answers at all (tells a row's failure from an outage)."""
        try:
            self._probe()
        except KafkaException:
            return False
        return True

    def _ensure_topics(self, topics: set[str]) -> dict[str, str]:
        """Create the topics not seen yet, one by one: a topic that cannot be created fails its
        own rows only (returned with the reason). Raises when the cluster does not answer."""
        unusable: dict[str, str] = {}
        for topic in sorted(topics - self._known_topics):
            try:
                ensure_topics(self.settings.kafka_bootstrap_servers, [self._wire(topic)], timeout=5)
            except KafkaException as exc:
                if not self._reachable():
                    raise
                unusable[topic] = f"topic {topic!r} unusable: {exc}"
            else:
                self._known_topics.add(topic)
        return unusable

    def _wire(self, topic: str) -> str:
        return kafka_name(self.settings.kafka_prefix, topic)

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.purge(in_queue=True, in_flight=True, blocking=False)
            producer.poll(0)

    # ---- what an operator watches -----------------------------------------------------------

    def observe(self, *, force: bool = False) -> None:
        """Set the gauges — ``mint_outbox_backlog`` (unpublished), ``mint_outbox_parked``,
        ``mint_outbox_stuck`` (unpublished, not parked, older than ``outbox_stuck_seconds``) —
        and report stuck rows. At most every 5 s unless ``force``; best effort."""
        now = time.monotonic()
        if not force and now - self._last_observed_at < 5:
            return
        self._last_observed_at = now
        stuck_before = utcnow() - timedelta(seconds=self.settings.outbox_stuck_seconds)
        waiting = OUTBOX.c.parked_at.is_(None)
        oldest: Row[Any] | None = None
        try:
            with self.db.session() as session:
                backlog, parked, stuck = session.execute(
                    select(
                        func.count(),
                        func.count().filter(OUTBOX.c.parked_at.is_not(None)),
                        func.count().filter(waiting, OUTBOX.c.created_at < stuck_before),
                    ).where(OUTBOX.c.published_at.is_(None))
                ).one()
                if stuck:
                    oldest = session.execute(
                        select(OUTBOX)
                        .where(OUTBOX.c.published_at.is_(None), waiting)
                        .order_by(OUTBOX.c.created_at, OUTBOX.c.seq)
                        .limit(1)
                    ).first()
        except Exception:  # the metrics are best effort
            log.debug("outbox_metrics_unavailable", exc_info=True)
            return
        OUTBOX_BACKLOG.set(backlog)
        OUTBOX_PARKED.set(parked)
        OUTBOX_STUCK.set(stuck)
        self._report_stuck(stuck, oldest, now)

    def _report_stuck(self, stuck: int, oldest: Row[Any] | None, now: float) -> None:
        threshold = self.settings.outbox_stuck_seconds
        if not stuck:
            if self._stuck_reported_at is not None:
                self._stuck_reported_at = None
                log.info("outbox_rows_unstuck")
            return
        if self._stuck_reported_at is not None and now - self._stuck_reported_at < threshold:
            return  # reported already; said again every threshold while it lasts
        self._stuck_reported_at = now
        log.error(
            "outbox_rows_stuck",
            rows=stuck,
            threshold_seconds=threshold,
            oldest_event_id=str(oldest.id) if oldest else None,
            oldest_topic=oldest.topic if oldest else None,
            oldest_key=oldest.key if oldest else None,
            oldest_age_seconds=(
                round((utcnow() - oldest.created_at).total_seconds(), 1) if oldest else None
            ),
        )

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(5)
