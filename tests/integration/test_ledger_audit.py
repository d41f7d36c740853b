"""The cross-service ledger audit (``mint.ledger_audit``, ``mint ledger check``) against the real
wallet and transactions services (``transactions_env``: each on its own PostgreSQL database, real
kyc): healthy movements pass; each deliberate corruption of one database is named by the check
it breaks, and only by it; stuck transactions are reported without failing; audits taken while
money moves never report the movements in flight between their two snapshots.

Every corruption is undone when its test ends (and the test proves the audit is clean again), so
the tests share one pair of databases in any order."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from mint.cli_ledger import ledger_app
from mint.contracts.money import FUNDING_ACCOUNT, user_account
from mint.kit.db import Database
from mint.kit.http import create_app
from mint.kit.service import ServiceContext
from mint.ledger_audit import LedgerAudit, audit
from mint.transactions import actions as txn_actions
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.wallet import actions as wallet_actions
from tests.integration.transactions_env import BASE, Env, User, env, free_port, kyc

__all__ = ["env", "kyc"]  # module-scoped: the real servers (kyc included)


# ---- helpers ------------------------------------------------------------------------------------


def urls(env: Env) -> tuple[str, str]:
    """(wallet, transactions) database URLs of the running services."""
    return env.wallet.ctx.settings.database_url, env.ctx.settings.database_url


def run_audit(env: Env, **kw: Any) -> LedgerAudit:
    return audit(*urls(env), **kw)


def assert_clean(env: Env) -> LedgerAudit:
    report = run_audit(env)
    assert report.ok and not report.stuck and not report.in_flight, report
    return report


def transfer(env: Env, sender: User, recipient: User, amount: int) -> str:
    r = env.post(sender, "/transfer", {"recipient_id": str(recipient.id), "amount": amount})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def the_one(violations: list[str], check: str, txn_id: str) -> str:
    """The audit named exactly one violation, of ``check``, about ``txn_id``."""
    assert len(violations) == 1, violations
    (line,) = violations
    assert line.startswith(f"{check}: ") and txn_id in line, line
    return line


def set_transaction(env: Env, txn_id: str, **values: Any) -> dict[str, Any]:
    """Overwrite columns of a transaction row; returns what they were."""
    columns = ", ".join(values)
    assignments = ", ".join(f"{c} = :{c}" for c in values)
    with env.db.session() as s:
        before = (
            s.execute(text(f"SELECT {columns} FROM transactions WHERE id = :id"), {"id": txn_id})
            .one()
            ._asdict()
        )
        s.execute(
            text(f"UPDATE transactions SET {assignments} WHERE id = :id"), {**values, "id": txn_id}
        )
    return before


@contextmanager
def transaction_changed(env: Env, txn_id: str, **values: Any) -> Iterator[None]:
    before = set_transaction(env, txn_id, **values)
    try:
        yield
    finally:
        set_transaction(env, txn_id, **before)


Removed = tuple[dict[str, Any], list[dict[str, Any]]]


def remove_entry(wallet_db: Database, transfer_id: str) -> Removed:
    """The wallet loses one movement: its entry and postings deleted, the balances put back as
    if it never posted (so every wallet invariant still holds). The entry must be the last
    posting on its accounts (fresh users), or the balance_after chain breaks."""
    with wallet_db.session() as s:
        entry = dict(
            s.execute(
                text("SELECT * FROM journal_entries WHERE transfer_id = :t"), {"t": transfer_id}
            ).mappings().one()
        )  # fmt: skip
        postings = [
            dict(p)
            for p in s.execute(
                text("SELECT * FROM postings WHERE entry_id = :e ORDER BY id"), {"e": entry["id"]}
            ).mappings()
        ]
        move_balances(s, postings, sign=-1)
        s.execute(text("DELETE FROM postings WHERE entry_id = :e"), {"e": entry["id"]})
        s.execute(text("DELETE FROM journal_entries WHERE id = :e"), {"e": entry["id"]})
    return entry, postings


def restore_entry(wallet_db: Database, removed: Removed) -> None:
    entry, postings = removed
    with wallet_db.session() as s:
        insert(s, "journal_entries", entry)
        for posting in postings:
            insert(s, "postings", posting)
        move_balances(s, postings, sign=1)


@contextmanager
def entry_removed(wallet_db: Database, transfer_id: str) -> Iterator[None]:
    removed = remove_entry(wallet_db, transfer_id)
    try:
        yield
    finally:
        restore_entry(wallet_db, removed)


def move_balances(session: Any, postings: list[Any], sign: int) -> None:
    for p in postings:
        session.execute(
            text("UPDATE accounts SET balance = balance + :d WHERE id = :a"),
            {"d": sign * p["amount"], "a": p["account_id"]},
        )


def insert(session: Any, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    values = ", ".join(f":{c}" for c in row)
    session.execute(text(f"INSERT INTO {table} ({names}) VALUES ({values})"), row)


def post_directly(env: Env, transfer_id: str, from_code: str, to_code: str, amount: int) -> None:
    """A wallet ``Transfer`` not made by transactions (as a test or a future admin flow would)."""
    with env.wallet_db.session() as s:
        wallet_actions.transfer(s, transfer_id, from_code, to_code, amount)


# ---- healthy ------------------------------------------------------------------------------------


def test_healthy_movements_pass(env: Env) -> None:
    alice, bob, carol = env.user(10_000), env.user(), env.user()
    transfer(env, alice, bob, 2_500)
    r = env.post(bob, "/withdraw", {"amount": 1_000})
    assert r.status_code == 201, r.text
    refused = env.post(carol, "/transfer", {"recipient_id": str(bob.id), "amount": 50})
    assert refused.status_code == 422 and refused.json()["code"] == "insufficient_funds"
    retry_key = str(uuid.uuid4())
    first = env.post(alice, "/topup", {"amount": 700}, key=retry_key)
    again = env.post(alice, "/topup", {"amount": 700}, key=retry_key)
    assert again.json()["id"] == first.json()["id"]
    # Money the wallet moved on someone else's behalf, under an id that is no transaction's.
    post_directly(env, f"fund-{uuid.uuid4()}", FUNDING_ACCOUNT, user_account(carol.id), 300)

    report = assert_clean(env)
    assert report.counts["transactions"] >= 5
    assert report.counts["foreign_entries"] >= 1


# ---- each corruption, named ---------------------------------------------------------------------


def test_a_completed_transaction_whose_entry_is_gone(env: Env) -> None:
    alice, bob = env.user(1_000), env.user()
    txn_id = transfer(env, alice, bob, 300)
    with entry_removed(env.wallet_db, txn_id):
        report = run_audit(env)
        line = the_one(report.violations, "settled_has_entry", txn_id)
        assert "COMPLETED" in line and "no wallet entry" in line
    assert_clean(env)


@pytest.mark.parametrize("column", ["amount", "currency", "recipient_id"])
def test_an_entry_that_moves_something_else(env: Env, column: str) -> None:
    alice, bob = env.user(1_000), env.user()
    txn_id = transfer(env, alice, bob, 300)
    wrong = {"amount": 301, "currency": "EUR", "recipient_id": uuid.uuid4()}[column]
    with transaction_changed(env, txn_id, **{column: wrong}):
        line = the_one(run_audit(env).violations, "entry_matches_transaction", txn_id)
        assert f"300 USD {user_account(alice.id)} -> {user_account(bob.id)}" in line, line
    assert_clean(env)


def test_an_entry_without_its_transaction(env: Env) -> None:
    alice, bob = env.user(1_000), env.user()
    stray = str(uuid.uuid4())  # looks like a transaction id; no transaction has it
    post_directly(env, stray, user_account(alice.id), user_account(bob.id), 200)
    try:
        line = the_one(run_audit(env).violations, "entry_has_transaction", stray)
        assert "200 USD" in line
    finally:
        remove_entry(env.wallet_db, stray)
    assert_clean(env)


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "PENDING"])
def test_a_transaction_that_moved_nothing_but_has_an_entry(env: Env, status: str) -> None:
    alice, bob = env.user(1_000), env.user()
    txn_id = transfer(env, alice, bob, 300)
    reason = "insufficient_funds" if status == "FAILED" else None
    with transaction_changed(env, txn_id, status=status, failure_reason=reason):
        line = the_one(run_audit(env).violations, "unmoved_has_no_entry", txn_id)
        assert status in line and "300 USD" in line
    assert_clean(env)


def test_processing_with_its_entry_is_in_flight(env: Env) -> None:
    """Posted, COMPLETED not yet written (a crash, or the audit reading between the two): the
    flow or recovery completes it — not a violation."""
    alice, bob = env.user(1_000), env.user()
    txn_id = transfer(env, alice, bob, 300)
    with transaction_changed(env, txn_id, status="PROCESSING"):
        report = run_audit(env)
        assert report.ok, report.violations
        assert [line for line in report.in_flight if txn_id in line], report.in_flight
    assert_clean(env)


def test_reversals(env: Env) -> None:
    alice, bob = env.user(1_000), env.user()
    reversed_id = transfer(env, alice, bob, 300)
    with env.wallet_db.session() as s:
        wallet_actions.reverse(s, reversed_id, f"reversal-{reversed_id}")
    reversal = f"reversal-{reversed_id}"
    try:
        # Reversed in the wallet, the transaction still COMPLETED: the admin flow's second step
        # may be on its way within the window; past it, a violation.
        report = run_audit(env)
        assert report.ok and [x for x in report.in_flight if reversed_id in x], report
        line = the_one(
            run_audit(env, stuck_after_seconds=0).violations, "completed_not_reversed", reversed_id
        )
        assert reversal in line
        with transaction_changed(env, reversed_id, status="REVERSED"):
            assert_clean(env)
    finally:
        remove_entry(env.wallet_db, reversal)  # the last posting on both accounts
    # REVERSED with no reversal entry.
    carol, dave = env.user(1_000), env.user()
    txn_id = transfer(env, carol, dave, 300)
    with transaction_changed(env, txn_id, status="REVERSED"):
        the_one(run_audit(env).violations, "reversed_has_reversal", txn_id)
    assert_clean(env)


# ---- stuck --------------------------------------------------------------------------------------


def test_a_stuck_processing_transaction_is_reported_not_failed(env: Env) -> None:
    alice = env.user()
    down = env.settings.model_copy(update={"wallet_grpc": f"127.0.0.1:{free_port()}"})
    with TestClient(create_app(ServiceContext(TXN_SERVICE, down, env.db))) as client:
        headers = {**alice.headers, "Idempotency-Key": str(uuid.uuid4())}
        r = client.post(f"{BASE}/topup", json={"amount": 400}, headers=headers)
    assert r.status_code == 503 and r.json()["transaction_status"] == "PROCESSING", r.text
    txn_id = r.json()["transaction_id"]
    assert not run_audit(env).stuck  # just now: not past the window
    env.backdate(txn_id, seconds=3600)
    report = run_audit(env)
    assert report.ok, report.violations
    (line,) = report.stuck
    assert txn_id in line and "PROCESSING" in line, line

    cli = CliRunner().invoke(ledger_app, ["check", *cli_urls(env)])
    assert cli.exit_code == 0, cli.output
    assert "STUCK: 1 transaction(s)" in cli.output and txn_id in cli.output

    # Recovery re-drives the wallet (now reachable): settled, nothing stuck, nothing wrong.
    assert txn_actions.recover(env.wire).completed >= 1
    assert_clean(env)


def test_a_review_hold_is_open_only_while_its_transaction_waits(env: Env) -> None:
    """A REVIEW holds its amount (services.md §3): clean while PENDING under review; a hold still
    open once its transaction is settled, or under a transaction id no transaction has, keeps
    money out of the user's reach — named ``open_hold_has_review``."""
    alice, bob = env.user(30_000), env.user()
    r = env.post(alice, "/transfer", {"recipient_id": str(bob.id), "amount": 20_001})
    assert r.status_code == 202, r.text
    txn_id = r.json()["id"]
    assert_clean(env)
    with transaction_changed(env, txn_id, status="CANCELLED"):
        line = the_one(run_audit(env).violations, "open_hold_has_review", txn_id)
        assert "still open" in line and "CANCELLED" in line, line
    with transaction_changed(env, txn_id, amount=20_002):
        line = the_one(run_audit(env).violations, "open_hold_has_review", txn_id)
        assert "holds 20001" in line, line
    assert (env.client.post(f"{BASE}/{txn_id}/cancel", headers=alice.headers)).status_code == 200
    assert_clean(env)

    stray = str(uuid.uuid4())
    with env.wallet_db.session() as s:
        wallet_actions.place_hold(s, stray, user_account(alice.id), 100)
    try:
        the_one(run_audit(env).violations, "open_hold_has_review", stray)
    finally:
        with env.wallet_db.session() as s:
            wallet_actions.release_hold(s, stray)
    assert_clean(env)


# ---- under traffic ------------------------------------------------------------------------------


def test_audits_during_traffic_see_no_violation(env: Env) -> None:
    """Movements land between the audit's two snapshots (entries whose transaction was PENDING
    or did not exist yet when transactions was read): in flight, never violations."""
    senders = [env.user(100_000) for _ in range(3)]
    recipient = env.user()
    reports: list[LedgerAudit] = []

    def move_money(sender: User) -> int:
        with TestClient(create_app(env.ctx)) as client:
            for _ in range(15):
                headers = {**sender.headers, "Idempotency-Key": str(uuid.uuid4())}
                body = {"recipient_id": str(recipient.id), "amount": 10}
                r = client.post(f"{BASE}/transfer", json=body, headers=headers)
                assert r.status_code == 201, r.text
        return 15

    with ThreadPoolExecutor(max_workers=len(senders)) as pool:
        moved = [pool.submit(move_money, s) for s in senders]
        while not all(f.done() for f in moved):
            reports.append(run_audit(env))
        assert sum(f.result() for f in moved) == 45
    assert len(reports) >= 2
    assert [r.violations for r in reports if not r.ok] == []
    assert env.balance(recipient) == 450
    assert_clean(env)


# ---- the CLI ------------------------------------------------------------------------------------


def cli_urls(env: Env) -> list[str]:
    wallet, transactions = urls(env)
    return ["--database-url", wallet, "--transactions-database-url", transactions]


def test_the_cli_names_each_violation_and_exits_1(env: Env) -> None:
    alice, bob = env.user(1_000), env.user()
    lost = transfer(env, alice, bob, 300)
    carol, dave = env.user(1_000), env.user()
    failed = transfer(env, carol, dave, 200)
    runner = CliRunner()
    with (
        entry_removed(env.wallet_db, lost),
        transaction_changed(env, failed, status="FAILED", failure_reason="insufficient_funds"),
    ):
        result = runner.invoke(ledger_app, ["check", *cli_urls(env)])
        assert result.exit_code == 1, result.output
        assert "FAILED: 2 violation(s)" in result.output
        assert f"settled_has_entry: transaction {lost} COMPLETED" in result.output
        assert f"unmoved_has_no_entry: transaction {failed} FAILED" in result.output
    healthy = runner.invoke(ledger_app, ["check", *cli_urls(env)])
    assert healthy.exit_code == 0, healthy.output
    assert "OK: no violations" in healthy.output
    assert "cross-service checks" in healthy.output and "stuck" in healthy.output

    # Only a wallet named by hand: its invariants are checked, and it says what was not.
    wallet_only = runner.invoke(ledger_app, ["check", "--database-url", urls(env)[0]])
    assert wallet_only.exit_code == 0, wallet_only.output
    assert "cross-service checks SKIPPED" in wallet_only.output


def test_the_cli_with_no_arguments_audits_the_running_platform(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As after ``make dev``: both databases come from ``.mint/runtime.json``."""
    wallet, transactions = urls(env)
    runtime = {"databases": {"wallet": wallet, "transactions": transactions}}
    (tmp_path / ".mint").mkdir()
    (tmp_path / ".mint" / "runtime.json").write_text(json.dumps(runtime))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINT_DATABASE_URL", raising=False)
    alice, bob = env.user(1_000), env.user()
    lost = transfer(env, alice, bob, 300)
    with entry_removed(env.wallet_db, lost):
        result = CliRunner().invoke(ledger_app, ["check"])
    assert result.exit_code == 1, result.output
    assert f"settled_has_entry: transaction {lost}" in result.output
