"""Money as the web app shows and reads it (integer cents on the wire, ``$1,234.56`` on pages)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint.web.money import MAX_CENTS, AmountError, format_money, format_plain, parse_amount


@pytest.mark.parametrize(
    ("cents", "shown"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (100, "$1.00"),
        (123456, "$1,234.56"),
        (100000000, "$1,000,000.00"),
        (-23456, "\u2212$234.56"),
    ],
)
def test_format_money(cents: int, shown: str) -> None:
    assert format_money(cents) == shown


def test_a_currency_without_a_symbol_is_written_after_the_number() -> None:
    assert format_money(1250, "EUR") == "12.50 EUR"


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("12", 1200),
        ("12.5", 1250),
        ("12.50", 1250),
        ("0.01", 1),
        ("1,234.56", 123456),
        ("$ 1,234", 123400),
        (" $7.05 ", 705),
        ("1,000,000", 100000000),
    ],
)
def test_parse_amount(typed: str, cents: int) -> None:
    assert parse_amount(typed) == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter an amount."),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        ("-5", "greater than zero"),
        ("1.234", "dollars and cents"),
        ("12,34", "like 1,234.56"),
        ("1,2345.00", "like 1,234.56"),
        ("abc", "dollars and cents"),
        ("1e3", "dollars and cents"),
        ("10000000000", "up to $9,999,999,999.99"),
    ],
)
def test_parse_amount_refuses_what_is_not_money(typed: str, message: str) -> None:
    with pytest.raises(AmountError, match=message.replace("$", r"\$").replace(".", r"\.")):
        parse_amount(typed)


@given(st.integers(min_value=1, max_value=MAX_CENTS))
def test_what_is_shown_reads_back_as_the_same_cents(cents: int) -> None:
    assert parse_amount(format_money(cents)) == cents
    assert parse_amount(format_plain(cents)) == cents
