"""wallet against a real PostgreSQL: ledger operations, concurrency, invariants, the gRPC
servicer over a loopback socket and the HTTP API through the real ASGI app."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from typer.testing import CliRunner

from mint.cli_ledger import ledger_app
from mint.contracts.auth import UserRegistered
from mint.contracts.money import FUNDING_ACCOUNT, PAYOUT_ACCOUNT
from mint.infra import EmbeddedInfra
from mint.kit.db import Database, run_migrations
from mint.kit.domain import DomainError, Invalid, NotFound, Refused
from mint.kit.events import OUTBOX, Event
from mint.wallet import actions, store
from mint.wallet.events import open_wallet_for
from mint.wallet.invariants import check_invariants
from mint.wallet.service import SERVICE
from mint.wallet.v1 import wallet_pb2 as pb
from mint.wallet.v1 import wallet_pb2_grpc as pb_grpc
from tests.harness import RunningService, run_service

MIGRATIONS = Path(store.__file__).parent / "migrations"


@pytest.fixture
def db(embedded_infra: EmbeddedInfra) -> Iterator[Database]:
    url = embedded_infra.create_database(f"wallet_{uuid.uuid4().hex[:10]}")
    run_migrations(url, MIGRATIONS)
    database = Database(url, pool_size=30)
    run(database, actions.ensure_system_accounts)
    yield database
    database.dispose()


def user(db: Database, funds: int = 0) -> str:
    """A new user's wallet (as in ``auth.user_registered``), topped up with ``funds``."""
    uid = uuid.uuid4()
    with db.session() as s:
        actions.open_wallet(s, uid)
        if funds:
            actions.transfer(
                s, f"topup-{uid}", FUNDING_ACCOUNT, f"user:{uid}", funds, "USD", "top-up"
            )
    return f"user:{uid}"


def uid(code: str) -> uuid.UUID:
    return uuid.UUID(code.removeprefix("user:"))


def balance(db: Database, code: str) -> tuple[int, int]:
    wallet = run(db, store.get_wallet, uid(code))
    return wallet.balance, wallet.held


def events(db: Database, type_: str, subject: str | None = None) -> list[dict[str, Any]]:
    query = select(OUTBOX).where(OUTBOX.c.type == type_).order_by(OUTBOX.c.seq)
    rows = [dict(r._mapping) for r in run(db, lambda s: s.execute(query).all())]
    return [r for r in rows if subject in (None, r["subject"])]


def run(db: Database, fn: Callable[..., Any], *args: Any) -> Any:
    with db.session() as s:
        return fn(s, *args)


def error_code(db: Database, fn: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(DomainError) as exc:
        run(db, fn, *args)
    return str(exc.value.code)


def test_transfer_posts_entry_postings_balances_and_event(db: Database) -> None:
    alice, bob = user(db, 10_000), user(db)
    result = run(db, actions.transfer, "t1", alice, bob, 2_500, "USD", "dinner")
    assert (result.from_account, result.to_account, result.amount) == (alice, bob, 2_500)
    assert not result.replayed and result.kind == "TRANSFER"
    assert balance(db, alice) == (7_500, 0) and balance(db, bob) == (2_500, 0)
    posted = events(db, "wallet.transfer_posted", "t1")
    assert len(posted) == 1 and posted[0]["key"] == str(uid(alice))
    assert posted[0]["data"] == {
        "transfer_id": "t1", "from_account": alice, "to_account": bob,
        "amount": 2_500, "currency": "USD",
    }  # fmt: skip
    topup = events(db, "wallet.transfer_posted", f"topup-{uid(alice)}")
    assert topup[0]["key"] == str(uid(alice))  # top-ups are keyed by the recipient
    assert run(db, store.get_transfer, "t1") == result
    assert run(db, check_invariants) == []


def test_replay_returns_the_first_result_and_moves_money_once(db: Database) -> None:
    alice, bob = user(db, 1_000), user(db)
    first = run(db, actions.transfer, "same", alice, bob, 300, "USD", "")
    again = run(db, actions.transfer, "same", alice, bob, 300, "USD", "")
    different = run(db, actions.transfer, "same", alice, bob, 999, "USD", "")
    assert again.replayed and different.replayed
    assert again.entry_id == different.entry_id == first.entry_id and different.amount == 300
    assert balance(db, alice) == (700, 0)
    assert len(events(db, "wallet.transfer_posted", "same")) == 1
    with ThreadPoolExecutor(10) as pool:  # concurrent first attempts: one posts, all agree
        results = list(
            pool.map(lambda _: run(db, actions.transfer, "d", alice, bob, 10), range(10))
        )
    assert len({r.entry_id for r in results}) == 1 and sum(not r.replayed for r in results) == 1
    assert balance(db, alice) == (690, 0) and run(db, check_invariants) == []


REFUSALS = [
    ("poor", 501, "USD", Refused, "insufficient_funds"),
    ("self", 1, "USD", Refused, "self_transfer"),
    ("sender_frozen", 1, "USD", Refused, "sender_frozen"),
    ("recipient_frozen", 1, "USD", Refused, "recipient_frozen"),
    ("eur", 1, "EUR", Refused, "unsupported_currency"),
    ("zero", 0, "USD", Invalid, "invalid_amount"),
    ("huge", 10**12, "USD", Invalid, "invalid_amount"),
    ("ghost", 1, "USD", NotFound, "wallet_not_found"),
    ("bad_code", 1, "USD", Invalid, "invalid_account"),
]


@pytest.mark.parametrize(("case", "amount", "currency", "error", "code"), REFUSALS)
def test_refusals_write_nothing(
    db: Database, case: str, amount: int, currency: str, error: type[DomainError], code: str
) -> None:
    alice, bob = user(db, 500), user(db)
    if case.endswith("frozen"):
        run(db, actions.set_frozen, uid(alice if case == "sender_frozen" else bob), True)
    ghost, self_upper = f"user:{uuid.UUID(int=1)}", alice.upper().replace("USER:", "user:")
    to = {"self": self_upper, "ghost": ghost, "bad_code": "bank:1"}
    with pytest.raises(error) as exc:
        run(db, actions.transfer, "refused", alice, to.get(case, bob), amount, currency)
    assert exc.value.code == code
    assert run(db, store.get_transfer, "refused") is None
    assert balance(db, alice)[0] == 500 and balance(db, bob)[0] == 0
    assert not events(db, "wallet.transfer_posted", "refused")


def test_fifty_parallel_transfers_with_funds_for_thirty(db: Database) -> None:
    payer, payee = user(db, 3_000), user(db)
    stop, lows = threading.Event(), []

    def watch() -> None:  # available, sampled while the transfers run
        while not stop.is_set():
            lows.append(run(db, store.get_wallet, uid(payer)).available)

    def pay(i: int) -> str:
        try:
            return str(run(db, actions.transfer, f"p-{i}", payer, payee, 100).kind)
        except Refused as exc:
            return str(exc.code)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(25) as pool:
        outcomes = list(pool.map(pay, range(50)))
    stop.set()
    watcher.join()
    assert outcomes.count("TRANSFER") == 30 and outcomes.count("insufficient_funds") == 20
    assert balance(db, payer) == (0, 0) and balance(db, payee) == (3_000, 0)
    assert lows and min(lows) >= 0
    assert run(db, check_invariants) == []


def test_opposite_direction_transfers_do_not_deadlock(db: Database) -> None:
    a, b = user(db, 10_000), user(db, 10_000)

    def move(i: int) -> None:
        src, dst = (a, b) if i % 2 else (b, a)
        run(db, actions.transfer, f"x-{i}", src, dst, 7)

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(move, range(200)))  # a deadlock would raise here
    assert balance(db, a)[0] + balance(db, b)[0] == 20_000
    assert run(db, check_invariants) == []


def test_top_ups_and_withdrawals_of_different_users_never_wait_for_each_other(
    db: Database,
) -> None:
    """No hot row: a top-up still in flight (its transaction open) does not lock the funding
    account, so another user's top-up and withdrawal go through at once. (A lock would make the
    second session give up at its lock_timeout: an error, not a slow test.)"""
    alice, bob = user(db, 500), user(db, 500)
    with db.session() as first:
        actions.transfer(first, "t-alice", FUNDING_ACCOUNT, alice, 100, "USD", "")
        actions.transfer(first, "w-alice", alice, PAYOUT_ACCOUNT, 50, "USD", "")
        with db.session() as second:
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            actions.transfer(second, "t-bob", FUNDING_ACCOUNT, bob, 200, "USD", "")
            actions.transfer(second, "w-bob", bob, PAYOUT_ACCOUNT, 70, "USD", "")
    assert balance(db, alice) == (550, 0) and balance(db, bob) == (630, 0)
    system = run(
        db,
        lambda s: dict(
            s.execute(text("SELECT code, balance FROM accounts WHERE kind = 'SYSTEM'")).all()
        ),
    )
    assert system == {FUNDING_ACCOUNT: 0, PAYOUT_ACCOUNT: 0}  # their balance is their postings
    assert run(db, check_invariants) == []


def test_a_system_account_with_a_running_balance_is_a_violation(db: Database) -> None:
    user(db, 300)
    with db.session() as s:
        s.execute(
            text("ALTER TABLE accounts DROP CONSTRAINT ck_accounts_system_no_running_balance")
        )
        s.execute(
            text("UPDATE accounts SET balance = -300 WHERE code = :c"), {"c": FUNDING_ACCOUNT}
        )
    found = run(db, check_invariants)
    assert any(
        v.startswith("system_accounts_without_running_balance") and FUNDING_ACCOUNT in v
        for v in found
    ), found


def test_holds_capture_release_and_idempotency(db: Database) -> None:
    alice, bob = user(db, 1_000), user(db)
    placed = run(db, actions.place_hold, "h1", alice, 600, "USD")
    assert placed.status == "OPEN" and run(db, actions.place_hold, "h1", alice, 600, "USD").replayed
    assert balance(db, alice) == (1_000, 600)
    assert error_code(db, actions.transfer, "x", alice, bob, 401) == "insufficient_funds"
    captured = run(db, actions.capture_hold, "h1", bob, "cap-1", "approved")
    assert captured.kind == "CAPTURE" and captured.amount == 600
    assert run(db, actions.capture_hold, "h1", bob, "cap-1", "").replayed
    assert error_code(db, actions.capture_hold, "h1", bob, "c2", "") == "hold_already_captured"
    assert error_code(db, actions.release_hold, "h1") == "hold_already_captured"
    assert balance(db, alice) == (400, 0) and balance(db, bob) == (600, 0)

    run(db, actions.place_hold, "h3", alice, 300, "USD")
    released = run(db, actions.release_hold, "h3")
    assert released.status == "RELEASED" and run(db, actions.release_hold, "h3").replayed
    assert error_code(db, actions.capture_hold, "h3", bob, "c3", "") == "hold_released"
    assert error_code(db, actions.release_hold, "nope") == "hold_not_found"
    assert balance(db, alice) == (400, 0)
    placed_events = [e["data"] for e in events(db, "wallet.hold_placed")]
    assert placed_events[0] == {"hold_id": "h1", "account": alice, "amount": 600, "currency": "USD"}
    assert len(placed_events) == len(events(db, "wallet.hold_released")) + 1 == 2
    assert run(db, check_invariants) == []


def test_reverse(db: Database) -> None:
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.transfer, "pay", alice, bob, 400)
    rev = run(db, actions.reverse, "pay", "rev-1")
    assert (rev.from_account, rev.to_account, rev.reversal_of) == (bob, alice, "pay")
    assert run(db, actions.reverse, "pay", "rev-1").replayed
    assert error_code(db, actions.reverse, "pay", "rev-2") == "already_reversed"
    assert error_code(db, actions.reverse, "rev-1", "rev-rev") == "not_reversible"
    assert error_code(db, actions.reverse, "unknown", "rev-3") == "transfer_not_found"
    assert balance(db, alice) == (1_000, 0) and balance(db, bob) == (0, 0)

    run(db, actions.transfer, "pay2", alice, bob, 300)
    run(db, actions.transfer, "spent", bob, alice, 100)
    assert error_code(db, actions.reverse, "pay2", "rev-4") == "reversal_insufficient_funds"
    assert error_code(db, actions.reverse, "pay2", "spent") == "transfer_id_conflict"
    assert run(db, check_invariants) == []


def test_freeze_unfreeze_and_wallet_created_from_auth_event(db: Database) -> None:
    user_id = uuid.uuid4()
    # fmt: off
    event = Event(id=str(uuid.uuid4()), type="auth.user_registered", source="auth",
                  subject=str(user_id), actor=str(user_id), time=datetime.now(UTC),
                  topic="auth.events", key=str(user_id),
                  data={"user_id": str(user_id), "email": "a@example.com", "name": "A"})
    # fmt: on
    for _ in range(2):
        run(db, lambda s, e: open_wallet_for(s, UserRegistered.from_data(e.data), e), event)
    created = events(db, "wallet.created")
    assert len(created) == 1 and created[0]["data"]["user_id"] == str(user_id)
    statuses = [run(db, actions.set_frozen, user_id, f).status for f in (True, True, False, False)]
    assert statuses == ["FROZEN", "FROZEN", "ACTIVE", "ACTIVE"]
    assert len(events(db, "wallet.frozen")) == 1 and len(events(db, "wallet.unfrozen")) == 1
    assert error_code(db, actions.set_frozen, uuid.uuid4(), True) == "wallet_not_found"


def test_invariants_and_cli_detect_a_corrupted_ledger(db: Database) -> None:
    alice, bob = user(db, 1_000), user(db)
    run(db, actions.transfer, "ok", alice, bob, 10)
    run(db, actions.place_hold, "hx", alice, 5, "USD")
    cli = CliRunner()
    ok = cli.invoke(ledger_app, ["check", "--database-url", db.url])
    assert ok.exit_code == 0 and "OK" in ok.output, ok.output
    with db.session() as s:
        s.execute(text("UPDATE accounts SET balance = balance + 1 WHERE code = :c"), {"c": bob})
        s.execute(text("UPDATE accounts SET held = 0 WHERE code = :c"), {"c": alice})
    found = run(db, check_invariants)
    assert any(v.startswith("balance_equals_postings") and bob in v for v in found), found
    assert any(v.startswith("held_equals_open_holds") and alice in v for v in found), found
    assert any(v.startswith("conservation") for v in found), found
    bad = cli.invoke(ledger_app, ["check", "--database-url", db.url])
    assert bad.exit_code == 1 and "balance_equals_postings" in bad.output


KINDS, WHO = st.sampled_from(["pay", "retry", "reverse", "hold"]), st.integers(0, 2)
# at least 8 operations, so that retries and reversals meet the transfers they name
OPS = st.lists(
    st.tuples(KINDS, WHO, WHO, st.integers(1, 400), st.booleans()), min_size=8, max_size=30
)

#: The refusals each operation of the random mix may meet, given the ids it uses (amounts may
#: exceed what the sender has, sender and recipient may be the same wallet, and a reversal
#: races the transfer it reverses and the other reversal of it). Anything else is a bug.
EXPECTED_REFUSALS: dict[str, set[tuple[type[DomainError], str]]] = {
    "pay": {(Refused, "insufficient_funds"), (Refused, "self_transfer")},
    "reverse": {
        (NotFound, "transfer_not_found"),  # not posted (yet, or refused)
        (Refused, "already_reversed"),  # by the other reversal id of the same transfer
        (Refused, "reversal_insufficient_funds"),
    },
    "hold": {(Refused, "insufficient_funds"), (Refused, "self_transfer")},  # place / capture
}


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(OPS)
def test_random_concurrent_operations_keep_the_invariants(
    db: Database, ops: list[tuple[str, int, int, int, bool]]
) -> None:
    """Transfers, retries of their ids, reversals and holds of three wallets at once: only the
    refusals an operation may legitimately meet are tolerated, and the ledger's invariants
    hold afterwards."""
    wallets, tag = [user(db, 1_000) for _ in range(3)], uuid.uuid4().hex[:8]
    unexpected: list[str] = []

    def do(item: tuple[int, tuple[str, int, int, int, bool]]) -> None:
        i, (kind, a, b, amount, flag) = item
        try:
            if kind in ("pay", "retry"):  # a retry reuses the id of operation ``a``
                tid = f"{tag}-{i if kind == 'pay' else a}"
                run(db, actions.transfer, tid, wallets[a], wallets[b], amount)
            elif kind == "reverse":
                run(db, actions.reverse, f"{tag}-{a}", f"{tag}-rev-{a}-{flag}")
            elif flag:
                run(db, actions.place_hold, f"{tag}-h{i}", wallets[a], amount, "USD")
                run(db, actions.capture_hold, f"{tag}-h{i}", wallets[b], f"{tag}-c{i}", "")
            else:
                run(db, actions.place_hold, f"{tag}-h{i}", wallets[a], amount, "USD")
                run(db, actions.release_hold, f"{tag}-h{i}")
        except DomainError as exc:
            allowed = EXPECTED_REFUSALS["pay" if kind == "retry" else kind]
            if (type(exc), exc.code) not in allowed:
                unexpected.append(f"operation {i} {kind}: {exc!r}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(do, enumerate(ops)))  # any other exception fails the test here
    assert unexpected == []
    assert run(db, check_invariants) == []


@pytest.fixture
def svc(embedded_infra: EmbeddedInfra) -> Iterator[RunningService]:
    """The wallet as it runs: its runner (system accounts, gRPC with the token interceptor),
    its app; no relay or consumers (the tests read the outbox)."""
    with run_service(SERVICE, embedded_infra, workers=False) as running:
        yield running


@pytest.fixture
def stub(svc: RunningService) -> Iterator[pb_grpc.WalletServiceStub]:
    """The kit's real gRPC server (token interceptor) and client (deadline, token)."""
    yield svc.stub(pb_grpc.WalletServiceStub)
    assert svc.grpc_target is not None
    with grpc.insecure_channel(svc.grpc_target) as raw:  # without the internal token: refused
        call = pb_grpc.WalletServiceStub(raw).GetWallet
        refused = rpc_error(lambda: call(pb.GetWalletRequest(user_id="x"), timeout=5))
        assert refused[0] == grpc.StatusCode.UNAUTHENTICATED


def rpc_error(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as exc:
        call()
    return exc.value.code(), exc.value.details()


def test_grpc_servicer(svc: RunningService, stub: pb_grpc.WalletServiceStub) -> None:
    db = svc.ctx.database()
    alice, bob = user(db, 1_000), user(db)
    me = pb.GetWalletRequest(user_id=str(uid(alice)))
    wallet = stub.GetWallet(me, timeout=5)
    assert (wallet.balance, wallet.available, wallet.status) == (1_000, 1_000, "ACTIVE")
    req = pb.TransferRequest(transfer_id="g1", from_account=alice, to_account=bob, amount=250)
    first, again = stub.Transfer(req, timeout=5), stub.Transfer(req, timeout=5)
    assert first.currency == "USD" and not first.replayed
    assert again.replayed and again.entry_id == first.entry_id
    assert stub.GetTransfer(pb.GetTransferRequest(transfer_id="g1"), timeout=5).amount == 250
    codes = grpc.StatusCode
    F, N, INV = codes.FAILED_PRECONDITION, codes.NOT_FOUND, codes.INVALID_ARGUMENT
    ghost = f"user:{uuid.uuid4()}"
    for (src, dst, amount, currency), expected in [
        ((alice, bob, 10**6, ""), (F, "insufficient_funds")),
        ((bob, bob, 1, ""), (F, "self_transfer")),
        ((alice, bob, 1, "EUR"), (F, "unsupported_currency")),
        ((alice, bob, -5, ""), (INV, "invalid_amount")),
        ((alice, ghost, 1, ""), (N, "wallet_not_found")),
    ]:
        bad = pb.TransferRequest(transfer_id="g2", amount=amount, currency=currency)
        bad.from_account, bad.to_account = src, dst
        assert rpc_error(partial(stub.Transfer, bad, timeout=5)) == expected
    tid = pb.GetTransferRequest(transfer_id="g2")
    assert rpc_error(lambda: stub.GetTransfer(tid)) == (N, "transfer_not_found")  # never posts
    nobody = pb.GetWalletRequest(user_id=str(uuid.uuid4()))
    assert rpc_error(lambda: stub.GetWallet(nobody)) == (N, "wallet_not_found")
    assert rpc_error(lambda: stub.GetBalance(pb.GetWalletRequest(user_id="x")))[0] == INV

    assert stub.Hold(pb.HoldRequest(hold_id="gh", account=alice, amount=700)).status == "OPEN"
    assert stub.GetBalance(me).available == 50
    cap = pb.CaptureHoldRequest(hold_id="gh", to_account=PAYOUT_ACCOUNT, transfer_id="gw")
    assert stub.CaptureHold(cap).kind == "CAPTURE" and stub.CaptureHold(cap).replayed
    assert rpc_error(lambda: stub.ReleaseHold(pb.ReleaseHoldRequest(hold_id="x")))[0] == N
    rev = stub.Reverse(pb.ReverseRequest(transfer_id="g1", reversal_id="g1-rev"), timeout=5)
    assert rev.reversal_of == "g1" and rev.to_account == alice
    assert stub.Freeze(pb.FreezeRequest(user_id=str(uid(alice)), reason="r")).status == "FROZEN"
    req = pb.TransferRequest(transfer_id="g7", from_account=alice, to_account=bob, amount=1)
    assert rpc_error(lambda: stub.Transfer(req)) == (F, "sender_frozen")
    assert stub.Unfreeze(pb.FreezeRequest(user_id=str(uid(alice)))).status == "ACTIVE"
    assert run(db, check_invariants) == []


def test_http_wallet_and_history(svc: RunningService) -> None:
    db = svc.ctx.database()
    alice, bob = user(db, 1_000), user(db)
    for i in range(5):
        run(db, actions.transfer, f"h-{i}", alice, bob, 10 + i, "USD", f"n{i}")
    client = svc.http
    client.headers.update(svc.headers(uid(alice)))
    for path in ("/api/v1/wallet", "/api/v1/wallet/"):
        body = client.get(path).json()
        assert body["balance"] == 1_000 - 60 and body["available"] == body["balance"]
        assert body["user_id"] == str(uid(alice)) and body["status"] == "ACTIVE"
    seen: list[dict[str, Any]] = []
    cursor = ""  # empty: the first page
    while cursor is not None:
        page = client.get("/api/v1/wallet/history", params={"limit": 2, "cursor": cursor})
        seen, cursor = seen + page.json()["items"], page.json()["next_cursor"]
    assert [i["amount"] for i in seen] == [-14, -13, -12, -11, -10, 1_000]
    assert seen[0]["counterparty_id"] == str(uid(bob)) and seen[-1]["counterparty_id"] is None
    assert seen[0]["balance_after"] == 940 and seen[0]["description"] == "n4"
    assert client.get("/api/v1/wallet/history", params={"limit": 101}).status_code == 422
    bad = client.get("/api/v1/wallet/history", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
    client.headers.update(svc.headers(uuid.uuid4()))
    missing = client.get("/api/v1/wallet")
    assert missing.status_code == 404 and missing.json()["code"] == "wallet_not_found"
    assert client.get("/api/v1/wallet/history").status_code == 404
