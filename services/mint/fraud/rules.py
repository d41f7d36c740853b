"""The six scoring rules of services.md §4, each a small unit that declares the transaction
types it applies to, its score, whether it blocks whatever the total, and decides from plain
values (:class:`Facts`, gathered beforehand: no I/O here).

Amounts are integer cents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from mint.fraud.domain import TRANSACTION_TYPES, TRANSFER, Fired, Stats

NEW_RECIPIENT_LARGE_AMOUNT = 20_000
NIGHT_LARGE_AMOUNT = 50_000
NIGHT_ENDS = time(5, 0)  # the night window is 00:00:00 <= now < 05:00:00 UTC
DEVIATION_MIN_COUNT = 5
DEVIATION_SIGMAS = 3


@dataclass(frozen=True)
class Facts:
    """What the rules decide from, for one transaction."""

    type: str
    amount: int
    now: datetime  # UTC
    recipient_is_contact: bool = False
    recipient_sanctioned: bool = False
    #: transfers by the sender in the velocity window: this attempt and the earlier scored
    #: attempts that were not blocked
    transfers_in_window: int = 0
    max_transfers: int = 5
    #: the initiator's completed transactions of this type
    stats: Stats = field(default_factory=Stats)
    #: the client IP's country, None when unknown or not a public address
    ip_country: str | None = None
    #: the user's KYC country, "" when the user gave none
    user_country: str = ""


@dataclass(frozen=True)
class Rule:
    name: str
    applies_to: frozenset[str]
    score: int
    force_block: bool
    condition: Callable[[Facts], bool]

    def fires(self, facts: Facts) -> bool:
        return facts.type in self.applies_to and self.condition(facts)


def _velocity_breach(facts: Facts) -> bool:
    return facts.transfers_in_window > facts.max_transfers


def _large_amount_deviation(facts: Facts) -> bool:
    """Mean + 3 population standard deviations of the user's completed transactions of this type."""
    stats = facts.stats
    if stats.count < DEVIATION_MIN_COUNT:
        return False
    return facts.amount > stats.mean + DEVIATION_SIGMAS * stats.stddev


def _new_recipient_large(facts: Facts) -> bool:
    return not facts.recipient_is_contact and facts.amount > NEW_RECIPIENT_LARGE_AMOUNT


def _geo_anomaly(facts: Facts) -> bool:
    if facts.ip_country is None or not facts.user_country:
        return False
    return facts.ip_country != facts.user_country


def _night_large(facts: Facts) -> bool:
    return facts.amount > NIGHT_LARGE_AMOUNT and facts.now.astimezone(UTC).time() < NIGHT_ENDS


def _sanctioned_recipient(facts: Facts) -> bool:
    return facts.recipient_sanctioned


TRANSFERS = frozenset({TRANSFER})
ALL = frozenset(TRANSACTION_TYPES)

VELOCITY_BREACH = Rule("velocity_breach", TRANSFERS, 100, True, _velocity_breach)
LARGE_AMOUNT_DEVIATION = Rule("large_amount_deviation", ALL, 60, False, _large_amount_deviation)
NEW_RECIPIENT_LARGE = Rule("new_recipient_large", TRANSFERS, 50, False, _new_recipient_large)
GEO_ANOMALY = Rule("geo_anomaly", ALL, 40, False, _geo_anomaly)
NIGHT_LARGE = Rule("night_large", ALL, 30, False, _night_large)
SANCTIONED_RECIPIENT = Rule("sanctioned_recipient", TRANSFERS, 100, True, _sanctioned_recipient)

RULES: tuple[Rule, ...] = (
    VELOCITY_BREACH,
    LARGE_AMOUNT_DEVIATION,
    NEW_RECIPIENT_LARGE,
    GEO_ANOMALY,
    NIGHT_LARGE,
    SANCTIONED_RECIPIENT,
)


def fired(facts: Facts, rules: tuple[Rule, ...] = RULES) -> list[Fired]:
    """The rules that fire for ``facts``, in the order of ``rules``."""
    return [Fired(r.name, r.score, r.force_block) for r in rules if r.fires(facts)]
