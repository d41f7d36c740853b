"""The wallet against a real PostgreSQL, where `make mutation` found it unproven: a hold is
refused like a transfer's sender (not more than available, not on a frozen account), a capture
racing a release of the same hold never moves released money, a first reversal is not a replay,
and the ledger's events name whose money moved.

Each test names the mutants it kills (mutmut's names, ``mutmut show NAME`` in .mutation/).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from mint.contracts.money import FUNDING_ACCOUNT
from mint.infra import EmbeddedInfra
from mint.kit.db import Database, run_migrations
from mint.kit.domain import DomainError
from mint.wallet import actions
from mint.wallet.invariants import check_invariants
from tests.integration.test_events import wait_until
from tests.integration.test_idempotency import lock_waiters
from tests.integration.test_wallet import (
    MIGRATIONS,
    balance,
    error_code,
    events,
    run,
    uid,
    user,
)


@pytest.fixture
def db(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    url = embedded_infra.create_database(f"wallet_holds_{uuid.uuid4().hex[:10]}")
    run_migrations(url, MIGRATIONS)
    database = Database(url, pool_size=5)
    run(database, actions.ensure_system_accounts)
    yield database
    database.dispose()


def test_a_hold_is_refused_beyond_available_funds_and_on_a_frozen_account(db: Database) -> None:
    """place_hold 37 (the refusal skipped): a hold over the available balance, or on a frozen
    wallet, would reserve money the user does not have."""
    alice = user(db, 1_000)
    run(db, actions.place_hold, "first", alice, 700, "USD")
    assert error_code(db, actions.place_hold, "too-much", alice, 301, "USD") == (
        "insufficient_funds"
    )
    assert balance(db, alice) == (1_000, 700)
    run(db, actions.set_frozen, uid(alice), True)
    assert error_code(db, actions.place_hold, "frozen", alice, 1, "USD") == "sender_frozen"
    assert balance(db, alice) == (1_000, 700)
    assert run(db, check_invariants) == []


def test_hold_events_name_the_owner_as_actor(db: Database) -> None:
    """_emit_hold 13 (actor dropped) and the owner/"system" choice: the audit trail of a hold
    says whose money it reserved."""
    alice = user(db, 500)
    run(db, actions.place_hold, "h", alice, 200, "USD")
    run(db, actions.release_hold, "h")
    for type_ in ("wallet.hold_placed", "wallet.hold_released"):
        (event,) = events(db, type_)
        assert event["actor"] == str(uid(alice))


def test_a_capture_racing_a_release_of_the_same_hold_moves_nothing(db: Database) -> None:
    """hold_row 7 (``populate_existing`` off): the capture read the hold OPEN, then waited on the
    account lock while a release committed; re-read under the lock without refreshing, it
    would still look OPEN and the released money would be captured."""
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.place_hold, "h", alice, 600, "USD")
    outcome: list[BaseException | object] = []

    def capture() -> None:
        try:
            outcome.append(run(db, actions.capture_hold, "h", bob, "cap", ""))
        except BaseException as exc:  # reported below, whatever it is
            outcome.append(exc)

    capturer = threading.Thread(target=capture, daemon=True)
    with db.session() as releasing:
        actions.release_hold(releasing, "h")  # holds alice's account lock until the commit
        capturer.start()
        wait_until(lambda: lock_waiters(db) == 1, what="the capture waiting on the account lock")
    capturer.join(timeout=60)
    assert not capturer.is_alive()
    (result,) = outcome
    assert isinstance(result, DomainError) and result.code == "hold_released", result
    assert balance(db, alice) == (1_000, 0) and balance(db, bob) == (0, 0)
    assert run(db, check_invariants) == []


def test_a_first_reversal_is_posted_not_replayed(db: Database) -> None:
    """reverse 85 (the posted entry taken for a lost race: the first reversal answered as a
    replay) and 5 (the code of a malformed transfer id)."""
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.transfer, "pay", alice, bob, 400, "USD", "")
    first = run(db, actions.reverse, "pay", "rev-1")
    assert not first.replayed and first.amount == 400
    assert run(db, actions.reverse, "pay", "rev-1").replayed
    assert error_code(db, actions.reverse, "", "rev-2") == "invalid_transfer_id"
    assert balance(db, alice) == (1_000, 0) and balance(db, bob) == (0, 0)


def test_a_posted_transfer_names_whose_money_moved(db: Database) -> None:
    """_post_entry 86 (every entry's actor "system"): the sender of a transfer, the recipient
    of a top-up; a reversal is the system's."""
    alice, bob = user(db), user(db)
    run(db, actions.transfer, "top-up", FUNDING_ACCOUNT, alice, 500, "USD", "")
    run(db, actions.transfer, "pay", alice, bob, 200, "USD", "")
    run(db, actions.reverse, "pay", "undo")
    actors = {e["data"]["transfer_id"]: e["actor"] for e in events(db, "wallet.transfer_posted")}
    assert actors["top-up"] == str(uid(alice))
    assert actors["pay"] == str(uid(alice))
    assert actors["undo"] == "system"
