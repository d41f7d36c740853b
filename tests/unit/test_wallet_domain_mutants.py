"""The ledger rules of mint.wallet.domain that `make mutation` found unproven: the exact bounds of
client-chosen ids and descriptions, the stable error codes clients branch on, and the details
that carry the offending value or the bound.

Each test names the mutants it kills (mutmut's names, ``mutmut show NAME`` in .mutation/).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from mint.contracts.money import MAX_AMOUNT, MIN_AMOUNT
from mint.kit.domain import Invalid, Refused
from mint.wallet import domain
from mint.wallet.domain import (
    MAX_DESCRIPTION_LENGTH,
    MAX_ID_LENGTH,
    AccountKind,
    AccountState,
)


def test_a_capture_releases_the_hold_of_the_sender_only() -> None:
    """apply_postings 15 (the release taken off every posted account: the recipient's own hold
    shrank, and with it money it had reserved became spendable)."""
    sender = AccountState("user:s", AccountKind.USER, balance=1_000, held=300)
    recipient = AccountState("user:r", AccountKind.USER, balance=50, held=40)
    postings = domain.transfer_postings(sender.code, recipient.code, 300)
    after = domain.apply_postings(
        {sender.code: sender, recipient.code: recipient}, postings, release=300
    )
    assert after[sender.code] == replace(sender, balance=700, held=0)
    assert after[recipient.code] == replace(recipient, balance=350)


def test_an_id_of_exactly_the_maximum_length_is_accepted() -> None:
    """validate_id 4 (``>`` became ``>=``: a 255-character id refused)."""
    longest = "i" * MAX_ID_LENGTH
    assert domain.validate_id(longest, "hold_id") == longest
    with pytest.raises(Invalid) as exc:
        domain.validate_id(longest + "i", "hold_id")
    assert exc.value.code == "invalid_hold_id"


def test_an_invalid_id_says_its_name_and_bound() -> None:
    """validate_id 7, 9 (the detail dropped: it fell back to the bare code)."""
    with pytest.raises(Invalid) as exc:
        domain.validate_id("", "reversal_id")
    assert "reversal_id" in exc.value.detail
    assert str(MAX_ID_LENGTH) in exc.value.detail


def test_description_defaults_to_empty_and_is_bounded() -> None:
    """validate_description 1, 2, 3 (no description became None, "XXXX" or kept None) and 4
    (``>`` became ``>=``); 5, 7, 9, 10 (the code)."""
    assert domain.validate_description(None) == ""
    assert domain.validate_description("") == ""
    assert domain.validate_description("rent") == "rent"
    longest = "d" * MAX_DESCRIPTION_LENGTH
    assert domain.validate_description(longest) == longest
    with pytest.raises(Invalid) as exc:
        domain.validate_description(longest + "d")
    assert exc.value.code == "invalid_description"


def test_an_amount_out_of_range_says_the_range() -> None:
    """validate_amount 15, 17 (the detail with the bounds dropped)."""
    with pytest.raises(Invalid) as exc:
        domain.validate_amount(MAX_AMOUNT + 1)
    assert f"{MIN_AMOUNT}..{MAX_AMOUNT}" in exc.value.detail


def test_an_unsupported_currency_is_named_in_the_refusal() -> None:
    """normalize_currency 4, 6 (the detail naming the currency dropped)."""
    with pytest.raises(Refused) as exc:
        domain.normalize_currency("EUR")
    assert "'EUR'" in exc.value.detail


@pytest.mark.parametrize("bad", ["external:other", "alice", ""])
def test_an_unknown_account_code_is_invalid_account_naming_it(bad: str) -> None:
    """normalize_account_code 5, 7, 9, 10 (the code) and 6, 8 (the detail naming the account)."""
    with pytest.raises(Invalid) as exc:
        domain.normalize_account_code(bad)
    assert exc.value.code == "invalid_account"
    assert repr(bad) in exc.value.detail


@pytest.mark.parametrize("bad", ["nope", "", "user:" + "0" * 31])
def test_a_user_id_that_is_not_a_uuid_is_invalid_user_id(bad: str) -> None:
    """parse_user_id 2, 4, 6, 7 (the code), directly and through a ``user:`` account code."""
    with pytest.raises(Invalid) as exc:
        domain.parse_user_id(bad)
    assert exc.value.code == "invalid_user_id"
    with pytest.raises(Invalid) as exc:
        domain.normalize_account_code(f"user:{bad}")
    assert exc.value.code == "invalid_user_id"
    assert domain.parse_user_id(str(uuid.UUID(int=7))) == uuid.UUID(int=7)


@pytest.mark.parametrize("cursor", ["", "!!!", "WzEsMl0"])
def test_a_tampered_cursor_is_invalid_cursor(cursor: str) -> None:
    """decode_cursor 5, 7, 9, 10 (the code)."""
    with pytest.raises(Invalid) as exc:
        domain.decode_cursor(cursor)
    assert exc.value.code == "invalid_cursor"
