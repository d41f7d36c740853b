"""The outbox relay against real PostgreSQL and Kafka when rows cannot be published: a row the
cluster keeps refusing is parked (kept, counted, logged) while other keys' rows flow, the later
rows of its key wait behind it, ``mint outbox requeue`` puts it back; stuck rows are reported.

Deterministic poison with a real broker: a topic created with a 2 KiB ``max.message.bytes`` and
a 10 KB row (refused by the broker, asynchronously, after the producer sent it), and a topic
name the broker refuses to create (refused before anything is produced)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.engine import Row
from structlog.testing import capture_logs
from typer.testing import CliRunner

from mint.cli import app as mint_cli
from mint.infra import EmbeddedInfra, InfraEndpoints
from mint.kit.config import KitSettings
from mint.kit.db import Database, service_metadata
from mint.kit.events import OUTBOX, OutboxRelay, add_event_tables, emit_untyped
from mint.kit.time import utcnow
from tests.integration.test_events import read_all, running, wait_until

METADATA = service_metadata()
add_event_tables(METADATA)
MAX_ATTEMPTS = 3
SMALL_LIMIT = 2048  # bytes: the poison topic's max.message.bytes


@pytest.fixture
def db(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    """A database of its own per test: the gauges count every row in it."""
    database = Database(embedded_infra.create_database(f"parking_{uuid.uuid4().hex[:8]}"))
    METADATA.create_all(database.engine)
    yield database
    database.dispose()


def settings_for(db: Database, bootstrap: str, **overrides: Any) -> KitSettings:
    values: dict[str, Any] = {
        "service_name": "evtest",
        "environment": "test",
        "database_url": db.url,
        "kafka_bootstrap_servers": bootstrap,
        "outbox_poll_seconds": 0.05,
        "outbox_max_attempts": MAX_ATTEMPTS,
    }
    return KitSettings(**(values | overrides))


def relay_for(db: Database, bootstrap: str, **overrides: Any) -> OutboxRelay:
    # A short row backoff: the attempts come quickly, their count is what the tests check.
    return OutboxRelay(db, settings_for(db, bootstrap, **overrides), max_backoff_seconds=0.05)


def small_topic(bootstrap: str) -> str:
    """A topic whose messages may not exceed SMALL_LIMIT bytes."""
    name = f"parking{uuid.uuid4().hex[:10]}.events"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    limit = {"max.message.bytes": str(SMALL_LIMIT)}
    for future in admin.create_topics([NewTopic(name, 3, -1, config=limit)]).values():
        future.result(30)
    return name


def raise_limit(bootstrap: str, topic: str) -> None:
    """The operator's fix: the topic accepts messages up to 1 MiB."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry(
        "max.message.bytes", str(1 << 20), incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource("topic", topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def emit_row(db: Database, topic: str, key: str, *, padding: int = 0) -> str:
    with db.session() as session:
        return emit_untyped(
            session,
            topic=topic,
            type="widget.created",
            subject=key,
            data={"key": key, "padding": "x" * padding},
            key=key,
            actor="system",
            source="evtest",
        )


def outbox_row(db: Database, event_id: str) -> Row[Any]:
    with db.session() as session:
        return session.execute(select(OUTBOX).where(OUTBOX.c.id == uuid.UUID(event_id))).one()


def published(db: Database, *event_ids: str) -> bool:
    return all(outbox_row(db, e).published_at is not None for e in event_ids)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def ce_ids(messages: list[Any]) -> list[str]:
    return [dict(m.headers())["ce_id"].decode() for m in messages]


def test_poison_row_is_parked_while_other_keys_flow_then_requeued(
    db: Database, infra: InfraEndpoints
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = small_topic(bootstrap)
    poison = emit_row(db, topic, "alice", padding=10_000)
    behind = emit_row(db, topic, "alice")  # same key, same batch: must not overtake
    others = [emit_row(db, topic, f"bob-{i}") for i in range(3)]
    parked_before = metric("mint_outbox_rows_parked_total", topic=topic)
    relay = relay_for(db, bootstrap)

    with capture_logs() as logs, running(relay.run):
        wait_until(lambda: outbox_row(db, poison).parked_at is not None, what="poison parked")
        wait_until(lambda: published(db, *others), what="the other keys' rows")
        waiting = emit_row(db, topic, "alice")  # emitted after the parking: waits too
        after = emit_row(db, topic, "carol")  # another key emitted after it: flows
        wait_until(lambda: published(db, after), what="a row emitted after the parking")
        relay.observe(force=True)

    row = outbox_row(db, poison)
    assert (row.attempts, row.published_at) == (MAX_ATTEMPTS, None)
    assert "MSG_SIZE_TOO_LARGE" in row.last_error
    for held in (behind, waiting):  # never even tried: they wait behind the parked row
        assert (outbox_row(db, held).attempts, outbox_row(db, held).published_at) == (0, None)
    assert metric("mint_outbox_parked") == 1
    assert metric("mint_outbox_rows_parked_total", topic=topic) == parked_before + 1
    parked_logs = [e for e in logs if e["event"] == "outbox_row_parked"]
    assert [(e["log_level"], e["event_id"]) for e in parked_logs] == [("error", poison)]
    retried = [e for e in logs if e["event"] == "outbox_row_failed" and e["event_id"] == poison]
    assert len(retried) == MAX_ATTEMPTS - 1
    assert sorted(ce_ids(read_all(bootstrap, topic, expect=4))) == sorted([*others, after])

    cli = CliRunner()
    listed = cli.invoke(mint_cli, ["outbox", "parked", "wallet", "--database-url", db.url])
    assert listed.exit_code == 0, listed.output
    assert poison in listed.output and "MSG_SIZE_TOO_LARGE" in listed.output
    stranger = str(uuid.uuid4())
    refused = cli.invoke(
        mint_cli, ["outbox", "requeue", "wallet", "--id", stranger, "--database-url", db.url]
    )
    assert refused.exit_code == 1 and stranger in refused.output
    assert outbox_row(db, poison).parked_at is not None

    raise_limit(bootstrap, topic)
    requeued = cli.invoke(
        mint_cli, ["outbox", "requeue", "wallet", "--id", poison, "--database-url", db.url]
    )
    assert requeued.exit_code == 0, requeued.output
    assert "requeued 1 outbox row(s)" in requeued.output
    row = outbox_row(db, poison)
    assert (row.parked_at, row.attempts) == (None, 0)

    with running(relay_for(db, bootstrap).run):
        wait_until(lambda: published(db, poison, behind, waiting), what="alice's rows")
    alice = [m for m in read_all(bootstrap, topic, expect=7) if m.key() == b"alice"]
    assert ce_ids(alice) == [poison, behind, waiting]  # in order, each once
    relay.observe(force=True)
    assert metric("mint_outbox_parked") == 0


def test_a_topic_that_cannot_be_created_does_not_block_the_batch(
    db: Database, infra: InfraEndpoints
) -> None:
    bootstrap = infra.kafka_bootstrap
    good = f"parking{uuid.uuid4().hex[:10]}.events"
    bad = emit_row(db, "no spaces allowed!", "erin")  # the broker refuses this topic name
    erin_next = emit_row(db, good, "erin")  # erin's next event, on a good topic: waits
    others = [emit_row(db, good, f"frank-{i}") for i in range(3)]
    relay = relay_for(db, bootstrap)
    try:
        assert relay.publish_once() == 3  # no exception: the cluster is fine, one row is not
        assert published(db, *others)
        row = outbox_row(db, bad)
        assert row.attempts == 1 and "no spaces allowed!" in row.last_error
        assert outbox_row(db, erin_next).attempts == 0

        def parked() -> bool:
            relay.publish_once()
            return outbox_row(db, bad).parked_at is not None

        wait_until(parked, what="the row of the bad topic parked")
    finally:
        relay.close()
    assert outbox_row(db, bad).attempts == MAX_ATTEMPTS
    assert outbox_row(db, erin_next).published_at is None
    later = emit_row(db, good, "grace")
    assert relay.publish_once() == 1 and published(db, later)


def test_rows_unpublished_past_the_threshold_are_reported(db: Database) -> None:
    # Only the database is read: no broker is needed (nothing listens on port 9).
    relay = relay_for(db, "127.0.0.1:9", outbox_stuck_seconds=60)
    fresh = emit_row(db, "parking.events", "henry")
    old = emit_row(db, "parking.events", "ivan")
    set_aside = emit_row(db, "parking.events", "judy")
    with db.session() as session:
        an_hour_ago = utcnow() - timedelta(hours=1)
        for event_id in (old, set_aside):
            session.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == uuid.UUID(event_id))
                .values(created_at=an_hour_ago)
            )
        session.execute(
            update(OUTBOX).where(OUTBOX.c.id == uuid.UUID(set_aside)).values(parked_at=utcnow())
        )
    with capture_logs() as logs:
        relay.observe(force=True)
        relay.observe(force=True)  # still stuck: not said again before the threshold
    stuck = [e for e in logs if e["event"] == "outbox_rows_stuck"]
    assert len(stuck) == 1 and stuck[0]["log_level"] == "error"
    assert (stuck[0]["rows"], stuck[0]["oldest_event_id"]) == (1, old)
    assert metric("mint_outbox_stuck") == 1  # the parked row is counted as parked, not stuck
    assert metric("mint_outbox_parked") == 1
    assert metric("mint_outbox_backlog") == 3

    with db.session() as session:
        session.execute(
            update(OUTBOX).where(OUTBOX.c.id == uuid.UUID(old)).values(published_at=utcnow())
        )
    with capture_logs() as logs:
        relay.observe(force=True)
    assert [e["event"] for e in logs] == ["outbox_rows_unstuck"]
    assert metric("mint_outbox_stuck") == 0
    assert outbox_row(db, fresh).published_at is None
    relay.close()
