"""The rules of mint.transactions.domain that `make mutation` found unproven by the unit tests:
who may cancel, the list filters and page bounds, the fraud review, the answers a request gets
while or after its transaction settles, and the wallet accounts of a movement.

Each test names the mutants it kills (mutmut's names, ``mutmut show NAME`` in .mutation/).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mint.contracts.money import FUNDING_ACCOUNT, PAYOUT_ACCOUNT, user_account
from mint.kit.domain import Conflict, Forbidden, Invalid, NotFound, Refused, Unavailable
from mint.transactions import domain
from mint.transactions.domain import MAX_PAGE, Status, TxnType

ALICE = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)
TXN = uuid.UUID(int=99)


def test_only_the_initiator_cancels_and_only_while_pending() -> None:
    """check_cancel 1, 2, 4, 6, 7 (who) and 10-15, 17, 19, 20 (which status; the code) and 16,
    18 (the detail naming the status)."""
    domain.check_cancel(Status.PENDING, initiator=ALICE, user_id=ALICE)
    with pytest.raises(Forbidden) as forbidden:
        domain.check_cancel(Status.PENDING, initiator=ALICE, user_id=BOB)
    assert forbidden.value.code == "forbidden"
    for status in Status:
        if status is Status.PENDING:
            continue
        with pytest.raises(Conflict) as conflict:
            domain.check_cancel(status.value, initiator=ALICE, user_id=ALICE)
        assert conflict.value.code == "invalid_state"
        assert status.value in conflict.value.detail


def test_a_transaction_cursor_round_trips_and_a_tampered_one_is_invalid() -> None:
    """encode_cursor 1-4, decode_cursor 1-5, 7, 9, 10."""
    created_at = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
    cursor = domain.encode_cursor(created_at, TXN)
    assert domain.decode_cursor(cursor) == (created_at, TXN)
    for tampered in ("", "!!!", cursor[:-4]):
        with pytest.raises(Invalid) as exc:
            domain.decode_cursor(tampered)
        assert exc.value.code == "invalid_cursor"


def test_a_self_transfer_is_a_transfer_to_oneself() -> None:
    """is_self_transfer 1, 2, 3."""
    assert domain.is_self_transfer(TxnType.TRANSFER, ALICE, ALICE)
    assert not domain.is_self_transfer(TxnType.TRANSFER, ALICE, BOB)
    assert not domain.is_self_transfer(TxnType.TOPUP, None, None)
    assert not domain.is_self_transfer(TxnType.WITHDRAWAL, ALICE, None)


def test_settled_means_the_final_answer_is_known() -> None:
    """is_settled 1, 2: COMPLETED and the final statuses, never PENDING or PROCESSING."""
    settled = {s for s in Status if domain.is_settled(s.value)}
    assert settled == {Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.REVERSED}


@pytest.mark.parametrize(("requested", "limit"), [(0, 20), (1, 1), (2, 2), (MAX_PAGE, MAX_PAGE)])
def test_a_page_limit_within_bounds_is_kept_and_none_is_the_default(
    requested: int, limit: int
) -> None:
    """page_limit 1, 2, 3, 4, 5, 6."""
    assert domain.page_limit(requested) == limit


@pytest.mark.parametrize("requested", [-1, MAX_PAGE + 1])
def test_a_page_limit_out_of_bounds_is_invalid_limit_saying_the_bound(requested: int) -> None:
    """page_limit 3 (refusal), 7, 9, 11, 12 (the code) and 8, 10 (the detail with the bound)."""
    with pytest.raises(Invalid) as exc:
        domain.page_limit(requested)
    assert exc.value.code == "invalid_limit"
    assert f"1..{MAX_PAGE}" in exc.value.detail


def test_status_and_type_filters() -> None:
    """parse_status 1-9 and parse_type 1-9: empty is no filter, a member is itself, anything else
    (other case included) is refused with its code, naming the value."""
    assert domain.parse_status("") is None and domain.parse_type("") is None
    for status in Status:
        assert domain.parse_status(status.value) is status
    for txn_type in TxnType:
        assert domain.parse_type(txn_type.value) is txn_type
    for parse, code in (
        (domain.parse_status, "invalid_status"),
        (domain.parse_type, "invalid_type"),
    ):
        for bad in ("pending", "topup", "NOPE"):
            with pytest.raises(Invalid) as exc:
                parse(bad)
            assert exc.value.code == code
            assert repr(bad) in exc.value.detail


def test_ids_from_paths_and_requests() -> None:
    """parse_transaction_id 1 and parse_user_id 1, 2, 4, 6, 7; a malformed transaction id names
    no transaction (transaction_not_found 1, 3, 5, 6: the code)."""
    assert domain.parse_transaction_id(str(TXN)) == TXN
    assert domain.parse_user_id(str(ALICE)) == ALICE
    with pytest.raises(NotFound) as missing:
        domain.parse_transaction_id("not-a-uuid")
    assert missing.value.code == "transaction_not_found"
    with pytest.raises(Invalid) as invalid:
        domain.parse_user_id("not-a-uuid")
    assert invalid.value.code == "invalid_user_id"


def test_only_a_review_decision_holds_a_transaction_for_the_reviewer() -> None:
    """under_review 1-7."""
    assert domain.under_review({"decision": "REVIEW", "score": 0.7})
    assert not domain.under_review({"decision": "ALLOW"})
    assert not domain.under_review({"decision": "review"})
    assert not domain.under_review({})
    assert not domain.under_review(None)


def test_a_request_racing_the_engine_is_told_it_is_in_progress() -> None:
    """still_processing 1, 3, 4, 6, 7, 8, 11: the code clients retry on and the transaction."""
    answer = domain.still_processing(TXN)
    assert answer.code == "idempotency_request_in_progress"
    assert answer.extra == {"transaction_id": str(TXN)}


def test_a_silent_wallet_keeps_the_transaction_processing() -> None:
    """wallet_silent 1, 3, 4, 5, 7, 8, 9, 10, 13: a 503 that says PROCESSING (retry with the same
    key, never a new one) and names the transaction."""
    answer = domain.wallet_silent(TXN)
    assert isinstance(answer, Unavailable)
    assert answer.code == "dependency_unavailable"
    assert answer.extra == {"transaction_id": str(TXN), "transaction_status": "PROCESSING"}


def test_a_failure_that_is_a_503_says_nothing_moved() -> None:
    """refusal 19, 20, 21: ``transaction_status: FAILED`` on an Unavailable, so the client
    knows a new key is safe; 23, 25, 27-30: the detail comes from the reason's table."""
    answer = domain.refusal(Status.FAILED, domain.RECOVERY_TIMEOUT, TXN)
    assert isinstance(answer, Unavailable)
    assert answer.extra == {"transaction_id": str(TXN), "transaction_status": "FAILED"}
    assert answer.detail == "the transaction could not be completed in time"
    refused = domain.refusal(Status.FAILED, "insufficient_funds", TXN, {"limit": 5})
    assert isinstance(refused, Refused)
    assert refused.extra == {"limit": 5, "transaction_id": str(TXN)}
    assert refused.detail == "insufficient available funds"


def test_an_unknown_failure_reason_is_a_refusal_in_its_own_words() -> None:
    """refusal 12, 14 (an unknown reason's kind: Refused) and 28-30, 35, 36 (its detail)."""
    answer = domain.refusal(Status.FAILED, "brand_new_reason", TXN)
    assert type(answer) is Refused
    assert answer.code == "brand_new_reason"
    assert answer.detail == "brand new reason"


def test_a_transfer_needs_both_parties() -> None:
    """The wallet accounts of each type; a transfer missing a party fails loudly. (accounts_for 7,
    ``and`` for ``or`` in that assertion, is equivalent: ``user_account(None)`` raises.)"""
    assert domain.accounts_for(TxnType.TRANSFER, ALICE, BOB) == (
        user_account(ALICE),
        user_account(BOB),
    )
    assert domain.accounts_for(TxnType.TOPUP, None, BOB) == (FUNDING_ACCOUNT, user_account(BOB))
    assert domain.accounts_for(TxnType.WITHDRAWAL, ALICE, None) == (
        user_account(ALICE),
        PAYOUT_ACCOUNT,
    )
    for sender, recipient in ((ALICE, None), (None, BOB)):
        with pytest.raises((AssertionError, ValueError)):
            domain.accounts_for(TxnType.TRANSFER, sender, recipient)
