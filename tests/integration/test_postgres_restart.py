"""PostgreSQL restarted under traffic (quality.md "Reliability").

wallet, transactions and kyc run by their own runner (HTTP app, gRPC, outbox relay, consumers,
jobs) with their databases on a PostgreSQL of this test's own, and their events on the session's
Kafka. Client threads move money through the HTTP apps with Idempotency-Keys, retrying each key
until its answer is final, while the server is stopped (fast shutdown: open sessions are cut)
and started again. Users registered while it is down reach the consumers during the outage.

Proved: while the database is down clients get 503 ``dependency_unavailable`` (or a 4xx), never
a 500; the consumers wait the outage out instead of dead-lettering; afterwards every key has its
final answer, every transaction is COMPLETED or FAILED (201 answers and COMPLETED transactions
are the same set), the outboxes drain, the consumers catch up, money is conserved, and the
cross-service ledger audit is clean.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import func, select, text

from mint.contracts.auth import UserRegistered
from mint.infra import EmbeddedInfra
from mint.kit.db import Database
from mint.kit.events import OUTBOX, build_headers, dlq_topic
from mint.kit.events.cloudevents import encode_data, header_dict
from mint.kit.limits import TIERS, default_limits, write_limits_file
from mint.kit.service import Job
from mint.kyc.service import SERVICE as KYC
from mint.ledger_audit import audit
from mint.transactions.service import SERVICE as TRANSACTIONS
from mint.transactions.service import recover_stuck
from mint.wallet.service import SERVICE as WALLET
from tests.fixtures.tokens import TokenIssuer
from tests.harness import RunningService, run_service

CLIENTS = 5
TXN = "/api/v1/transactions"
WALLET_PATH = "/api/v1/wallet"
GENEROUS = {"per_transaction": 10**11, "daily": 10**11, "monthly": 10**11}
WAIT = 90.0  # only catches a hang
RETRY_PAUSE = 0.1  # a client's pause between two tries of one key
# The recovery pass settles what the outage left PENDING/PROCESSING and frees claims whose
# request died before writing its transaction: soon, so the clients' keys become final.
RECOVERY = Job(name="recover_stuck", interval_seconds=0.5, run=recover_stuck)
RECOVERY_SETTINGS: dict[str, Any] = {
    "recovery_processing_after_seconds": 1.0,
    "recovery_pending_after_seconds": 2.0,
}


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ---- a PostgreSQL of this test's own ------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL this test may stop and start again, keeping its data and its port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        # Not ephemeral while it must survive a restart (an ephemeral stop deletes the cluster);
        # the instance started last is ephemeral, so the final stop cleans up.
        self.server = EmbeddedInfra(data_dir, databases=[], components={"postgres"})
        self.admin_url = self.server.start().postgres_admin_url

    def create_database(self, name: str) -> str:
        return str(self.server.create_database(name))

    def stop(self) -> None:
        self.server.stop()  # fast shutdown: open sessions are rolled back and cut

    def start(self) -> None:
        self.server = EmbeddedInfra(
            self.data_dir, databases=[], components={"postgres"}, ephemeral=True
        )
        admin_url = self.server.start().postgres_admin_url
        assert admin_url == self.admin_url, "PostgreSQL came back on another port"

    def close(self) -> None:
        self.server.stop()


# ---- clients ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    client: int
    path: str
    key: str | None
    status: int
    code: str | None
    transaction_id: str | None
    transaction_status: str | None
    while_down: bool  # sent and answered while PostgreSQL was stopped
    final: bool


def is_final(response: httpx.Response, body: dict[str, Any]) -> bool:
    """Whether a money request's answer is its outcome (else: retry with the same key)."""
    status = response.status_code
    if status == 201:
        return True
    if status == 503:  # FAILED: nothing moved; PROCESSING or no transaction yet: retry
        return body.get("transaction_status") == "FAILED"
    if status == 409 and body.get("code") == "idempotency_request_in_progress":
        return False
    if status == 429:
        return False
    return 400 <= status < 500


@dataclass
class Traffic:
    """One thread per user: top-ups and transfers to the others, each key retried until its
    answer is final, and a read of the wallet after each try."""

    transactions: RunningService
    wallet: RunningService
    users: list[uuid.UUID]
    down: threading.Event = field(default_factory=threading.Event)
    stop_new: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)  # the test failed
    answers: list[Answer] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, client: int) -> None:
        rng = random.Random(client)
        user = self.users[client]
        others = [u for u in self.users if u != user]
        headers = self.transactions.headers(user)
        money = TestClient(self.transactions.http.app, raise_server_exceptions=False)
        reads = TestClient(self.wallet.http.app, raise_server_exceptions=False)
        n = 0
        body: dict[str, Any]
        while not self.stop_new.is_set():
            if n % 3 == 0:
                path, body = "/topup", {"amount": rng.randint(200, 1000)}
            else:
                recipient = str(rng.choice(others))
                path, body = "/transfer", {"amount": rng.randint(1, 400), "recipient_id": recipient}
            key = f"pg-{client}-{n}-{uuid.uuid4().hex}"
            self.settle(client, money, reads, headers, path, body, key)
            n += 1

    def settle(
        self,
        client: int,
        money: TestClient,
        reads: TestClient,
        headers: dict[str, str],
        path: str,
        body: dict[str, Any],
        key: str,
    ) -> None:
        """Send the request until its answer is final, reading the wallet after each try."""
        deadline = time.monotonic() + WAIT
        while True:
            final = self.send(client, money, "POST", TXN + path, headers, body, key).final
            self.send(client, reads, "GET", WALLET_PATH, headers, None, None)
            if final or self.abandon.is_set():
                return
            if time.monotonic() > deadline:
                with self.lock:
                    self.unfinished.append(key)
                return
            time.sleep(RETRY_PAUSE)

    def send(
        self,
        client: int,
        http: TestClient,
        method: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any] | None,
        key: str | None,
    ) -> Answer:
        was_down = self.down.is_set()
        sent = {**headers, "Idempotency-Key": key} if key else headers
        response = http.request(method, path, json=body, headers=sent)
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        answer = Answer(
            client=client,
            path=path,
            key=key,
            status=response.status_code,
            code=payload.get("code"),
            transaction_id=payload.get("id") or payload.get("transaction_id"),
            transaction_status=payload.get("transaction_status"),
            while_down=was_down and self.down.is_set(),
            final=key is None or is_final(response, payload),
        )
        with self.lock:
            self.answers.append(answer)
        return answer

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def finals_per_client(self) -> dict[int, int]:
        counts = dict.fromkeys(range(len(self.users)), 0)
        for answer in self.snapshot():
            if answer.key is not None and answer.final:
                counts[answer.client] += 1
        return counts


def assert_never_a_server_error(answers: list[Answer]) -> None:
    """Only 200/201, a 4xx, or 503 (the database or another dependency is unavailable)."""
    wrong = [a for a in answers if not (a.status in (200, 201, 503) or 400 <= a.status < 500)]
    assert not wrong, f"{len(wrong)} answer(s) neither 2xx, 4xx nor 503, e.g. {wrong[0]}"


@contextmanager
def clients(traffic: Traffic) -> Iterator[list[threading.Thread]]:
    threads = [
        threading.Thread(target=traffic.run, args=(i,), name=f"client-{i}", daemon=True)
        for i in range(len(traffic.users))
    ]
    for thread in threads:
        thread.start()
    try:
        yield threads
    except BaseException:
        traffic.abandon.set()  # no key is waited for: the test has failed already
        raise
    finally:
        traffic.stop_new.set()
        for thread in threads:
            thread.join(WAIT + 30)


# ---- events -------------------------------------------------------------------------------------


def register(producer: Producer, users: list[uuid.UUID]) -> None:
    """``auth.user_registered`` for ``users``, as auth's relay publishes it."""
    for user in users:
        event = UserRegistered(user_id=user, email=f"{user.hex[:12]}@example.test", name="Pat")
        headers = build_headers(
            id=str(uuid.uuid4()),
            type=event.TYPE,
            source=event.SOURCE,
            subject=event.subject(),
            actor=str(user),
            time=datetime.now(UTC),
        )
        producer.produce(
            event.TOPIC, encode_data(event.to_data()), event.key().encode(), headers=headers
        )
    assert producer.flush(15) == 0


def consumer_groups(service: RunningService) -> list[tuple[str, list[str]]]:
    """(Kafka group id, subscribed topics) of each consumer of a running service."""
    prefix, name = service.settings.consumer_group_prefix, service.ctx.service.name
    return [
        (f"{prefix}.{name}.{spec.group}", spec.subscribed)
        for spec in service.ctx.service.consumer_specs(service.ctx)
    ]


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"w-{uuid.uuid4()}", "log_level": 3}
    )
    try:
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        reader.close()


def caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether ``group`` has committed every message of ``topics`` (nothing left to process)."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3})
    try:
        for topic in topics:
            ends = high_watermarks(bootstrap, topic)
            committed = reader.committed([TopicPartition(topic, p) for p in ends], timeout=10)
            for tp in committed:
                if ends[tp.partition] > 0 and tp.offset < ends[tp.partition]:
                    return False
        return True
    finally:
        reader.close()


def dead_letters(
    bootstrap: str, groups: set[str], since: dict[str, dict[int, int]]
) -> list[dict[str, str]]:
    """The dead letters of ``groups`` of events that reached their topic after ``since`` (the
    topics' high watermarks when this test began; older events are other tests' business)."""
    found: list[dict[str, str]] = []
    for topic, start in since.items():
        dlq = dlq_topic(topic)
        ends = high_watermarks(bootstrap, dlq)
        reader = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"dlq-{uuid.uuid4()}", "log_level": 3}
        )
        try:
            reader.assign([TopicPartition(dlq, p, 0) for p in ends])
            positions = dict.fromkeys(ends, 0)
            deadline = time.monotonic() + WAIT
            while any(positions[p] < ends[p] for p in ends):
                assert time.monotonic() < deadline, f"could not read {dlq} to its end"
                msg = reader.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                positions[msg.partition() or 0] = (msg.offset() or 0) + 1
                headers = header_dict(msg.headers())
                if headers.get("mint_group") not in groups:
                    continue
                partition = int(headers.get("mint_original_partition", "-1"))
                offset = int(headers.get("mint_original_offset", "-1"))
                if offset >= start.get(partition, 0):
                    found.append(headers)
        finally:
            reader.close()
    return found


def failures_of(group: str, topic: str) -> float:
    """The consumer's ``mint_consumer_failed_total`` (process-wide) for one group and topic."""
    value = REGISTRY.get_sample_value(
        "mint_consumer_failed_total", {"group": group, "topic": topic}
    )
    return value or 0.0


# ---- databases ----------------------------------------------------------------------------------


def scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.session() as session:
        return session.execute(text(sql), params).scalar_one()


def unpublished(db: Database) -> int:
    with db.session() as session:
        query = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
        return int(session.execute(query).scalar_one())


# ---- the test -----------------------------------------------------------------------------------


def test_postgres_restart_under_traffic(embedded_infra: EmbeddedInfra, tmp_path: Path) -> None:
    infra = embedded_infra.endpoints
    bootstrap = infra.kafka_bootstrap
    since = {"auth.events": high_watermarks(bootstrap, "auth.events")}
    limits_file = tmp_path / "limits.yaml"
    document = default_limits().to_document()
    document["version"] = "generous"
    document["tiers"].update(dict.fromkeys(TIERS, GENEROUS))
    write_limits_file(limits_file, type(default_limits()).model_validate(document))
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})

    with ExitStack() as stack:
        postgres = PrivatePostgres(tmp_path / "pg-restart")
        stack.callback(postgres.close)  # last: after the services let go of it
        issuer = TokenIssuer().start()
        stack.callback(issuer.stop)
        kyc = stack.enter_context(
            run_service(
                KYC,
                embedded_infra,
                tokens=issuer,
                database_url=postgres.create_database("kyc"),
                s3_endpoint=infra.s3_endpoint,
                s3_access_key=infra.s3_access_key,
                s3_secret_key=SecretStr(infra.s3_secret_key),
                s3_region=infra.s3_region,
                kyc_bucket=f"mint-kyc-pg-{uuid.uuid4().hex[:8]}",
                limits_file=limits_file,
            )
        )
        wallet = stack.enter_context(
            run_service(
                WALLET,
                embedded_infra,
                tokens=issuer,
                database_url=postgres.create_database("wallet"),
            )
        )
        transactions = stack.enter_context(
            run_service(
                dataclasses.replace(TRANSACTIONS, jobs=[RECOVERY]),
                embedded_infra,
                tokens=issuer,
                database_url=postgres.create_database("transactions"),
                wallet_grpc=wallet.grpc_target,
                kyc_grpc=kyc.grpc_target,
                **RECOVERY_SETTINGS,
            )
        )
        databases = {
            "kyc": kyc.ctx.database(),
            "wallet": wallet.ctx.database(),
            "transactions": transactions.ctx.database(),
        }
        groups = consumer_groups(wallet) + consumer_groups(kyc)
        # The groups that registrations reach (by their spec name, the metrics' label).
        registrations = [g.rsplit(".", 1)[1] for g, topics in groups if "auth.events" in topics]

        users = [uuid.uuid4() for _ in range(CLIENTS)]
        register(producer, users)

        def has_wallet(user: uuid.UUID) -> bool:
            response = wallet.http.get(WALLET_PATH, headers=wallet.headers(user))
            return bool(response.status_code == 200)

        wait_until(lambda: all(map(has_wallet, users)), "wallets of the registered users")
        # Consumers idle at the end of their topics: what they do next is this test's events.
        wait_until(
            lambda: all(caught_up(bootstrap, g, topics) for g, topics in groups),
            "the consumers to catch up with their topics",
        )

        traffic = Traffic(transactions, wallet, users)
        late_users = [uuid.uuid4() for _ in range(3)]
        with clients(traffic):
            wait_until(
                lambda: min(traffic.finals_per_client().values()) >= 2,
                "every client to settle money while PostgreSQL is up",
            )

            postgres.stop()
            traffic.down.set()
            failed_before = {g: failures_of(g, "auth.events") for g in registrations}
            register(producer, late_users)  # the consumers meet these while the database is down

            every_client_of_both = {
                (client, app) for client in range(CLIENTS) for app in ("transactions", "wallet")
            }

            def outage_seen() -> bool:
                """Every client got a 503 from both apps while the database was down, and the
                consumers failed on the registrations at least once (and wait)."""
                answers = traffic.snapshot()
                assert_never_a_server_error(answers)  # fail at once, not at the timeout
                seen = {
                    (a.client, a.path.split("/")[3])  # /api/v1/<app>/...
                    for a in answers
                    if a.while_down and a.status == 503
                }
                consumers_failed = all(
                    failures_of(g, "auth.events") > failed_before[g] for g in registrations
                )
                return seen == every_client_of_both and consumers_failed

            wait_until(outage_seen, "503s to every client and the consumers to meet the outage")
            traffic.down.clear()
            postgres.start()

            after = traffic.finals_per_client()
            wait_until(
                lambda: all(n >= after[c] + 2 for c, n in traffic.finals_per_client().items()),
                "every client to settle money again after the restart",
            )
        # Every client has stopped: each key it sent has its final answer (or is unfinished).
        answers = traffic.snapshot()

        transactions_db = databases["transactions"]
        wait_until(
            lambda: (
                scalar(
                    transactions_db,
                    "SELECT count(*) FROM transactions WHERE status NOT IN ('COMPLETED', 'FAILED')",
                )
                == 0
            ),
            "every transaction to be final",
        )
        wait_until(
            lambda: all(unpublished(db) == 0 for db in databases.values()),
            "the outboxes to drain",
        )
        wait_until(
            lambda: all(caught_up(bootstrap, g, topics) for g, topics in groups),
            "the consumers to catch up after the restart",
        )

        # Clients: never a 500; 503 dependency_unavailable while the database was down.
        assert_never_a_server_error(answers)
        down_503 = [a for a in answers if a.while_down and a.status == 503]
        assert down_503, "no 503 while PostgreSQL was down"
        assert {a.code for a in down_503} == {"dependency_unavailable"}
        last_tries = {
            key: [(a.status, a.code, a.transaction_status) for a in answers if a.key == key][-3:]
            for key in traffic.unfinished
        }
        assert last_tries == {}, f"keys never final (their last answers): {last_tries}"

        # Consumers: nothing dead-lettered, and the users registered during the outage have
        # their wallet and their kyc profile.
        letters = dead_letters(bootstrap, {g for g, _ in groups}, since)
        assert letters == [], f"dead-lettered during the test: {letters}"
        assert all(map(has_wallet, late_users)), "a user registered during the outage has no wallet"
        profiled = scalar(
            databases["kyc"],
            "SELECT count(*) FROM profiles WHERE user_id = ANY(:ids)",
            ids=late_users,
        )
        assert profiled == len(late_users), "a user registered during the outage has no profile"

        # Money: what clients were told is what happened, and it adds up.
        told_completed = {a.transaction_id for a in answers if a.key and a.status == 201}
        with transactions_db.session() as session:
            completed = {
                str(row.id): row
                for row in session.execute(
                    text("SELECT id, type, amount FROM transactions WHERE status = 'COMPLETED'")
                )
            }
        parked = {
            name: scalar(db, "SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL")
            for name, db in databases.items()
        }
        assert told_completed == set(completed), "201 answers and COMPLETED transactions differ"
        assert parked == dict.fromkeys(databases, 0)
        topped_up = sum(row.amount for row in completed.values() if row.type == "TOPUP")
        held_by_users = scalar(
            databases["wallet"],
            "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE kind = 'USER'",
        )
        assert held_by_users == topped_up, "users hold other than what was topped up"

        report = audit(wallet.settings.database_url, transactions.settings.database_url)
        assert report.ok, report.violations
        assert report.stuck == []
