"""mint.kit.idempotency against PostgreSQL: only the claim in flight is completed, so a stored
outcome never changes — neither by a second settlement nor by a late one racing the first."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from mint.infra import EmbeddedInfra
from mint.kit import idempotency
from mint.kit.db import Database, service_metadata
from tests.integration.test_events import wait_until

METADATA = service_metadata()
idempotency.add_idempotency_table(METADATA)
FINGERPRINT = idempotency.fingerprint("POST", "/api/v1/transactions/transfer", {"amount": 100})
OUTCOME_A = (201, {"id": "A", "status": "COMPLETED"})
OUTCOME_B = (503, {"code": "dependency_unavailable", "status": "FAILED"})


@pytest.fixture(scope="module")
def db(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    database = Database(embedded_infra.create_database(f"idem_{uuid.uuid4().hex[:8]}"))
    METADATA.create_all(database.engine)
    yield database
    database.dispose()


def claim(db: Database) -> tuple[uuid.UUID, str]:
    user_id, key = uuid.uuid4(), f"key-{uuid.uuid4().hex[:8]}"
    assert isinstance(idempotency.begin(db, user_id, key, FINGERPRINT), idempotency.Claimed)
    return user_id, key


def test_a_second_complete_leaves_the_stored_outcome(db: Database) -> None:
    user_id, key = claim(db)
    with db.session() as session:
        assert idempotency.complete(session, user_id, key, *OUTCOME_A) is True
    with db.session() as session:
        assert idempotency.complete(session, user_id, key, *OUTCOME_B) is False
    replay = idempotency.begin(db, user_id, key, FINGERPRINT)
    assert replay == idempotency.Replay(*OUTCOME_A)


def test_a_late_complete_racing_the_first_stores_nothing(db: Database) -> None:
    """The late settlement's UPDATE waits on the first one's row lock, then finds the row no
    longer in flight (PostgreSQL re-checks the condition on the committed row)."""
    user_id, key = claim(db)
    late: list[bool] = []
    with db.session() as first:
        assert idempotency.complete(first, user_id, key, *OUTCOME_A) is True

        def settle_late() -> None:
            with db.session() as session:
                late.append(idempotency.complete(session, user_id, key, *OUTCOME_B))

        thread = threading.Thread(target=settle_late, daemon=True)
        thread.start()
        wait_until(lambda: lock_waiters(db) == 1, what="the late settlement waiting")
    thread.join(timeout=30)
    assert late == [False]
    assert idempotency.begin(db, user_id, key, FINGERPRINT) == idempotency.Replay(*OUTCOME_A)


def test_complete_after_the_claim_was_released_stores_nothing(db: Database) -> None:
    user_id, key = claim(db)
    idempotency.abandon(db, user_id, key)
    with db.session() as session:
        assert idempotency.complete(session, user_id, key, *OUTCOME_B) is False
    # The key is free, not answered by an outcome nobody claimed.
    assert isinstance(idempotency.begin(db, user_id, key, FINGERPRINT), idempotency.Claimed)


def lock_waiters(db: Database) -> int:
    """Sessions of this database blocked on a lock."""
    with db.session() as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )
