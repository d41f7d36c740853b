"""Pure ledger rules of the wallet (mint.wallet.domain): table-driven and property-based."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint.contracts.money import FUNDING_ACCOUNT as FUNDING
from mint.contracts.money import PAYOUT_ACCOUNT as PAYOUT
from mint.kit.domain import Invalid, Refused
from mint.wallet import domain
from mint.wallet.domain import AccountKind, AccountState, AccountStatus, Posting, Reason

ALICE = AccountState("user:a", AccountKind.USER, balance=1_000, held=200)
BOB = AccountState("user:b", AccountKind.USER)
FROZEN = replace(BOB, code="user:f", status=AccountStatus.FROZEN, balance=5_000)
SOURCE = AccountState(FUNDING, AccountKind.SYSTEM, balance=-50_000)


@pytest.mark.parametrize(
    ("sender", "recipient", "amount", "currency", "expected"),
    [
        (ALICE, BOB, 800, "USD", None),  # exactly the available balance
        (ALICE, BOB, 801, "USD", Reason.INSUFFICIENT_FUNDS),  # held money is not spendable
        (ALICE, BOB, 1, "EUR", Reason.UNSUPPORTED_CURRENCY),
        (ALICE, ALICE, 1, "USD", Reason.SELF_TRANSFER),
        (FROZEN, BOB, 1, "USD", Reason.SENDER_FROZEN),
        (ALICE, FROZEN, 1, "USD", Reason.RECIPIENT_FROZEN),
        (FROZEN, FROZEN, 1, "USD", Reason.SELF_TRANSFER),  # self-transfer is checked first
        (SOURCE, BOB, 10**12 - 1, "USD", None),  # system accounts may go negative
        (BOB, ALICE, 1, "USD", Reason.INSUFFICIENT_FUNDS),
    ],
)
def test_transfer_refusals(
    sender: AccountState,
    recipient: AccountState,
    amount: int,
    currency: str,
    expected: Reason | None,
) -> None:
    assert domain.transfer_refusal(sender, recipient, amount, currency) == expected


@pytest.mark.parametrize(
    ("account", "amount", "expected"),
    [
        (ALICE, 800, None),
        (ALICE, 801, Reason.INSUFFICIENT_FUNDS),
        (FROZEN, 1, Reason.SENDER_FROZEN),
        (SOURCE, 10, None),
    ],
)
def test_hold_refusals(account: AccountState, amount: int, expected: Reason | None) -> None:
    assert domain.hold_refusal(account, amount) == expected


def test_capture_and_reversal_refusals() -> None:
    assert domain.capture_refusal(ALICE, BOB) is None
    assert domain.capture_refusal(ALICE, ALICE) == Reason.SELF_TRANSFER
    assert domain.capture_refusal(FROZEN, BOB) == Reason.SENDER_FROZEN
    assert domain.capture_refusal(ALICE, FROZEN) == Reason.RECIPIENT_FROZEN
    assert domain.reversal_refusal(ALICE, 800) is None
    assert domain.reversal_refusal(ALICE, 801) == Reason.REVERSAL_INSUFFICIENT_FUNDS
    assert domain.reversal_refusal(SOURCE, 10**6) is None


@pytest.mark.parametrize("amount", [1, 2, 10**12 - 1])
def test_valid_amounts(amount: int) -> None:
    assert domain.validate_amount(amount) == amount


@pytest.mark.parametrize("amount", [0, -1, 10**12, 10**15, True])
def test_invalid_amounts(amount: int) -> None:
    with pytest.raises(Invalid) as exc:
        domain.validate_amount(amount)
    assert exc.value.code == "invalid_amount"


@pytest.mark.parametrize(("currency", "expected"), [("USD", "USD"), ("", "USD"), (None, "USD")])
def test_currency_default(currency: str | None, expected: str) -> None:
    assert domain.normalize_currency(currency) == expected


@pytest.mark.parametrize("currency", ["EUR", "usd", "XXX", "US"])
def test_unsupported_currency(currency: str) -> None:
    with pytest.raises(Refused) as exc:
        domain.normalize_currency(currency)
    assert exc.value.code == "unsupported_currency"


def test_account_codes() -> None:
    uid = uuid.uuid4()
    assert domain.normalize_account_code(f"user:{str(uid).upper()}") == f"user:{uid}"
    assert domain.normalize_account_code(FUNDING) == FUNDING
    assert domain.owner_of(f"user:{uid}") == uid and domain.owner_of(PAYOUT) is None
    for bad in ("user:nope", "external:other", "", "alice"):
        with pytest.raises(Invalid):
            domain.normalize_account_code(bad)


@pytest.mark.parametrize("value", ["", "x" * 256, "tab\there"])
def test_invalid_ids(value: str) -> None:
    with pytest.raises(Invalid) as exc:
        domain.validate_id(value, "transfer_id")
    assert exc.value.code == "invalid_transfer_id"


def test_unbalanced_postings_are_rejected() -> None:
    states = {ALICE.code: ALICE, BOB.code: BOB}
    with pytest.raises(ValueError):
        domain.apply_postings(states, [Posting(ALICE.code, -5), Posting(BOB.code, 4)])
    with pytest.raises(ValueError):
        domain.apply_postings(states, [Posting(ALICE.code, 0)])


def test_capture_releases_held_from_the_sender() -> None:
    postings = domain.transfer_postings(ALICE.code, BOB.code, 200)
    after = domain.apply_postings({ALICE.code: ALICE, BOB.code: BOB}, postings, release=200)
    assert (after[ALICE.code].balance, after[ALICE.code].held) == (800, 0)
    assert after[ALICE.code].available == ALICE.available  # a capture spends reserved money
    assert after[BOB.code].balance == 200


@given(st.datetimes(timezones=st.just(UTC)), st.integers(min_value=0, max_value=2**62))
def test_cursor_round_trip(created_at: datetime, row_id: int) -> None:
    assert domain.decode_cursor(domain.encode_cursor(created_at, row_id)) == (created_at, row_id)


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", "WzEsMl0", "WyIyMDI0LTAxLTAxIiwxXQ"])
def test_bad_cursors(cursor: str) -> None:
    with pytest.raises(Invalid):
        domain.decode_cursor(cursor)


def test_cursor_orders_like_its_fields() -> None:
    t = datetime(2025, 1, 1, tzinfo=UTC)
    assert domain.decode_cursor(domain.encode_cursor(t + timedelta(seconds=1), 2))[0] > t


# ---- property: any sequence of operations through the rules keeps the ledger sound ----------

USERS = [f"user:{i}" for i in range(4)]
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("transfer"),
            st.sampled_from([*USERS, FUNDING]),
            st.sampled_from([*USERS, PAYOUT]),
            st.integers(1, 5_000),
        ),
        st.tuples(st.just("hold"), st.sampled_from(USERS), st.just(""), st.integers(1, 5_000)),
        st.tuples(st.just("settle"), st.sampled_from(USERS), st.sampled_from(USERS), st.booleans()),
        st.tuples(st.just("freeze"), st.sampled_from(USERS), st.just(""), st.booleans()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_rules_preserve_invariants(operations: list[tuple[object, ...]]) -> None:
    accounts = {c: AccountState(c, AccountKind.USER) for c in USERS}
    accounts[FUNDING] = AccountState(FUNDING, AccountKind.SYSTEM)
    accounts[PAYOUT] = AccountState(PAYOUT, AccountKind.SYSTEM)
    open_holds: list[tuple[str, int]] = []
    posted = 0
    for op in operations:
        kind, a, b, x = op
        if kind == "transfer":
            assert isinstance(a, str) and isinstance(b, str) and isinstance(x, int)
            if domain.transfer_refusal(accounts[a], accounts[b], x) is None:
                accounts = domain.apply_postings(accounts, domain.transfer_postings(a, b, x))
                posted += 1
        elif kind == "hold":
            assert isinstance(a, str) and isinstance(x, int)
            if domain.hold_refusal(accounts[a], x) is None:
                accounts[a] = replace(accounts[a], held=accounts[a].held + x)
                open_holds.append((a, x))
        elif kind == "settle" and open_holds:
            assert isinstance(b, str)
            owner, amount = open_holds.pop(0)
            if x and domain.capture_refusal(accounts[owner], accounts[b]) is None:
                postings = domain.transfer_postings(owner, b, amount)
                accounts = domain.apply_postings(accounts, postings, release=amount)
            elif not x:
                accounts[owner] = replace(accounts[owner], held=accounts[owner].held - amount)
            else:
                open_holds.insert(0, (owner, amount))
        elif kind == "freeze":
            assert isinstance(a, str)
            status = AccountStatus.FROZEN if x else AccountStatus.ACTIVE
            accounts[a] = replace(accounts[a], status=status)
        # invariants after every step
        assert sum(s.balance for s in accounts.values()) == 0
        for code in USERS:
            assert accounts[code].available >= 0
            assert accounts[code].held == sum(amt for c, amt in open_holds if c == code)
