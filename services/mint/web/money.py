"""Money as people read and type it. Amounts are integer minor units (cents) on the wire
(conventions.md "Money"); pages show ``$1,234.56`` and accept ``1234.56``, ``1,234.56`` or
``$12``. Pure functions."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

#: Minor units per major unit and the symbol of each currency the platform knows.
SYMBOLS: Final[dict[str, str]] = {"USD": "$"}
MAX_CENTS: Final = 10**12 - 1  # conventions.md: amounts are positive and below 10^12

_TYPED = re.compile(r"^\d+(\.\d{1,2})?$")


class AmountError(ValueError):
    """A typed amount that is not money; the message is shown next to the field."""


def format_money(cents: int, currency: str = "USD") -> str:
    """``123456`` → ``$1,234.56``; negative amounts carry a minus sign; a currency without a
    known symbol is written after the number (``12.00 EUR``)."""
    sign = "\u2212" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    number = f"{whole:,}.{part:02d}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def format_plain(cents: int) -> str:
    """The value to put back into an amount field: ``1234.5`` dollars → ``1234.50``."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{part:02d}"


def parse_amount(typed: str) -> int:
    """Cents from what a person typed: ``12``, ``12.5``, ``1,234.56``, ``$ 12.00``. Refuses
    zero, negative numbers, more than two decimals and anything else."""
    text = typed.strip().replace(" ", "")
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise AmountError("Enter an amount.")
    if "," in text:
        head, _, _ = text.partition(".")
        groups = head.split(",")
        if not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
            raise AmountError("Enter an amount like 1,234.56.")
        text = text.replace(",", "")
    if text.startswith("-"):
        raise AmountError("Enter an amount greater than zero.")
    if not _TYPED.match(text):
        raise AmountError("Enter an amount in dollars and cents, like 12.50.")
    try:
        cents = int(Decimal(text) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise AmountError("Enter an amount in dollars and cents, like 12.50.") from None
    if cents <= 0:
        raise AmountError("Enter an amount greater than zero.")
    if cents > MAX_CENTS:
        raise AmountError(f"Enter an amount up to {format_money(MAX_CENTS)}.")
    return cents
