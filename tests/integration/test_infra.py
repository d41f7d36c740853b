"""mint.infra against the real servers it starts: every component is used for real, then stop()
must leave no process behind."""

from __future__ import annotations

import email
import io
import json
import shutil
import smtplib
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from minio import Minio

from mint.infra import EmbeddedInfra, InfraEndpoints, InfraError


def libpq_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def s3_client(ep: InfraEndpoints) -> Minio:
    return Minio(
        ep.s3_endpoint.removeprefix("http://"),
        access_key=ep.s3_access_key,
        secret_key=ep.s3_secret_key,
        region=ep.s3_region,
        secure=False,
    )


def kafka_round_trip(bootstrap: str, topic: str, payload: bytes, timeout: float = 60.0) -> bytes:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=payload)
    assert producer.flush(30) == 0, "message not delivered"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            # Tansu answers JoinGroup only after half the session timeout (default 45s)
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            value = msg.value()
            if value == payload:
                return value
        raise AssertionError(f"message not consumed from {topic} within {timeout}s")
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def own_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInfra]:
    infra = EmbeddedInfra(tmp_path_factory.mktemp("infra"), ["alpha", "beta"], ephemeral=True)
    started = time.monotonic()
    infra.start()
    print(f"\n[test_infra] started in {time.monotonic() - started:.1f}s")
    try:
        yield infra
    finally:
        infra.stop()


@pytest.fixture(scope="module")
def ep(own_infra: EmbeddedInfra) -> InfraEndpoints:
    return own_infra.endpoints


def test_endpoints_shape_and_json(own_infra: EmbeddedInfra, ep: InfraEndpoints) -> None:
    assert ep.postgres_admin_url.startswith("postgresql+psycopg://")
    assert ep.postgres_admin_url.endswith("/postgres")
    assert set(ep.database_urls) == {"alpha", "beta"}
    assert ep.redis_url.startswith("redis://127.0.0.1:") and ep.redis_url.endswith("/0")
    assert ep.kafka_bootstrap.startswith("127.0.0.1:")
    assert ep.kafka_kind in {"apache-kafka", "tansu"}
    assert ep.smtp_url.startswith("smtp://127.0.0.1:")
    assert ep.mail_dir == own_infra.data_dir / "mail"
    again = InfraEndpoints.from_dict(json.loads(json.dumps(ep.to_dict())))
    assert again == ep
    assert own_infra.start() is ep  # already started: same endpoints


def test_postgres_table_round_trip(own_infra: EmbeddedInfra, ep: InfraEndpoints) -> None:
    with psycopg.connect(libpq_url(ep.database_urls["alpha"])) as conn:
        conn.execute("CREATE TABLE things (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO things (name) VALUES (%s), (%s)", ("a", "b"))
        rows = conn.execute("SELECT name FROM things ORDER BY id").fetchall()
    assert rows == [("a",), ("b",)]
    with psycopg.connect(libpq_url(ep.postgres_admin_url)) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    assert row is not None and int(row[0]) >= 300


def test_create_database_after_start(own_infra: EmbeddedInfra) -> None:
    url = own_infra.create_database("scratch_one")
    assert url.endswith("/scratch_one")
    assert own_infra.create_database("scratch_one") == url  # idempotent
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row == ("scratch_one",)


def test_redis_set_get(ep: InfraEndpoints) -> None:
    client = redis.Redis.from_url(ep.redis_url)
    try:
        client.set("mint:test", "value", ex=60)
        assert client.get("mint:test") == b"value"
    finally:
        client.close()


def test_kafka_produce_consume(ep: InfraEndpoints) -> None:
    payload = f"hello-{uuid.uuid4()}".encode()
    assert kafka_round_trip(ep.kafka_bootstrap, "infra-test", payload) == payload


def test_s3_put_get(ep: InfraEndpoints) -> None:
    client = s3_client(ep)
    client.make_bucket("infra-test")
    client.put_object("infra-test", "dir/hello.txt", io.BytesIO(b"hello s3"), 8)
    response = client.get_object("infra-test", "dir/hello.txt")
    try:
        assert response.read() == b"hello s3"
    finally:
        response.close()
        response.release_conn()
    anonymous = Minio(ep.s3_endpoint.removeprefix("http://"), secure=False, region=ep.s3_region)
    with pytest.raises(Exception, match=r"(?i)access|denied|signature"):
        anonymous.get_object("infra-test", "dir/hello.txt")


def test_smtp_writes_eml(ep: InfraEndpoints) -> None:
    subject = f"Welcome {uuid.uuid4().hex[:8]}"
    msg = EmailMessage()
    msg["From"] = "Mint <no-reply@mint.test>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = subject
    msg.set_content("Héllo Alice\n")
    host, port = ep.smtp_url.removeprefix("smtp://").split(":")
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.send_message(msg, to_addrs=["alice@example.test", "audit@example.test"])
    found = [p for p in ep.mail_dir.glob("*.eml") if subject.encode() in p.read_bytes()]
    assert len(found) == 1
    parsed = email.message_from_bytes(found[0].read_bytes(), policy=default_policy)
    assert parsed["Subject"] == subject
    assert parsed["To"] == "alice@example.test"  # present, so left alone
    assert "audit@example.test" in parsed["X-Original-To"]
    assert parsed.get_content().strip() == "Héllo Alice"


def test_second_infra_on_same_dir_is_refused(own_infra: EmbeddedInfra) -> None:
    with pytest.raises(InfraError, match="in use"):
        EmbeddedInfra(own_infra.data_dir, [], components={"redis"}).start()


def test_stop_leaves_no_process(own_infra: EmbeddedInfra) -> None:
    recorded = own_infra.pids()
    assert set(recorded) == {"postgres", "redis", "kafka", "s3"}
    procs = [psutil.Process(pid) for pid in recorded.values()]
    everything = procs + [c for p in procs for c in p.children(recursive=True)]
    assert len(everything) > len(procs)  # postgres has its background workers
    own_infra.stop()
    _gone, alive = psutil.wait_procs(everything, timeout=5)
    assert not alive, f"still running after stop(): {alive}"
    assert not any(p.is_running() for p in everything)
    own_infra.stop()  # idempotent


def test_readiness_timeout_names_component_and_log(tmp_path: Path) -> None:
    infra = EmbeddedInfra(tmp_path, [], components={"s3"}, ephemeral=True, timeout=0.01)
    with pytest.raises(RuntimeError) as info:
        infra.start()
    text = str(info.value)
    assert "s3" in text and str(tmp_path / "logs" / "s3.log") in text
    assert infra.pids() == {}


def test_tansu_fallback_round_trip(tmp_path: Path) -> None:
    with EmbeddedInfra(tmp_path, [], components={"kafka"}, kafka_kind="tansu") as infra:
        ep = infra.endpoints
        assert ep.kafka_kind == "tansu"
        admin = AdminClient({"bootstrap.servers": ep.kafka_bootstrap})
        for future in admin.create_topics([NewTopic("tansu-test", 1, 1)]).values():
            future.result(30)
        payload = b"via tansu"
        assert kafka_round_trip(ep.kafka_bootstrap, "tansu-test", payload) == payload
        pid = infra.pids()["kafka"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_data_survives_restart(tmp_path: Path) -> None:
    """`make dev` keeps its data: a second start on the same directory finds it again."""
    components = {"postgres", "redis", "kafka", "s3"}
    try:
        check_restart(tmp_path, components)
    finally:  # as root the cluster may live outside tmp_path (see mint.infra.pg_root)
        link = tmp_path / "postgres"
        if link.is_symlink():
            target = link.resolve()
            shutil.rmtree(target, ignore_errors=True)
            target.with_name(f"{target.name}.owner").unlink(missing_ok=True)


def check_restart(tmp_path: Path, components: set[str]) -> None:
    with EmbeddedInfra(tmp_path, ["keep"], components=components) as infra:
        first = infra.endpoints
        with psycopg.connect(libpq_url(first.database_urls["keep"])) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        redis.Redis.from_url(first.redis_url).set("kept", "yes")
        kafka_round_trip(first.kafka_bootstrap, "kept", b"m1")
        s3_client(first).make_bucket("kept")
        s3_client(first).put_object("kept", "o", io.BytesIO(b"obj"), 3)
    with EmbeddedInfra(tmp_path, ["keep"], components=components) as infra:
        second = infra.endpoints
        assert second.database_urls == first.database_urls  # same ports again when free
        with psycopg.connect(libpq_url(second.database_urls["keep"])) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("still here",)]
        assert redis.Redis.from_url(second.redis_url).get("kept") == b"yes"
        assert s3_client(second).get_object("kept", "o").read() == b"obj"
        admin = AdminClient({"bootstrap.servers": second.kafka_bootstrap})
        assert "kept" in admin.list_topics(timeout=10).topics
