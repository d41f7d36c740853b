"""Duplicate and out-of-order delivery of the same events to every consumer that exists
(quality.md "Reliability"; conventions.md "Events": consumers are idempotent) — wallet
(``auth.user_registered`` → a wallet) and kyc (``auth.user_registered`` → a profile,
``auth.user_verified`` → BASIC, ``admin.kyc_approved`` / ``admin.kyc_rejected`` → the decision
of the review in progress).

Each service runs for real (``run_service``: its own ConsumerRunners, in consumer groups of their
own, on the session's Kafka). Events go on the wire as their producer sends them — CloudEvents
headers, key = the user, one ``ce_id`` per event — and each is delivered several times:

* copies published at once from several producers (a relay retrying after a lost ack, two relay
  replicas);
* the same message handled at once by more consumer replicas of the group (a rebalance hands a
  partition over before its old owner committed), racing the service's own consumer;
* a copy redelivered later, after the state it acted on has changed.

Effects are counted where they land: the service's own rows, its outbox (one event per state
change) and ``processed_events`` (each event handled exactly once per group: none skipped, none
dead-lettered).

The correct final states (services.md §5): a profile exists whichever auth event comes first, and
a verified e-mail makes it BASIC even when the verification overtakes the registration; a review
decision applies to the review in progress only — the first decision closes it, a later one for
the closed review changes nothing — and an event handled once never acts again, even when the
profile is under review again by the time the copy arrives.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from sqlalchemy import func, select

from mint.contracts.admin import KycApproved, KycRejected
from mint.contracts.auth import UserRegistered, UserVerified
from mint.contracts.base import EventContract
from mint.fraud import events as fraud_events
from mint.infra import EmbeddedInfra
from mint.kit.events import PROCESSED_EVENTS, ConsumerRunner, ConsumerSpec, build_headers
from mint.kyc import events as kyc_events
from mint.kyc.models import Profile
from mint.transactions import events as txn_events
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.wallet import events as wallet_events
from mint.wallet.models import Account
from mint.wallet.service import SERVICE as WALLET_SERVICE
from tests.fixtures.documents import make_pdf, make_png
from tests.fixtures.kyc_service import Kyc, kyc, wait_until
from tests.harness import RunningService, run_service

__all__ = ["kyc"]  # the module-scoped kyc service fixture

WALLET_GROUP, KYC_AUTH_GROUP, KYC_ADMIN_GROUP = "wallet", "kyc-auth", "kyc-admin"
CONSUMERS: dict[str, ConsumerSpec] = {
    spec.group: spec for spec in [*wallet_events.CONSUMERS, *kyc_events.CONSUMERS]
}
#: Concurrent copies of one event: published at once, or handled at once by extra replicas.
COPIES = 4
REPLICAS = 3
BLURRED = "document is blurred"
#: What reading a group's offsets answers while its coordinator is being elected (a new group).
COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TIMED_OUT,
    }
)


#: Consumers whose duplicate and out-of-order deliveries are tested beside their service:
#: group → (routes, the module that tests them).
COVERED_ELSEWHERE = {
    "fraud-transactions": (
        {"transaction.completed", "transaction.cancelled", "transaction.failed"},
        "tests/integration/test_fraud.py",
    ),
    "transactions-fraud": (
        {"fraud.case_reviewed"},
        "tests/integration/test_transactions_review.py, tests/e2e/test_fraud_review.py",
    ),
}


def test_every_consumer_that_exists_is_covered() -> None:
    """A new consumer (or a new route of one) needs its delivery cases here or in the module
    ``COVERED_ELSEWHERE`` names."""
    routes = {group: {r.contract.TYPE for r in spec.routes} for group, spec in CONSUMERS.items()}
    assert routes == {
        WALLET_GROUP: {"auth.user_registered"},
        KYC_AUTH_GROUP: {"auth.user_registered", "auth.user_verified"},
        KYC_ADMIN_GROUP: {"admin.kyc_approved", "admin.kyc_rejected"},
    }
    fraud = {spec.group: {r.contract.TYPE for r in spec.routes} for spec in fraud_events.CONSUMERS}
    assert fraud == {"fraud-transactions": COVERED_ELSEWHERE["fraud-transactions"][0]}
    consumers = TXN_SERVICE.consumers
    assert callable(consumers)  # built from the wiring: its routes are read from the module
    assert {r.contract.TYPE for r in txn_events.ROUTES} == COVERED_ELSEWHERE["transactions-fraud"][
        0
    ]


# ---- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One event as its producer puts it on the wire; every copy carries the same ``ce_id``."""

    contract: EventContract
    actor: str = "system"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def produce(self, producer: Producer, on_delivery: Callable[[Any, Any], None]) -> None:
        headers = build_headers(
            id=self.id,
            type=self.contract.TYPE,
            source=self.contract.SOURCE,
            subject=self.contract.subject(),
            actor=self.actor,
            time=datetime.now(UTC),
        )
        producer.produce(
            self.contract.TOPIC,
            self.contract.model_dump_json().encode(),
            self.contract.key().encode(),
            headers=list(headers),
            on_delivery=on_delivery,
        )


def deliver(bootstrap: str, event: Delivery, copies: int = 1) -> list[TopicPartition]:
    """Publish ``copies`` of ``event`` at the same moment, each from its own producer; returns
    where each copy landed (they share a partition: the key is the user)."""
    barrier = threading.Barrier(copies)
    landed: list[TopicPartition] = []
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if err is not None or topic is None or partition is None or offset is None:
            errors.append(err or KafkaError(KafkaError._FAIL))
        else:
            landed.append(TopicPartition(topic, partition, offset))

    def publish() -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
        barrier.wait(timeout=30)
        event.produce(producer, delivered)
        assert producer.flush(15) == 0, "a copy was not delivered"

    with ThreadPoolExecutor(copies) as pool:
        for publishing in [pool.submit(publish) for _ in range(copies)]:
            publishing.result()
    assert not errors and len(landed) == copies, errors
    return landed


def read_back(bootstrap: str, where: TopicPartition) -> Message:
    """The message at ``where``, as a consumer of the topic receives it."""
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-back-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    try:
        reader.assign([where])
        msg: Message | None = wait_until(
            lambda: _polled(reader), timeout=30, what=f"the message at {where}"
        )
        assert msg is not None
        return msg
    finally:
        reader.close()


def _polled(reader: Consumer) -> Message | None:
    msg = reader.poll(0.2)
    return msg if msg is not None and msg.error() is None else None


def in_replicas(svc: RunningService, group: str, where: TopicPartition) -> None:
    """Hand the message at ``where`` to ``REPLICAS`` more consumers of ``group`` at once, racing
    each other and the service's own consumer (as during a rebalance)."""
    msg = read_back(svc.settings.kafka_bootstrap_servers, where)
    barrier = threading.Barrier(REPLICAS)
    stop = threading.Event()

    def replica() -> None:
        runner = ConsumerRunner(
            CONSUMERS[group],
            db=svc.ctx.database(),
            settings=svc.settings,
            service=svc.ctx.service.name,
        )
        barrier.wait(timeout=30)
        runner.process(msg, stop)

    with ThreadPoolExecutor(REPLICAS) as pool:
        for handling in [pool.submit(replica) for _ in range(REPLICAS)]:
            handling.result()


def wait_drained(svc: RunningService, timeout: float = 60) -> None:
    """Until every consumer group of ``svc`` has committed past everything its topics hold now:
    all delivered so far is handled (a consumer commits only after its transaction)."""
    settings = svc.settings
    for spec in svc.ctx.service.consumer_specs(svc.ctx):
        group = f"{settings.consumer_group_prefix}.{svc.ctx.service.name}.{spec.group}"
        probe = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": group,  # only reads the group's offsets: never joins it
                "enable.auto.commit": False,
                "log_level": 3,
            }
        )
        try:
            ends = _ends(probe, spec.subscribed)
            caught_up = partial(_caught_up, probe, ends)
            wait_until(caught_up, timeout=timeout, what=f"{group} to catch up")
        finally:
            probe.close()


def _ends(probe: Consumer, topics: list[str]) -> dict[tuple[str, int], int]:
    """The next offset of each partition of ``topics`` that holds anything (an empty one has
    no committed offset to wait for)."""
    ends = {}
    for topic in topics:
        for p in probe.list_topics(topic, timeout=10).topics[topic].partitions:
            _, high = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > 0:
                ends[(topic, p)] = high
    return ends


def _caught_up(probe: Consumer, ends: dict[tuple[str, int], int]) -> bool:
    try:
        committed = probe.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
    except KafkaException as exc:
        if exc.args[0].code() in COORDINATOR_NOT_READY:
            return False  # a new group's coordinator is still being elected
        raise
    return all(c.offset >= ends[(c.topic, c.partition)] for c in committed)


# ---- what happened --------------------------------------------------------------------------


def handled(svc: RunningService, group: str, event: Delivery) -> int:
    """Rows of ``event`` in ``processed_events`` for ``group``: 1 once it was handled (a
    dead-lettered event has none)."""
    query = select(func.count()).where(
        PROCESSED_EVENTS.c.group == group, PROCESSED_EVENTS.c.event_id == event.id
    )
    with svc.session() as session:
        return int(session.scalar(query) or 0)


def emitted(svc: RunningService, type: str, user: uuid.UUID) -> list[dict[str, Any]]:
    """The data of the ``type`` events the service emitted about ``user``, oldest first."""
    return [dict(row["data"]) for row in svc.outbox(type, key=str(user))]


def count(svc: RunningService, column: Any, user: uuid.UUID) -> int:
    with svc.session() as session:
        return int(session.scalar(select(func.count()).where(column == user)) or 0)


# ---- wallet ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wallet(embedded_infra: EmbeddedInfra) -> Iterator[RunningService]:
    with run_service(WALLET_SERVICE, embedded_infra) as svc:
        yield svc


def registration(user: uuid.UUID) -> Delivery:
    contract = UserRegistered(user_id=user, email=f"{user.hex[:10]}@example.test", name="Ada")
    return Delivery(contract, actor=str(user))


def test_a_registration_delivered_every_way_opens_one_wallet(wallet: RunningService) -> None:
    bootstrap = wallet.settings.kafka_bootstrap_servers
    user = uuid.uuid4()
    registered = registration(user)
    landed = deliver(bootstrap, registered, copies=COPIES)
    in_replicas(wallet, WALLET_GROUP, landed[-1])
    wait_drained(wallet)
    deliver(bootstrap, registered)  # redelivered once the wallet exists
    wait_drained(wallet)

    assert count(wallet, Account.owner_user_id, user) == 1
    [created] = emitted(wallet, "wallet.created", user)
    assert (created["user_id"], created["currency"]) == (str(user), "USD")
    assert handled(wallet, WALLET_GROUP, registered) == 1


# ---- kyc: auth events -----------------------------------------------------------------------


def test_verification_before_registration_still_makes_one_basic_profile(kyc: Kyc) -> None:
    bootstrap = kyc.settings.kafka_bootstrap_servers
    user = uuid.uuid4()
    registered = registration(user)
    verified = Delivery(UserVerified(user_id=user), actor=str(user))
    # The verification overtakes the registration, both in concurrent copies and replicas.
    landed = deliver(bootstrap, verified, copies=COPIES)
    in_replicas(kyc.service, KYC_AUTH_GROUP, landed[-1])
    landed = deliver(bootstrap, registered, copies=COPIES)
    in_replicas(kyc.service, KYC_AUTH_GROUP, landed[-1])
    wait_drained(kyc.service)
    for late in (verified, registered):  # and each is redelivered once the profile is BASIC
        deliver(bootstrap, late)
    wait_drained(kyc.service)

    assert count(kyc.service, Profile.user_id, user) == 1
    profile = kyc.profile(user)
    assert profile is not None and (profile.tier, profile.status) == ("BASIC", "NONE")
    assert emitted(kyc.service, "kyc.profile_created", user) == [{"user_id": str(user)}]
    assert emitted(kyc.service, "kyc.tier_upgraded", user) == [
        {"user_id": str(user), "previous_tier": "UNVERIFIED", "new_tier": "BASIC"}
    ]
    assert handled(kyc.service, KYC_AUTH_GROUP, verified) == 1
    assert handled(kyc.service, KYC_AUTH_GROUP, registered) == 1


# ---- kyc: review decisions ------------------------------------------------------------------


def decision(user: uuid.UUID, profile_id: uuid.UUID, *, approved: bool) -> Delivery:
    """An admin's decision on the user's profile (admin.events, keyed by the user)."""
    fields: dict[str, Any] = {
        "target_type": "kyc_profile",
        "target_id": str(profile_id),
        "before": {"status": "PENDING_REVIEW"},
        "profile_id": profile_id,
        "user_id": user,
    }
    contract: EventContract = (
        KycApproved(**fields, reason="documents match", after={"status": "APPROVED"})
        if approved
        else KycRejected(**fields, reason=BLURRED, after={"status": "REJECTED"})
    )
    return Delivery(contract, actor=str(uuid.uuid4()))


def review_state(kyc: Kyc, user: uuid.UUID) -> tuple[str, str, str | None, set[str]]:
    """(tier, status, rejection reason, statuses of its documents) as the user reads them."""
    body = kyc.get(user).json()
    documents = {d["status"] for d in body["documents"]}
    return body["tier"], body["status"], body["rejection_reason"], documents


def new_tiers(kyc: Kyc, user: uuid.UUID) -> list[str]:
    return [e["new_tier"] for e in emitted(kyc.service, "kyc.tier_upgraded", user)]


def profile_id_of(kyc: Kyc, user: uuid.UUID) -> uuid.UUID:
    profile = kyc.profile(user)
    assert profile is not None
    profile_id: uuid.UUID = profile.id
    return profile_id


@pytest.mark.parametrize("first", ["approved", "rejected"])
def test_the_first_decision_closes_the_review_and_applies_once(kyc: Kyc, first: str) -> None:
    bootstrap = kyc.settings.kafka_bootstrap_servers
    user = kyc.submitted()
    profile_id = profile_id_of(kyc, user)
    approval = decision(user, profile_id, approved=True)
    rejection = decision(user, profile_id, approved=False)
    earlier, later = (approval, rejection) if first == "approved" else (rejection, approval)
    landed = deliver(bootstrap, earlier, copies=COPIES)
    in_replicas(kyc.service, KYC_ADMIN_GROUP, landed[-1])
    later_landed = deliver(bootstrap, later, copies=COPIES)
    in_replicas(kyc.service, KYC_ADMIN_GROUP, later_landed[-1])
    wait_drained(kyc.service)

    failures = emitted(kyc.service, "kyc.verification_failed", user)
    if first == "approved":
        assert review_state(kyc, user) == ("VERIFIED", "APPROVED", None, {"APPROVED"})
        assert new_tiers(kyc, user) == ["BASIC", "VERIFIED"]
        assert failures == []
    else:
        assert review_state(kyc, user) == ("BASIC", "REJECTED", BLURRED, {"REJECTED"})
        assert new_tiers(kyc, user) == ["BASIC"]
        assert failures == [{"user_id": str(user), "reason": BLURRED}]
    # both handled once (the later one as a decision on a closed review), none dead-lettered
    assert handled(kyc.service, KYC_ADMIN_GROUP, earlier) == 1
    assert handled(kyc.service, KYC_ADMIN_GROUP, later) == 1


def test_a_handled_decision_never_acts_on_a_later_review(kyc: Kyc) -> None:
    bootstrap = kyc.settings.kafka_bootstrap_servers
    user = kyc.registered(verified=True)
    profile_id = profile_id_of(kyc, user)

    # An approval arriving before the profile is submitted: nothing under review, ignored —
    # handled (not dead-lettered, not retried forever) and nothing changes.
    early = decision(user, profile_id, approved=True)
    deliver(bootstrap, early)
    wait_drained(kyc.service)
    assert review_state(kyc, user) == ("BASIC", "NONE", None, set())
    assert handled(kyc.service, KYC_ADMIN_GROUP, early) == 1

    # The user submits; copies of that early approval arrive during the review: the event was
    # handled already, so the new review stays open.
    assert kyc.upload(user, "PASSPORT", make_pdf(), "passport.pdf").status_code == 201
    assert kyc.upload(user, "SELFIE", make_png(), "me.png").status_code == 201
    assert kyc.submit(user).status_code == 202
    deliver(bootstrap, early, copies=COPIES)
    wait_drained(kyc.service)
    assert review_state(kyc, user) == ("BASIC", "PENDING_REVIEW", None, {"SUBMITTED"})

    # Rejected; the user resubmits; copies of that rejection arrive during the second review.
    rejection = decision(user, profile_id, approved=False)
    deliver(bootstrap, rejection)
    wait_drained(kyc.service)
    assert review_state(kyc, user) == ("BASIC", "REJECTED", BLURRED, {"REJECTED"})
    assert kyc.upload(user, "SELFIE", make_png(rgb=(1, 2, 3)), "me.png").status_code == 201
    assert kyc.submit(user).status_code == 202
    deliver(bootstrap, rejection, copies=COPIES)
    wait_drained(kyc.service)
    assert review_state(kyc, user) == ("BASIC", "PENDING_REVIEW", None, {"SUBMITTED"})

    # The second review's own decision closes it.
    approval = decision(user, profile_id, approved=True)
    deliver(bootstrap, approval)
    wait_drained(kyc.service)
    assert review_state(kyc, user) == ("VERIFIED", "APPROVED", None, {"APPROVED"})
    assert new_tiers(kyc, user) == ["BASIC", "VERIFIED"]
    assert emitted(kyc.service, "kyc.verification_failed", user) == [
        {"user_id": str(user), "reason": BLURRED}
    ]
    assert (
        emitted(kyc.service, "kyc.submitted", user)
        == [{"user_id": str(user), "profile_id": str(profile_id)}] * 2
    )
    for event in (early, rejection, approval):
        assert handled(kyc.service, KYC_ADMIN_GROUP, event) == 1
