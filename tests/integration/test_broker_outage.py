"""The broker down longer than the producer's delivery timeout while transfers commit
(quality.md "Reliability", conventions.md "Events").

The relay's producer gives up on a message after ``message_timeout_ms``: past that, only the
outbox keeps the event. So this test makes the broker stay down until the relay has *recorded* a
failed delivery (``last_error`` on the rows it tried: the producer's timeout elapsed, the client
library is out of the picture), commits more transfers while it is still down, and only then
brings it back. Afterwards: every event of the outbox reached the topic exactly once, each
payer's ``wallet.transfer_posted`` events are on the topic and applied by a consumer in the
order their transfers committed, the consumer applied each event exactly once, and the ledger
holds.

The outage rows stay unpublished while the broker is down: a relay that marked undelivered
events as published would lose them, and this test fails (both at that check and at the
exactly-once count).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import BigInteger, Column, Identity, String, Table, insert, select
from sqlalchemy.orm import Session

from mint.contracts.wallet import TransferPosted
from mint.infra import EmbeddedInfra
from mint.kit.config import KitSettings
from mint.kit.db import Database, service_metadata
from mint.kit.events import (
    OUTBOX,
    ConsumerRunner,
    ConsumerSpec,
    Event,
    OutboxRelay,
    add_event_tables,
    on,
)
from mint.kit.events.cloudevents import header_dict
from mint.kit.runner import migrate
from mint.kit.service import build_context
from mint.wallet import actions
from mint.wallet.invariants import check_invariants
from mint.wallet.service import SERVICE as WALLET

#: The relay's producer gives up on a message after this long (librdkafka ``message.timeout.ms``).
DELIVERY_TIMEOUT_MS = 1500
#: Reconnect quickly once the broker is back (librdkafka backs off up to 10 s by default).
FAST_RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}
PAYERS = 3
TRANSFERS_PER_PAYER = 6  # committed while the broker is down: before and after the failed delivery
AMOUNT = 100
WAIT = 90.0  # only catches a hang

# The consumer's own database (another service's, as it were): what it did with each event.
CONSUMER_METADATA = service_metadata()
add_event_tables(CONSUMER_METADATA)
EFFECTS = Table(
    "transfer_effects",
    CONSUMER_METADATA,
    Column("applied", BigInteger, Identity(), primary_key=True),  # order of application
    Column("event_id", String(64), nullable=False),  # deliberately not unique: count them
    Column("transfer_id", String(255), nullable=False),
    Column("key", String(255), nullable=False),
)


def apply_transfer(session: Session, data: TransferPosted, event: Event) -> None:
    session.execute(
        insert(EFFECTS).values(event_id=event.id, transfer_id=data.transfer_id, key=event.key or "")
    )


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass(frozen=True)
class OutboxRow:
    id: str
    seq: int
    key: str
    type: str
    published: bool
    last_error: str | None


def outbox_rows(db: Database) -> list[OutboxRow]:
    query = select(
        OUTBOX.c.id,
        OUTBOX.c.seq,
        OUTBOX.c.key,
        OUTBOX.c.type,
        OUTBOX.c.published_at.is_not(None).label("published"),
        OUTBOX.c.last_error,
    ).order_by(OUTBOX.c.seq)
    with db.session() as session:
        return [
            OutboxRow(str(r.id), r.seq, r.key, r.type, r.published, r.last_error)
            for r in session.execute(query)
        ]


def applied_effects(db: Database) -> list[Any]:
    with db.session() as session:
        return list(session.execute(select(EFFECTS).order_by(EFFECTS.c.applied)))


@dataclass(frozen=True)
class Published:
    ce_id: str
    ce_type: str
    key: str
    partition: int
    offset: int


def read_topic(bootstrap: str, topic: str) -> list[Published]:
    """Every message of ``topic``, up to its high watermarks (nothing is being produced)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions)
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}", "log_level": 3}
    )
    try:
        ends = {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        reader.assign([TopicPartition(topic, p, 0) for p in partitions])
        got: list[Published] = []
        positions = dict.fromkeys(partitions, 0)
        deadline = time.monotonic() + WAIT
        while any(positions[p] < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            msg = reader.poll(0.2)
            if msg is None or msg.error() is not None:
                continue
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            positions[partition] = offset + 1
            headers = header_dict(msg.headers())
            got.append(
                Published(
                    headers.get("ce_id", ""),
                    headers.get("ce_type", ""),
                    (msg.key() or b"").decode(),
                    partition,
                    offset,
                )
            )
        return got
    finally:
        reader.close()


@contextmanager
def running(*bodies: Callable[[threading.Event], None]) -> Iterator[None]:
    stop = threading.Event()
    threads = [threading.Thread(target=body, args=(stop,), daemon=True) for body in bodies]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def test_events_committed_during_an_outage_longer_than_the_delivery_timeout_arrive_once_in_order(
    embedded_infra: EmbeddedInfra, tmp_path: Path
) -> None:
    # A broker of this test's own, so stopping it disturbs no other test.
    kafka_dir = tmp_path / "kafka-outage"
    broker = EmbeddedInfra(kafka_dir, databases=[], components={"kafka"}, ephemeral=True)
    bootstrap = broker.start().kafka_bootstrap
    tag = uuid.uuid4().hex[:8]

    settings = KitSettings(
        service_name="wallet",
        environment="test",
        database_url=embedded_infra.create_database(f"outage_{tag}"),
        kafka_bootstrap_servers=bootstrap,
        outbox_poll_seconds=0.1,
    )
    ctx = build_context(WALLET, settings)
    migrate(ctx)
    wallet_db = ctx.database()
    relay = OutboxRelay(
        wallet_db,
        settings,
        message_timeout_ms=DELIVERY_TIMEOUT_MS,
        max_backoff_seconds=1.0,
        producer_config=FAST_RECONNECT,
    )

    consumer_db = Database(embedded_infra.create_database(f"outage_consumer_{tag}"))
    CONSUMER_METADATA.create_all(consumer_db.engine)
    consumer_settings = KitSettings(
        service_name="outagetest",
        environment="test",
        database_url=consumer_db.url,
        kafka_bootstrap_servers=bootstrap,
        consumer_group_prefix=f"mint-outage-{tag}",
        consumer_max_attempts=3,
        consumer_backoff_seconds=0.05,
    )
    consumer = ConsumerRunner(
        ConsumerSpec("effects", routes=[on(TransferPosted, apply_transfer)]),
        db=consumer_db,
        settings=consumer_settings,
        service="outagetest",
        consumer_config=FAST_RECONNECT,
    )

    payers = [uuid.uuid4() for _ in range(PAYERS)]
    payee = uuid.uuid4()
    with wallet_db.session() as session:
        actions.ensure_system_accounts(session)
        for user in [*payers, payee]:
            actions.open_wallet(session, user)
        for payer in payers:
            amount = AMOUNT * TRANSFERS_PER_PAYER
            actions.transfer(session, f"fund-{payer}", "external:funding", f"user:{payer}", amount)

    def pay(session: Session, payer: uuid.UUID, n: int) -> None:
        actions.transfer(session, f"outage-{payer}-{n}", f"user:{payer}", f"user:{payee}", AMOUNT)

    try:
        with running(relay.run, consumer.run):
            wait_until(
                lambda: all(r.published for r in outbox_rows(wallet_db)),
                "the relay to publish while the broker is up",
            )
            before = {r.id for r in outbox_rows(wallet_db)}

            broker.stop()
            # The first payment of every payer in one commit: the relay's first attempt holds
            # the head row of every payer's key.
            with wallet_db.session() as session:
                for payer in payers:
                    pay(session, payer, 0)
            half = TRANSFERS_PER_PAYER // 2
            for n in range(1, half):
                for payer in payers:
                    with wallet_db.session() as session:
                        pay(session, payer, n)

            def delivery_failed_for_every_payer() -> bool:
                rows = outbox_rows(wallet_db)
                failed = {r.key for r in rows if r.id not in before and r.last_error is not None}
                return {str(payer) for payer in payers} <= failed

            # The producer gave up on them (its delivery timeout elapsed): only the outbox has
            # these events now. The broker stays down while more transfers commit.
            wait_until(delivery_failed_for_every_payer, "the relay to record failed deliveries")
            for n in range(half, TRANSFERS_PER_PAYER):
                for payer in payers:
                    with wallet_db.session() as session:
                        pay(session, payer, n)
            during = [r for r in outbox_rows(wallet_db) if r.id not in before]
            assert len(during) == PAYERS * TRANSFERS_PER_PAYER
            marked = [r for r in during if r.published]
            assert not marked, f"{len(marked)} event(s) marked published while the broker was down"

            broker = EmbeddedInfra(kafka_dir, databases=[], components={"kafka"}, ephemeral=True)
            assert broker.start().kafka_bootstrap == bootstrap, "broker came back on another port"
            wait_until(
                lambda: all(r.published for r in outbox_rows(wallet_db)),
                "the outbox to drain after the broker returned",
            )
            posted = [r for r in outbox_rows(wallet_db) if r.type == TransferPosted.TYPE]
            on_topic = read_topic(bootstrap, "wallet.events")
            # What reached the topic is compared with the outbox below; here the consumer
            # only has to catch up with the topic.
            reached = {m.ce_id for m in on_topic if m.ce_type == TransferPosted.TYPE}
            wait_until(
                lambda: reached <= {e.event_id for e in applied_effects(consumer_db)},
                "the consumer to apply every transfer event on the topic",
            )
        effects = applied_effects(consumer_db)
        final_rows = outbox_rows(wallet_db)
        with wallet_db.session() as session:
            ledger_violations = check_invariants(session)
    finally:
        relay.close()
        wallet_db.dispose()
        consumer_db.dispose()
        broker.stop()

    # Exactly once on the topic: every event of the outage, and no event twice.
    counts = Counter(m.ce_id for m in on_topic)
    assert {ce_id: n for ce_id, n in counts.items() if n > 1} == {}, "events published twice"
    missing = [r.id for r in during if counts[r.id] != 1]
    assert not missing, f"{len(missing)} outage event(s) never published: {missing}"
    unknown = set(counts) - {r.id for r in final_rows}
    assert not unknown, f"events on the topic that the outbox never held: {unknown}"

    # Exactly one effect per event in the consumer.
    applied = Counter(e.event_id for e in effects)
    assert applied == Counter({r.id: 1 for r in posted}), "not exactly one effect per event"

    # Per payer: the topic and the consumer both follow the order the transfers committed in.
    for payer in payers:
        committed = [r.id for r in posted if r.key == str(payer)]
        published = [
            m.ce_id
            for m in sorted(on_topic, key=lambda m: (m.partition, m.offset))
            if m.key == str(payer) and m.ce_type == TransferPosted.TYPE
        ]
        assert len({m.partition for m in on_topic if m.key == str(payer)}) == 1
        outage_ids = {r.id for r in during}
        assert [i for i in published if i in outage_ids] == [
            i for i in committed if i in outage_ids
        ], f"payer {payer}: events on the topic out of commit order"
        assert [e.event_id for e in effects if e.key == str(payer)] == committed, (
            f"payer {payer}: effects applied out of commit order"
        )

    # This test has a wallet only (no transactions database): the wallet's own ledger check.
    assert ledger_violations == []
