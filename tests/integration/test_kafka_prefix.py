"""Tenants share one Kafka (platform.md): with ``MINT_KAFKA_PREFIX`` the kit's outbox relay,
consumers and dead letters use ``<prefix><topic>`` and ``<prefix><group>`` on the wire, so two
tenants running the same services on one real Kafka never see each other's events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from mint.infra import EmbeddedInfra, InfraEndpoints
from mint.kit.config import KitSettings
from mint.kit.db import Database
from mint.kit.events import ConsumerRunner, ConsumerSpec, OutboxRelay
from mint.kit.events.topics import catalogue_name, kafka_name
from tests.integration.test_events import (
    METADATA,
    Recorder,
    emit_widget,
    read_all,
    running,
    wait_until,
    widget_count,
)


class Tenant:
    """One tenant's service: its own database, the shared Kafka, its prefix."""

    def __init__(self, infra: EmbeddedInfra, bootstrap: str, prefix: str) -> None:
        self.db = Database(infra.create_database(f"prefix_{uuid.uuid4().hex[:8]}"))
        METADATA.create_all(self.db.engine)
        self.prefix = prefix
        self.settings = KitSettings(
            service_name="evtest",
            environment="test",
            database_url=self.db.url,
            kafka_bootstrap_servers=bootstrap,
            kafka_prefix=prefix,
            outbox_poll_seconds=0.1,
            consumer_max_attempts=2,
            consumer_backoff_seconds=0.05,
        )
        self.recorder = Recorder()
        self.relay = OutboxRelay(self.db, self.settings)

    def consumer(self, topic: str) -> ConsumerRunner:
        spec = ConsumerSpec("main", topics=[topic], handler=self.recorder)
        return ConsumerRunner(spec, db=self.db, settings=self.settings, service="evtest")

    def emit(self, topic: str, name: str, type: str = "widget.created") -> str:
        with self.db.session() as s:
            return emit_widget(s, topic, name, type=type)


@pytest.fixture
def tenants(embedded_infra: EmbeddedInfra, infra: InfraEndpoints) -> Iterator[list[Tenant]]:
    run = uuid.uuid4().hex[:6]
    made = [
        Tenant(embedded_infra, infra.kafka_bootstrap, f"shop-{run}.mint."),
        Tenant(embedded_infra, infra.kafka_bootstrap, f"bank-{run}.mint."),
    ]
    yield made
    for tenant in made:
        tenant.db.dispose()


def test_prefix_is_applied_on_the_wire_and_removed_for_handlers() -> None:
    assert kafka_name("ns.t.", "wallet.events") == "ns.t.wallet.events"
    assert catalogue_name("ns.t.", "ns.t.wallet.events") == "wallet.events"
    assert catalogue_name("", "wallet.events") == "wallet.events"


def test_two_prefixes_on_one_kafka_do_not_see_each_others_events(
    tenants: list[Tenant], infra: InfraEndpoints
) -> None:
    shop, bank = tenants
    topic = f"evtest{uuid.uuid4().hex[:10]}.events"  # the same catalogue name for both
    shop_event = shop.emit(topic, "shop-widget")
    shop_poison = shop.emit(topic, "shop-poison", type="widget.poison")
    bank_event = bank.emit(topic, "bank-widget")
    shop_consumer, bank_consumer = shop.consumer(topic), bank.consumer(topic)
    assert shop_consumer.group_id == f"{shop.prefix}mint.evtest.main"
    assert bank_consumer.group_id == f"{bank.prefix}mint.evtest.main"
    with running(shop.relay.run, bank.relay.run, shop_consumer.run, bank_consumer.run):
        wait_until(lambda: widget_count(shop.db, shop_event) == 1, what="shop's event")
        wait_until(lambda: widget_count(bank.db, bank_event) == 1, what="bank's event")
        wait_until(
            lambda: shop.recorder.ids().count(shop_poison) == 2, what="shop's poison retried"
        )
    # each consumer saw its own tenant's events only, under the catalogue topic name
    assert set(shop.recorder.ids()) == {shop_event, shop_poison}
    assert bank.recorder.ids() == [bank_event]
    assert {e.topic for e in shop.recorder.calls + bank.recorder.calls} == {topic}
    assert widget_count(bank.db) == 1

    names = set(
        AdminClient({"bootstrap.servers": infra.kafka_bootstrap}).list_topics(timeout=15).topics
    )
    for tenant in tenants:
        assert {f"{tenant.prefix}{topic}", f"{tenant.prefix}{topic}.dlq"} <= names
    assert topic not in names and f"{topic}.dlq" not in names  # nothing unprefixed
    shop_messages = read_all(infra.kafka_bootstrap, f"{shop.prefix}{topic}", expect=2)
    assert {dict(m.headers())["ce_id"] for m in shop_messages} == {
        shop_event.encode(),
        shop_poison.encode(),
    }
    # the dead letter went to shop's DLQ; bank's DLQ stays empty
    (dead,) = read_all(infra.kafka_bootstrap, f"{shop.prefix}{topic}.dlq", expect=1)
    assert dict(dead.headers())["ce_id"] == shop_poison.encode()
    assert dict(dead.headers())["mint_group"] == shop_consumer.group_id.encode()
    assert read_all(infra.kafka_bootstrap, f"{bank.prefix}{topic}.dlq", expect=0, timeout=5) == []
