"""mint.kit.events against real PostgreSQL and Kafka: outbox → relay → idempotent consumer → DLQ."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, String, Table, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from mint.contracts.auth import UserFrozen, UserRegistered
from mint.infra import EmbeddedInfra, InfraEndpoints
from mint.kit.config import KitSettings
from mint.kit.db import Database, service_metadata
from mint.kit.events import (
    OUTBOX,
    PROCESSED_EVENTS,
    ConsumerRunner,
    ConsumerSpec,
    Event,
    OutboxRelay,
    add_event_tables,
    build_headers,
    emit,
    emit_untyped,
    ensure_topics,
    on,
)
from mint.kit.service import Service, ServiceContext
from mint.kit.telemetry import configure_tracing, tracer

METADATA = service_metadata()
add_event_tables(METADATA)
WIDGETS = Table(
    "widgets",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("name", String(64), nullable=False),
)
SERVICE = Service(name="evtest", prefix=None, metadata=METADATA)


@pytest.fixture(scope="module")
def database(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    url = embedded_infra.create_database(f"events_{uuid.uuid4().hex[:8]}")
    db = Database(url)
    METADATA.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = configure_tracing("evtest", recorded=True)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def make_ctx(database: Database, bootstrap: str) -> ServiceContext:
    settings = KitSettings(
        service_name="evtest",
        environment="test",
        database_url=database.url,
        kafka_bootstrap_servers=bootstrap,
        outbox_poll_seconds=0.1,
        consumer_max_attempts=3,
        consumer_backoff_seconds=0.05,
    )
    return ServiceContext(service=SERVICE, settings=settings, db=database)


@pytest.fixture
def ctx(database: Database, infra: InfraEndpoints) -> ServiceContext:
    return make_ctx(database, infra.kafka_bootstrap)


@pytest.fixture
def topic() -> str:
    return f"evtest{uuid.uuid4().hex[:10]}.events"


@dataclass
class Recorder:
    """The test handler: inserts a widget per event; ``widget.poison`` always fails."""

    calls: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, session: Session, event: Event) -> None:
        with self.lock:
            self.calls.append(event)
        if event.type == "widget.poison":
            raise RuntimeError("poisoned widget")
        session.execute(insert(WIDGETS).values(event_id=event.id, name=event.data["name"]))

    def ids(self) -> list[str]:
        with self.lock:
            return [e.id for e in self.calls]


def relay_of(ctx: ServiceContext, **options: Any) -> OutboxRelay:
    return OutboxRelay(ctx.database(), ctx.settings, **options)


def consumer(ctx: ServiceContext, group: str, topic: str, handler: Recorder) -> ConsumerRunner:
    spec = ConsumerSpec(group, topics=[topic], handler=handler)
    return ConsumerRunner(spec, db=ctx.database(), settings=ctx.settings, service="evtest")


@contextmanager
def running(*bodies: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    stop = threading.Event()
    threads = [threading.Thread(target=b, args=(stop,), daemon=True) for b in bodies]
    for t in threads:
        t.start()
    try:
        yield stop
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "worker did not stop"


def wait_until(check: Callable[[], bool], timeout: float = 45.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def widget_count(db: Database, event_id: str | None = None) -> int:
    query = select(func.count()).select_from(WIDGETS)
    if event_id is not None:
        query = query.where(WIDGETS.c.event_id == event_id)
    with db.session() as s:
        return int(s.execute(query).scalar_one())


def unpublished(db: Database, ids: list[str]) -> int:
    with db.session() as s:
        query = select(func.count()).select_from(OUTBOX)
        query = query.where(OUTBOX.c.id.in_([uuid.UUID(i) for i in ids]))
        return int(s.execute(query.where(OUTBOX.c.published_at.is_(None))).scalar_one())


def emit_widget(s: Session, topic: str, name: str, type: str = "widget.created") -> str:
    return emit_untyped(
        s,
        topic=topic,
        type=type,
        subject=name,
        data={"name": name, "at": uuid.uuid4()},
        key="user-1",
        actor="system",
        source="evtest",
    )


def publish_raw(
    bootstrap: str,
    topic: str,
    event_id: str,
    type: str,
    name: str,
    extra_headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Produce a CloudEvent directly (bypassing the outbox), as a redelivery would."""
    producer = Producer({"bootstrap.servers": bootstrap})
    headers = build_headers(
        id=event_id,
        type=type,
        source="evtest",
        subject=name,
        actor="system",
        time=datetime.now(UTC),
    )
    sent = [*headers, *(extra_headers or [])]
    producer.produce(topic, json.dumps({"name": name}).encode(), b"user-1", headers=sent)
    assert producer.flush(15) == 0


def read_to_end(bootstrap: str, topic: str, timeout: float = 20) -> list[Any]:
    """Every message of ``topic`` from its start to its end as it is now (each partition's high
    watermark when asked): a duplicate already written is in the list, none is waited for."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}", "log_level": 3}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []  # no such topic (yet): nothing written to it
        parts = meta.partitions
        ends: dict[int, int] = {}
        starts = []
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        consumer.assign(starts)
        got: list[Any] = []
        deadline = time.monotonic() + timeout  # only catches a broker that stops answering
        while ends:
            assert time.monotonic() < deadline, f"{topic} not read to its end: {ends}"
            msg = consumer.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            got.append(msg)
            partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            if partition in ends and offset + 1 >= ends[partition]:
                del ends[partition]
        return got
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 20) -> list[Any]:
    """The whole of ``topic`` once it holds at least ``expect`` messages (anything beyond
    ``expect`` — a duplicate — is returned too, since the topic is read to its end)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wait_until(lambda: topic in admin.list_topics(timeout=10).topics, what=f"topic {topic}")
    found: list[Any] = []

    def enough() -> bool:
        found[:] = read_to_end(bootstrap, topic)
        return len(found) >= expect

    wait_until(enough, timeout, what=f"{expect} message(s) on {topic}")
    return found


def caught_up(bootstrap: str, group_id: str, topic: str) -> bool:
    """Whether the consumer group has committed every message ``topic`` holds: there is
    nothing left for it to deliver."""
    probe = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,  # reads the group's offsets; never joins it
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        parts = probe.list_topics(topic, timeout=10).topics[topic].partitions
        committed = probe.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        for tp in committed:
            low, high = probe.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
            if high > low and tp.offset < high:  # no commit yet is a negative offset
                return False
        return True
    finally:
        probe.close()


def test_committed_event_is_published_and_consumed_once(
    ctx: ServiceContext, topic: str, infra: InfraEndpoints
) -> None:
    rec = Recorder()
    relay, runner = relay_of(ctx), consumer(ctx, "main", topic, rec)
    db = ctx.database()
    with db.session() as s:
        event_id = emit_widget(s, topic, "first")
    with running(relay.run, runner.run):
        wait_until(lambda: widget_count(db, event_id) == 1, what="the event's effect")
        # quiescent: the row is published (the relay will not send it again) and the group
        # has committed all the topic holds (nothing left to deliver, a duplicate included)
        wait_until(lambda: unpublished(db, [event_id]) == 0, what="the row marked published")
        wait_until(
            lambda: caught_up(infra.kafka_bootstrap, runner.group_id, topic),
            what="the consumer at the end of the topic",
        )
    assert widget_count(db, event_id) == 1
    assert rec.ids() == [event_id]
    # counted as processed, once, and nothing failed or went to the dead-letter topic
    labels = {"group": "main", "topic": topic}
    assert REGISTRY.get_sample_value("mint_consumer_processed_total", labels) == 1
    assert not REGISTRY.get_sample_value("mint_consumer_failed_total", labels)
    assert read_to_end(infra.kafka_bootstrap, f"{topic}.dlq", timeout=2) == []
    with db.session() as s:
        row = s.execute(select(OUTBOX).where(OUTBOX.c.id == uuid.UUID(event_id))).one()
        assert row.published_at is not None
        done = select(PROCESSED_EVENTS.c.group).where(PROCESSED_EVENTS.c.event_id == event_id)
        assert s.execute(done).scalars().all() == ["main"]
    (msg,) = read_all(infra.kafka_bootstrap, topic, expect=1)
    assert msg.key() == b"user-1"
    headers = dict(msg.headers())
    for name in ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject"):
        assert name in headers
    assert headers["ce_actor"] == b"system"
    assert headers["content-type"] == b"application/json"
    assert json.loads(msg.value())["name"] == "first"


def test_rolled_back_event_is_never_published(ctx: ServiceContext, topic: str) -> None:
    rec = Recorder()
    db = ctx.database()
    lost: list[str] = []
    with pytest.raises(RuntimeError), db.session() as s:
        lost.append(emit_widget(s, topic, "ghost"))
        raise RuntimeError("business rule failed")
    with db.session() as s:
        marker = emit_widget(s, topic, "marker")
    relay, runner = relay_of(ctx), consumer(ctx, "main", topic, rec)
    with running(relay.run, runner.run):
        wait_until(lambda: marker in rec.ids(), what="the marker event")
    assert rec.ids() == [marker]
    with db.session() as s:
        assert s.execute(select(OUTBOX).where(OUTBOX.c.id == uuid.UUID(lost[0]))).first() is None


def test_redelivered_message_has_one_effect(
    ctx: ServiceContext, topic: str, infra: InfraEndpoints
) -> None:
    rec = Recorder()
    db = ctx.database()
    event_id = str(uuid.uuid4())
    ensure_topics(infra.kafka_bootstrap, [topic])
    publish_raw(infra.kafka_bootstrap, topic, event_id, "widget.created", "twice")
    publish_raw(infra.kafka_bootstrap, topic, event_id, "widget.created", "twice")
    marker = str(uuid.uuid4())
    publish_raw(infra.kafka_bootstrap, topic, marker, "widget.created", "marker")
    runner = consumer(ctx, "dedup", topic, rec)
    with running(runner.run):
        wait_until(lambda: widget_count(db, marker) == 1, what="the marker")
    assert widget_count(db, event_id) == 1
    assert rec.ids() == [event_id, marker]  # the duplicate never reached the handler
    # Another group of the same service has its own processed set: it sees the event too.
    other = Recorder()
    with running(consumer(ctx, "other", topic, other).run):
        wait_until(lambda: marker in other.ids(), what="the other group")
    assert other.ids() == [event_id, marker]


def test_failing_event_goes_to_dlq_and_the_next_is_processed(
    ctx: ServiceContext, topic: str, infra: InfraEndpoints
) -> None:
    rec = Recorder()
    db = ctx.database()
    with db.session() as s:
        poison = emit_widget(s, topic, "bad", type="widget.poison")
    with db.session() as s:
        good = emit_widget(s, topic, "good")
    relay, runner = relay_of(ctx), consumer(ctx, "dlq", topic, rec)
    with running(relay.run, runner.run):
        wait_until(lambda: widget_count(db, good) == 1, what="the event after the poison")
    assert rec.ids().count(poison) == ctx.settings.consumer_max_attempts
    with db.session() as s:
        ids = s.execute(
            select(PROCESSED_EVENTS.c.event_id).where(PROCESSED_EVENTS.c.group == "dlq")
        )
        assert set(ids.scalars()) == {good}
    (dead,) = read_all(infra.kafka_bootstrap, f"{topic}.dlq", expect=1)
    headers = dict(dead.headers())
    assert headers["ce_id"] == poison.encode()
    assert headers["ce_type"] == b"widget.poison"
    assert headers["mint_attempts"] == b"3"
    assert b"poisoned widget" in headers["mint_error"]
    assert json.loads(dead.value())["name"] == "bad"
    assert dead.key() == b"user-1"


def publish_many(bootstrap: str, topic: str, kinds: list[str]) -> list[str]:
    """One message per kind (``widget.created`` / ``widget.poison``) in one producer flush."""
    producer = Producer({"bootstrap.servers": bootstrap})
    ids = []
    for n, kind in enumerate(kinds):
        event_id = str(uuid.uuid4())
        headers = build_headers(
            id=event_id, type=kind, source="evtest", subject=f"w{n}", actor="system",
            time=datetime.now(UTC),
        )  # fmt: skip
        producer.produce(topic, json.dumps({"name": f"w{n}"}).encode(), b"user-1", headers=headers)
        ids.append(event_id)
    assert producer.flush(15) == 0
    return ids


def test_a_backlog_is_handled_in_batches_each_event_once(
    ctx: ServiceContext, topic: str, infra: InfraEndpoints
) -> None:
    """Twenty events waiting when the consumer starts: far fewer database transactions than
    events (one per polled batch), each event's effect once, in the partition's order."""
    rec, db = Recorder(), ctx.database()
    ensure_topics(infra.kafka_bootstrap, [topic])
    ids = publish_many(infra.kafka_bootstrap, topic, ["widget.created"] * 20)
    commits: list[str] = []  # by the consumer's thread (the test's own reads commit too)

    def listener(*_: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            commits.append(threading.current_thread().name)

    sa_event.listen(db.engine, "commit", listener)
    try:
        with running(consumer(ctx, "batched", topic, rec).run):
            wait_until(lambda: all(widget_count(db, i) == 1 for i in ids), what="the backlog")
    finally:
        sa_event.remove(db.engine, "commit", listener)
    assert rec.ids() == ids
    # one per event without batches (20); how the backlog splits over polls depends on the
    # client's fetches, so the bound leaves room for a few
    assert len(commits) <= 10, commits


def test_a_failing_event_in_a_batch_is_retried_alone_and_the_others_apply_once(
    ctx: ServiceContext, topic: str, infra: InfraEndpoints
) -> None:
    """A poisoned event in the middle of a batch: the batch is rolled back and handled one by
    one — the poison attempted exactly ``consumer_max_attempts`` times (its try in the batch
    counted) and dead-lettered, every other event applied once, in order."""
    rec, db = Recorder(), ctx.database()
    ensure_topics(infra.kafka_bootstrap, [topic])
    kinds = ["widget.created"] * 3 + ["widget.poison"] + ["widget.created"] * 3
    ids = publish_many(infra.kafka_bootstrap, topic, kinds)
    poison, good = ids[3], ids[:3] + ids[4:]
    with running(consumer(ctx, "batch-poison", topic, rec).run):
        wait_until(lambda: widget_count(db, good[-1]) == 1, what="the events after the poison")
    assert [widget_count(db, i) for i in good] == [1] * len(good)
    assert rec.ids().count(poison) == ctx.settings.consumer_max_attempts
    with db.session() as s:
        done = s.execute(
            select(PROCESSED_EVENTS.c.event_id).where(PROCESSED_EVENTS.c.group == "batch-poison")
        )
        assert set(done.scalars()) == set(good)
    (dead,) = read_all(infra.kafka_bootstrap, f"{topic}.dlq", expect=1)
    assert dict(dead.headers())["ce_id"] == poison.encode()
    # the last successful call of each good event is in the published order
    last_calls = [i for i in dict.fromkeys(reversed(rec.ids())) if i in good][::-1]
    assert last_calls == good


def test_a_replayed_dead_letter_failing_again_carries_only_its_new_dlq_headers(
    ctx: ServiceContext, topic: str, infra: InfraEndpoints
) -> None:
    """A message put back from the DLQ carries the DLQ's own headers; dead-lettered again, it
    gets fresh ones — never two ``mint_attempts`` (or a stale group) to confuse an operator."""
    rec = Recorder()
    db = ctx.database()
    event_id, marker = str(uuid.uuid4()), str(uuid.uuid4())
    ensure_topics(infra.kafka_bootstrap, [topic])
    stale = [
        ("mint_error", b"RuntimeError: an older failure"),
        ("mint_attempts", b"7"),
        ("mint_group", b"someone-else"),
    ]
    publish_raw(infra.kafka_bootstrap, topic, event_id, "widget.poison", "again", stale)
    publish_raw(infra.kafka_bootstrap, topic, marker, "widget.created", "after")
    runner = consumer(ctx, "replay", topic, rec)
    with running(runner.run):
        wait_until(lambda: widget_count(db, marker) == 1, what="the event after the poison")
    (dead,) = read_all(infra.kafka_bootstrap, f"{topic}.dlq", expect=1)
    names = [name for name, _ in dead.headers()]
    assert names.count("mint_attempts") == names.count("mint_group") == 1, names
    headers = dict(dead.headers())
    assert headers["mint_attempts"] == str(ctx.settings.consumer_max_attempts).encode()
    assert headers["mint_group"] == runner.group_id.encode()
    assert b"poisoned widget" in headers["mint_error"]


def count_failures(relay: OutboxRelay) -> Callable[[], int]:
    """Count the relay's polls that fail (its ``publish_once`` raising); returns the count."""
    failures = [0]
    publish_once = relay.publish_once

    def counted() -> int:
        try:
            return publish_once()
        except Exception:
            failures[0] += 1
            raise

    relay.publish_once = counted  # type: ignore[method-assign]
    return lambda: failures[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_events_survive_a_kafka_outage(
    ctx: ServiceContext, database: Database, topic: str, infra: InfraEndpoints
) -> None:
    down = make_ctx(database, f"127.0.0.1:{_closed_port()}")
    ids: list[str] = []
    with database.session() as s:
        ids += [emit_widget(s, topic, f"w{i}") for i in range(10)]
    dead_relay = relay_of(down, max_backoff_seconds=0.5)
    failed_polls = count_failures(dead_relay)
    with capture_logs() as logs, running(dead_relay.run):
        for i in range(10, 20):  # more events while "Kafka is down"
            with database.session() as s:
                ids.append(emit_widget(s, topic, f"w{i}"))
        # several polls failed (each after the 20 rows were there): enough to see that the
        # outage is logged once and no row moves
        wait_until(lambda: failed_polls() >= 3, 60, what="three failed polls of the relay")
    failing = [e for e in logs if e["event"] == "outbox_publish_failing"]
    assert len(failing) == 1, "an outage is logged once, not once per poll"
    assert unpublished(database, ids) == 20
    # Kafka going away between topic check and delivery: the produce times out, rows stay.
    late = relay_of(down, message_timeout_ms=1500)
    late._known_topics.add(topic)  # skip the topic check, so the messages really are produced
    with pytest.raises(KafkaException, match="not delivered and the cluster does not answer"):
        late.publish_once()
    late.close()
    with database.session() as s:
        rows = s.execute(select(OUTBOX).where(OUTBOX.c.id.in_([uuid.UUID(i) for i in ids]))).all()
    # An outage is not the rows' fault: no attempt counts toward parking. Only the key's first
    # row was tried (the others wait behind it); it keeps the error for the operator.
    assert {(r.attempts, r.parked_at, r.published_at) for r in rows} == {(0, None, None)}
    assert [str(r.id) for r in rows if r.last_error] == [ids[0]]
    rec = Recorder()
    relay, runner = relay_of(ctx), consumer(ctx, "outage", topic, rec)
    with running(relay.run, runner.run):
        wait_until(lambda: set(ids) <= set(rec.ids()), what="all 20 events")
    assert sorted(rec.ids()) == sorted(ids)
    assert [e.data["name"] for e in rec.calls] == [f"w{i}" for i in range(20)]  # same key: order


def test_two_relays_publish_each_event_once(
    database: Database, topic: str, infra: InfraEndpoints
) -> None:
    ids: list[str] = []
    for batch in range(10):
        with database.session() as s:
            ids += [emit_widget(s, topic, f"r{batch}-{i}") for i in range(10)]
    relays = [relay_of(make_ctx(database, infra.kafka_bootstrap)) for _ in range(2)]
    with running(*(r.run for r in relays)):
        wait_until(lambda: unpublished(database, ids) == 0, what="all rows published")
    msgs = read_all(infra.kafka_bootstrap, topic, expect=100)
    got = [dict(m.headers())["ce_id"].decode() for m in msgs]
    assert sorted(got) == sorted(ids)  # every event, none twice


def test_trace_continues_from_emitter_through_consumer(
    ctx: ServiceContext, topic: str, spans: InMemorySpanExporter
) -> None:
    rec = Recorder()
    db = ctx.database()
    with tracer("test").start_as_current_span("http POST /widgets") as root, db.session() as s:
        event_id = emit_widget(s, topic, "traced")
    trace_id = root.get_span_context().trace_id
    relay, runner = relay_of(ctx), consumer(ctx, "traced", topic, rec)
    with running(relay.run, runner.run):
        wait_until(lambda: widget_count(db, event_id) == 1, what="the traced event")
    (event,) = rec.calls
    assert event.traceparent is not None
    assert event.traceparent.split("-")[1] == format(trace_id, "032x")

    def named(suffix: str) -> ReadableSpan:
        found = [
            sp
            for sp in spans.get_finished_spans()
            if sp.name == f"{topic} {suffix}" and sp.context.trace_id == trace_id
        ]
        assert len(found) == 1, f"{suffix}: {found}"
        return found[0]

    wait_until(lambda: any(sp.name == f"{topic} process" for sp in spans.get_finished_spans()))
    publish, process = named("publish"), named("process")
    assert publish.kind == trace.SpanKind.PRODUCER
    assert publish.parent is not None and publish.parent.span_id == root.get_span_context().span_id
    assert process.kind == trace.SpanKind.CONSUMER
    assert process.parent is not None and process.parent.span_id == publish.context.span_id


def test_contract_routes_decode_ignore_and_dead_letter(
    ctx: ServiceContext, infra: InfraEndpoints
) -> None:
    """A consumer declared with ``on(Contract, handler)`` gets the event's data as its model;
    other types of the topic are ignored (never recorded as processed); data that does not
    fit the contract goes straight to the DLQ, without retries."""
    got: list[tuple[UserRegistered, Event]] = []
    mine = uuid.uuid4()

    def registered(session: Session, data: UserRegistered, event: Event) -> None:
        if data.user_id == mine or data.email.startswith(f"bad-{mine}"):
            got.append((data, event))

    db = ctx.database()
    with db.session() as s:
        good = emit(s, UserRegistered(user_id=mine, email="a@example.com", name="A"), actor=mine)
        frozen = emit(s, UserFrozen(user_id=mine, reason="test"), actor="admin")
    bad_id = str(uuid.uuid4())
    producer = Producer({"bootstrap.servers": infra.kafka_bootstrap})
    headers = build_headers(
        id=bad_id, type="auth.user_registered", source="auth", subject=str(mine),
        actor="system", time=datetime.now(UTC),
    )  # fmt: skip
    ensure_topics(infra.kafka_bootstrap, ["auth.events"])
    producer.produce(
        "auth.events", json.dumps({"user_id": "not-a-uuid"}).encode(), str(mine).encode(),
        headers=list(headers),
    )  # fmt: skip
    assert producer.flush(15) == 0
    spec = ConsumerSpec(f"typed-{mine.hex[:8]}", routes=[on(UserRegistered, registered)])
    assert spec.subscribed == ["auth.events"]
    runner = ConsumerRunner(spec, db=db, settings=ctx.settings, service="evtest")
    with running(relay_of(ctx).run, runner.run):
        wait_until(lambda: len(got) == 1, what="the typed event")

        def ours() -> list[Any]:
            return [
                m
                for m in read_to_end(infra.kafka_bootstrap, "auth.events.dlq")
                # other groups reading auth.events in this session dead-letter it too
                if dict(m.headers()).get("ce_id") == bad_id.encode()
                and dict(m.headers()).get("mint_group") == runner.group_id.encode()
            ]

        wait_until(lambda: bool(ours()), what="the malformed event's dead letter")
        dead = ours()
    (data, event), (letter,) = got[0], dead
    assert isinstance(data, UserRegistered) and data.email == "a@example.com"
    assert event.id == good and event.actor == str(mine)
    assert dict(letter.headers())["mint_attempts"] == b"1"
    with db.session() as s:
        done = s.execute(
            select(PROCESSED_EVENTS.c.event_id).where(PROCESSED_EVENTS.c.group == spec.group)
        )
        processed = set(done.scalars())  # auth.events is shared: others' registrations too
    assert good in processed and bad_id not in processed
    assert frozen not in processed  # a type no route takes is ignored, not processed
