"""mint.kit.idempotency against PostgreSQL, where `make mutation` found it unproven: a key is one
user's (another user's identical key is a different request), releasing a claim releases that
claim only, cleanup deletes the expired rows and nothing else, and the table a service's migration
creates is the model's, primary key and column sizes included.

Each test names the mutants it kills (mutmut's names, ``mutmut show NAME`` in .mutation/).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select

from mint.infra import EmbeddedInfra
from mint.kit import idempotency
from mint.kit.db import Database, run_migrations, service_metadata
from mint.kit.idempotency import KEYS, TABLE, Claimed, InProgress, Replay
from mint.kit.runner import load_service

METADATA = service_metadata()
idempotency.add_idempotency_table(METADATA)
FINGERPRINT = idempotency.fingerprint("POST", "/api/v1/transactions/transfer", {"amount": 100})
OTHER_REQUEST = idempotency.fingerprint("POST", "/api/v1/transactions/transfer", {"amount": 5})
ALREADY_EXPIRED = timedelta(seconds=-1)


@pytest.fixture(scope="module")
def db(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    database = Database(embedded_infra.create_database(f"idem_scope_{uuid.uuid4().hex[:8]}"))
    METADATA.create_all(database.engine)
    yield database
    database.dispose()


def new_key() -> str:
    return f"key-{uuid.uuid4().hex[:8]}"


def test_the_same_key_of_two_users_is_two_requests(db: Database) -> None:
    """_pk 1-3 (the key looked up without its user): the second user would be told the first
    one's request is in progress, be refused as a reuse, or be replayed the first one's answer;
    and completing one would complete the other's claim."""
    alice, bob, key = uuid.uuid4(), uuid.uuid4(), new_key()
    assert idempotency.begin(db, alice, key, FINGERPRINT) == Claimed()
    assert idempotency.begin(db, bob, key, OTHER_REQUEST) == Claimed()
    with db.session() as session:
        assert idempotency.complete(session, alice, key, 201, {"id": "alice's"}) is True
    assert idempotency.begin(db, bob, key, OTHER_REQUEST) == InProgress()
    with db.session() as session:
        assert idempotency.complete(session, bob, key, 422, {"code": "bob's"}) is True
    assert idempotency.begin(db, alice, key, FINGERPRINT) == Replay(201, {"id": "alice's"})
    assert idempotency.begin(db, bob, key, OTHER_REQUEST) == Replay(422, {"code": "bob's"})


def test_abandoning_a_claim_leaves_every_other_claim_in_flight(db: Database) -> None:
    """abandon 1-4 (the claim deleted without its user or key): another request's claim, still
    doing its work, would vanish and a retry of it would run the work a second time."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    abandoned, kept, shared = new_key(), new_key(), new_key()
    for user, key in ((alice, abandoned), (alice, kept), (alice, shared), (bob, shared)):
        assert idempotency.begin(db, user, key, FINGERPRINT) == Claimed()
    idempotency.abandon(db, alice, abandoned)
    idempotency.abandon(db, bob, shared)
    assert idempotency.begin(db, alice, abandoned, FINGERPRINT) == Claimed()
    assert idempotency.begin(db, alice, kept, FINGERPRINT) == InProgress()
    assert idempotency.begin(db, alice, shared, FINGERPRINT) == InProgress()
    assert idempotency.begin(db, bob, shared, FINGERPRINT) == Claimed()


def test_cleanup_deletes_the_expired_rows_only(db: Database) -> None:
    """cleanup (expired rows selected by user and key, and counted); a live claim and a stored
    outcome stay. An expired row is also taken over by a new request (_try_claim's retake)."""
    user = uuid.uuid4()
    expired = [new_key() for _ in range(3)]
    for key in expired:
        assert idempotency.begin(db, user, key, FINGERPRINT, ttl=ALREADY_EXPIRED) == Claimed()
    live, done = new_key(), new_key()
    assert idempotency.begin(db, user, live, FINGERPRINT) == Claimed()
    assert idempotency.begin(db, user, done, FINGERPRINT) == Claimed()
    with db.session() as session:
        assert idempotency.complete(session, user, done, 201, {"id": "done"}) is True
    retaken = expired.pop()
    assert idempotency.begin(db, user, retaken, OTHER_REQUEST) == Claimed()

    assert idempotency.cleanup(db, batch=1) == 1
    assert idempotency.cleanup(db) == 1
    assert idempotency.cleanup(db) == 0
    with db.session() as session:
        left = set(session.execute(select(KEYS.c.key).where(KEYS.c.user_id == user)).scalars())
        assert left == {live, done, retaken}
    assert idempotency.begin(db, user, done, FINGERPRINT) == Replay(201, {"id": "done"})


def test_a_migrated_table_has_the_models_key_and_columns(embedded_infra: EmbeddedInfra) -> None:
    """_columns (the table of a service's migration, create_idempotency_table): Alembic's
    compare_metadata (test_migrations) sees neither a primary key reduced to ``user_id`` (one
    claim per user at a time, and ON CONFLICT without its unique index) nor a ``String``
    that lost its length."""
    migrations = load_service("transactions").migrations_dir
    assert migrations is not None
    url = embedded_infra.create_database(f"idem_migrated_{uuid.uuid4().hex[:8]}")
    run_migrations(url, migrations)
    database = Database(url, pool_size=1)
    try:
        inspector = inspect(database.engine)
        assert inspector.get_pk_constraint(TABLE)["constrained_columns"] == ["user_id", "key"]
        migrated = {column["name"]: column for column in inspector.get_columns(TABLE)}
        assert set(migrated) == set(KEYS.c.keys())
        for column in KEYS.columns:
            assert migrated[column.name]["nullable"] == column.nullable, column.name
            length = getattr(column.type, "length", None)
            assert getattr(migrated[column.name]["type"], "length", None) == length, column.name
        user = uuid.uuid4()
        for key in (new_key(), new_key()):  # two requests of one user in flight at once
            assert idempotency.begin(database, user, key, FINGERPRINT) == Claimed()
    finally:
        database.dispose()
