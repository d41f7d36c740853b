"""Wallet holds against a real PostgreSQL, where test_wallet.py left them unproven (issue 10 item
3, services.md §2): a capture posts once and emits ``wallet.hold_captured``, is refused while
either account is frozen (the hold stays open, nothing posts), a captured transfer is reversed
like any transfer (an approved review an admin reverses), and concurrent holds or releases
with one id reserve and give back the amount once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from mint.infra import EmbeddedInfra
from mint.kit.db import Database, run_migrations
from mint.wallet import actions, store
from mint.wallet.invariants import check_invariants
from tests.integration.test_wallet import MIGRATIONS, balance, error_code, events, run, uid, user


@pytest.fixture
def db(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    url = embedded_infra.create_database(f"wallet_holds_{uuid.uuid4().hex[:10]}")
    run_migrations(url, MIGRATIONS)
    database = Database(url, pool_size=10)
    run(database, actions.ensure_system_accounts)
    yield database
    database.dispose()


def test_a_capture_posts_once_and_emits_hold_captured(db: Database) -> None:
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.place_hold, "h", alice, 600, "USD")
    first = run(db, actions.capture_hold, "h", bob, "cap", "approved")
    again = run(db, actions.capture_hold, "h", bob, "cap", "approved")
    assert not first.replayed and again.replayed and again.entry_id == first.entry_id
    assert balance(db, alice) == (400, 0) and balance(db, bob) == (600, 0)
    (captured,) = events(db, "wallet.hold_captured")
    assert captured["data"] == {"hold_id": "h", "account": alice, "amount": 600, "currency": "USD"}
    assert captured["actor"] == str(uid(alice))
    assert len(events(db, "wallet.transfer_posted", "cap")) == 1
    posted = run(db, actions.get_transfer, "cap")
    assert (posted.kind, posted.from_account, posted.to_account) == ("CAPTURE", alice, bob)
    assert run(db, store.get_hold, "h").status == "CAPTURED"
    assert run(db, check_invariants) == []


@pytest.mark.parametrize(
    ("frozen", "reason"), [("payer", "sender_frozen"), ("payee", "recipient_frozen")]
)
def test_a_capture_is_refused_while_an_account_is_frozen(
    db: Database, frozen: str, reason: str
) -> None:
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.place_hold, "h", alice, 600, "USD")
    who = uid(alice if frozen == "payer" else bob)
    run(db, actions.set_frozen, who, True)
    assert error_code(db, actions.capture_hold, "h", bob, "cap", "") == reason
    assert run(db, store.get_transfer, "cap") is None and not events(db, "wallet.hold_captured")
    assert balance(db, alice) == (1_000, 600) and balance(db, bob) == (0, 0)  # still held
    run(db, actions.set_frozen, who, False)
    assert run(db, actions.capture_hold, "h", bob, "cap", "").amount == 600
    assert balance(db, alice) == (400, 0) and balance(db, bob) == (600, 0)
    assert run(db, check_invariants) == []


def test_a_captured_transfer_is_reversed_like_a_transfer(db: Database) -> None:
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.place_hold, "h", alice, 300, "USD")
    run(db, actions.capture_hold, "h", bob, "cap", "")
    mirror = run(db, actions.reverse, "cap", "rev")
    assert (mirror.from_account, mirror.to_account, mirror.reversal_of) == (bob, alice, "cap")
    assert balance(db, alice) == (1_000, 0) and balance(db, bob) == (0, 0)
    assert run(db, actions.reverse, "cap", "rev").replayed
    assert error_code(db, actions.reverse, "cap", "rev-2") == "already_reversed"
    assert run(db, check_invariants) == []


def test_concurrent_holds_and_releases_with_one_id_count_once(db: Database) -> None:
    alice = user(db, 1_000)
    with ThreadPoolExecutor(8) as pool:
        placed = list(
            pool.map(lambda _: run(db, actions.place_hold, "h", alice, 700, "USD"), range(8))
        )
    assert sum(not p.replayed for p in placed) == 1 and balance(db, alice) == (1_000, 700)
    assert len(events(db, "wallet.hold_placed")) == 1
    with ThreadPoolExecutor(8) as pool:
        released = list(pool.map(lambda _: run(db, actions.release_hold, "h"), range(8)))
    assert sum(not r.replayed for r in released) == 1 and balance(db, alice) == (1_000, 0)
    assert len(events(db, "wallet.hold_released")) == 1
    assert run(db, check_invariants) == []
