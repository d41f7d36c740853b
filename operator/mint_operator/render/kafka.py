"""Strimzi: a KafkaTopic (``kafka.strimzi.io/v1``) per events.md topic and its DLQ, in the Kafka
cluster's namespace; optionally the Kafka and its KafkaNodePool (KRaft, combined roles). Topic
names carry the tenant's prefix (``MINT_KAFKA_PREFIX``), so tenants can share one Kafka."""

from __future__ import annotations

from mint_operator import catalog
from mint_operator.render.common import meta, obj
from mint_operator.spec import Obj, Tenant, dig

STRIMZI = "kafka.strimzi.io/v1"


def topic_partitions(t: Tenant) -> dict[str, int]:
    """Every topic name → partitions: events.md defaults, the tenant's overrides, DLQs."""
    overrides = dig(t.spec, "kafka.topics.partitions", {}) or {}
    dlq = int(dig(t.spec, "kafka.topics.dlqPartitions", 1))
    out: dict[str, int] = {}
    for topic, partitions in catalog.TOPICS.items():
        out[topic] = int(overrides.get(topic, partitions))
        out[topic + catalog.DLQ_SUFFIX] = int(overrides.get(topic + catalog.DLQ_SUFFIX, dlq))
    return out


def topic_resource_name(t: Tenant, topic: str) -> str:
    return f"{t.kafka_object_prefix}-{topic.replace('.', '-')}"


def render_topics(t: Tenant) -> list[Obj]:
    if t.kafka_mode != "strimzi":
        return []
    replicas = t.topic_replicas
    config = dict(dig(t.spec, "kafka.topics.config", {}) or {})
    if replicas > 1:
        config.setdefault("min.insync.replicas", min(2, replicas))
    out = []
    for topic, partitions in topic_partitions(t).items():
        name = topic_resource_name(t, topic)
        m = meta(t, name, "kafka", namespace=t.kafka_namespace, holds_data=True)
        m["labels"]["strimzi.io/cluster"] = t.kafka_cluster
        spec: Obj = {
            "topicName": t.kafka_prefix + topic,
            "partitions": partitions,
            "replicas": replicas,
        }
        if config:
            spec["config"] = config
        out.append(obj(STRIMZI, "KafkaTopic", m, spec=spec))
    return out


def render_kafka_cluster(t: Tenant) -> list[Obj]:
    """The Kafka + KafkaNodePool when ``kafka.strimzi.create.enabled``."""
    create = dig(t.spec, "kafka.strimzi.create", {}) or {}
    if not t.kafka_creates_cluster:
        return []
    replicas = int(create.get("replicas", 1))
    ns = t.kafka_namespace
    pool_meta = meta(t, f"{t.kafka_cluster}-pool", "kafka", namespace=ns, holds_data=True)
    pool_meta["labels"]["strimzi.io/cluster"] = t.kafka_cluster
    pool_spec: Obj = {
        "replicas": replicas,
        "roles": ["controller", "broker"],
        "storage": {
            "type": "jbod",
            "volumes": [
                {
                    "id": 0,
                    "type": "persistent-claim",
                    "size": str(create.get("storageSize", "10Gi")),
                    "deleteClaim": False,
                    "kraftMetadata": "shared",
                }
            ],
        },
    }
    if create.get("resources"):
        pool_spec["resources"] = create["resources"]
    pool = obj(STRIMZI, "KafkaNodePool", pool_meta, spec=pool_spec)
    rf = min(3, replicas)
    kafka_spec: Obj = {
        "listeners": [
            {
                "name": "plain",
                "port": int(dig(t.spec, "kafka.strimzi.listenerPort", 9092)),
                "type": "internal",
                "tls": False,
            }
        ],
        "config": {
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": max(1, rf - 1),
            "default.replication.factor": rf,
            "min.insync.replicas": max(1, rf - 1),
            "auto.create.topics.enable": False,
        },
    }
    if create.get("version"):
        kafka_spec["version"] = str(create["version"])
    kafka = obj(
        STRIMZI,
        "Kafka",
        meta(t, t.kafka_cluster, "kafka", namespace=ns, holds_data=True),
        spec={"kafka": kafka_spec, "entityOperator": {"topicOperator": {}}},
    )
    return [pool, kafka]
