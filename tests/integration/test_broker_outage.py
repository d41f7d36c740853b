"""Broker down while money moves: transfers commit, their events wait in the outbox, and every
one of them reaches Kafka once the broker is back (conventions.md "Events")."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer
from sqlalchemy import func, select

from mint.infra import EmbeddedInfra
from mint.kit.config import KitSettings
from mint.kit.db import Database
from mint.kit.events import OUTBOX, OutboxRelay
from mint.kit.runner import migrate
from mint.kit.service import build_context
from mint.wallet import actions
from mint.wallet.service import SERVICE as WALLET


def unpublished(db: Database) -> int:
    with db.session() as session:
        return int(
            session.execute(
                select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
            ).scalar_one()
        )


def consume_transfer_ids(bootstrap: str, wanted: set[str], timeout: float) -> set[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"outage-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(["wallet.events"])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not wanted <= seen:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = {k: (v or b"").decode() for k, v in (msg.headers() or [])}
            if headers.get("ce_type") == "wallet.transfer_posted":
                seen.add(headers.get("ce_subject", ""))
    finally:
        consumer.close()
    return seen


def test_transfers_during_a_broker_outage_are_all_published_after_it_returns(
    embedded_infra: EmbeddedInfra, tmp_path: Path
) -> None:
    # A broker of this test's own, so stopping it disturbs no other test.
    kafka_dir = tmp_path / "kafka-outage"
    broker = EmbeddedInfra(kafka_dir, databases=[], components={"kafka"}, ephemeral=True)
    bootstrap = broker.start().kafka_bootstrap

    url = embedded_infra.create_database(f"outage_{uuid.uuid4().hex[:8]}")
    settings = KitSettings(
        service_name="wallet",
        environment="test",
        database_url=url,
        kafka_bootstrap_servers=bootstrap,
        outbox_poll_seconds=0.1,
    )
    ctx = build_context(WALLET, settings)
    migrate(ctx)
    db = ctx.database()
    payer, payee = uuid.uuid4(), uuid.uuid4()
    with db.session() as session:
        actions.ensure_system_accounts(session)
        actions.open_wallet(session, payer)
        actions.open_wallet(session, payee)
        actions.transfer(session, f"fund-{payer}", "external:funding", f"user:{payer}", 10_000)

    stop = threading.Event()
    relay = OutboxRelay(db, ctx.settings)
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while unpublished(db) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert unpublished(db) == 0, "relay did not publish while the broker was up"

        broker.stop()
        transfer_ids = {f"outage-{i}-{uuid.uuid4().hex[:6]}" for i in range(20)}
        for transfer_id in sorted(transfer_ids):
            with db.session() as session:
                actions.transfer(session, transfer_id, f"user:{payer}", f"user:{payee}", 100)
        time.sleep(2)  # the relay keeps trying; nothing may be lost or marked sent
        assert unpublished(db) == 20

        broker = EmbeddedInfra(kafka_dir, databases=[], components={"kafka"}, ephemeral=True)
        assert broker.start().kafka_bootstrap == bootstrap, "broker came back on another port"
        deadline = time.monotonic() + 90
        while unpublished(db) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert unpublished(db) == 0, "outbox not drained after the broker returned"
        seen = consume_transfer_ids(bootstrap, transfer_ids, timeout=60)
        assert transfer_ids <= seen, f"missing events: {sorted(transfer_ids - seen)}"
    finally:
        stop.set()
        thread.join(10)
        relay.close()
        db.dispose()
        broker.stop()
