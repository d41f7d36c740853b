"""The fraud rules of services.md §4 at their boundaries, each on its own (the transaction types
it applies to, the values on either side of its condition), then the decision from the fired
rules and the thresholds, the statistics (Welford) and the IP → country lookup."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from mint.fraud import domain, geo, rules
from mint.fraud.domain import ALLOW, BLOCK, REVIEW, TOPUP, TRANSFER, WITHDRAWAL, Fired, Stats
from mint.fraud.rules import Facts, Rule
from mint.kit import pagination
from mint.kit.domain import Invalid, Refused

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ALL_TYPES = (TOPUP, TRANSFER, WITHDRAWAL)

#: 6 completed amounts of mean 200 and population standard deviation 100: mean + 3 sd = 500
HISTORY = Stats(count=6, mean=200.0, m2=6 * 100.0**2)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, 10, hour, minute, second, tzinfo=UTC)


def facts(**values: Any) -> Facts:
    """A transfer that fires nothing, with ``values`` changed."""
    base = Facts(type=TRANSFER, amount=100, now=NOON, recipient_is_contact=True)
    return replace(base, **values)


# ---- each rule at its boundaries ---------------------------------------------------------------

CASES: list[tuple[Rule, Facts, bool]] = [
    # velocity_breach: more than max_transfers in the window (this attempt counted)
    (rules.VELOCITY_BREACH, facts(transfers_in_window=5, max_transfers=5), False),
    (rules.VELOCITY_BREACH, facts(transfers_in_window=6, max_transfers=5), True),
    (rules.VELOCITY_BREACH, facts(transfers_in_window=3, max_transfers=2), True),
    (rules.VELOCITY_BREACH, facts(type=TOPUP, transfers_in_window=9, max_transfers=5), False),
    (rules.VELOCITY_BREACH, facts(type=WITHDRAWAL, transfers_in_window=9), False),
    # large_amount_deviation: >= 5 completed and amount > mean + 3 population sd
    (rules.LARGE_AMOUNT_DEVIATION, facts(stats=HISTORY, amount=500), False),
    (rules.LARGE_AMOUNT_DEVIATION, facts(stats=HISTORY, amount=501), True),
    (rules.LARGE_AMOUNT_DEVIATION, facts(type=TOPUP, stats=HISTORY, amount=501), True),
    (rules.LARGE_AMOUNT_DEVIATION, facts(type=WITHDRAWAL, stats=HISTORY, amount=501), True),
    (rules.LARGE_AMOUNT_DEVIATION, facts(stats=Stats(5, 100.0, 0.0), amount=101), True),
    (rules.LARGE_AMOUNT_DEVIATION, facts(stats=Stats(5, 100.0, 0.0), amount=100), False),
    (rules.LARGE_AMOUNT_DEVIATION, facts(stats=Stats(4, 100.0, 0.0), amount=10**9), False),
    (rules.LARGE_AMOUNT_DEVIATION, facts(stats=Stats(), amount=10**9), False),
    # new_recipient_large: transfers, not a contact, amount > 20 000
    (rules.NEW_RECIPIENT_LARGE, facts(recipient_is_contact=False, amount=20_000), False),
    (rules.NEW_RECIPIENT_LARGE, facts(recipient_is_contact=False, amount=20_001), True),
    (rules.NEW_RECIPIENT_LARGE, facts(recipient_is_contact=True, amount=20_001), False),
    (rules.NEW_RECIPIENT_LARGE, facts(type=TOPUP, recipient_is_contact=False, amount=10**6), False),
    (
        rules.NEW_RECIPIENT_LARGE,
        facts(type=WITHDRAWAL, recipient_is_contact=False, amount=10**6),
        False,
    ),
    # geo_anomaly: the IP's country differs from the KYC country; skipped without either
    (rules.GEO_ANOMALY, facts(ip_country="GB", user_country="US"), True),
    (rules.GEO_ANOMALY, facts(ip_country="US", user_country="US"), False),
    (rules.GEO_ANOMALY, facts(ip_country=None, user_country="US"), False),
    (rules.GEO_ANOMALY, facts(ip_country="GB", user_country=""), False),
    (rules.GEO_ANOMALY, facts(type=TOPUP, ip_country="GB", user_country="US"), True),
    (rules.GEO_ANOMALY, facts(type=WITHDRAWAL, ip_country="GB", user_country="US"), True),
    # night_large: amount > 50 000 and 00:00:00 <= now < 05:00:00 UTC
    (rules.NIGHT_LARGE, facts(amount=50_000, now=at(4, 59, 59)), False),
    (rules.NIGHT_LARGE, facts(amount=50_001, now=at(4, 59, 59)), True),
    (rules.NIGHT_LARGE, facts(amount=50_001, now=at(0, 0, 0)), True),
    (rules.NIGHT_LARGE, facts(amount=50_001, now=at(5, 0, 0)), False),
    (rules.NIGHT_LARGE, facts(amount=50_001, now=at(23, 59, 59)), False),
    (rules.NIGHT_LARGE, facts(type=TOPUP, amount=50_001, now=at(1)), True),
    (rules.NIGHT_LARGE, facts(type=WITHDRAWAL, amount=50_001, now=at(1)), True),
    # 01:00 in UTC+2 is 23:00 UTC: not night
    (
        rules.NIGHT_LARGE,
        facts(amount=50_001, now=datetime.fromisoformat("2026-03-10T01:00:00+02:00")),
        False,
    ),
    # sanctioned_recipient: transfers to a recipient on the list
    (rules.SANCTIONED_RECIPIENT, facts(recipient_sanctioned=True), True),
    (rules.SANCTIONED_RECIPIENT, facts(recipient_sanctioned=False), False),
    (rules.SANCTIONED_RECIPIENT, facts(type=TOPUP, recipient_sanctioned=True), False),
    (rules.SANCTIONED_RECIPIENT, facts(type=WITHDRAWAL, recipient_sanctioned=True), False),
]


@pytest.mark.parametrize(
    ("rule", "given", "fires"), CASES, ids=[f"{r.name}-{i}" for i, (r, _, _) in enumerate(CASES)]
)
def test_each_rule_at_its_boundary(rule: Rule, given: Facts, fires: bool) -> None:
    assert rule.fires(given) is fires
    assert (rule.name in [f.name for f in rules.fired(given)]) is fires


def test_the_rules_declare_the_types_scores_and_force_blocks_of_the_spec() -> None:
    declared = {r.name: (set(r.applies_to), r.score, r.force_block) for r in rules.RULES}
    assert declared == {
        "velocity_breach": ({TRANSFER}, 100, True),
        "large_amount_deviation": (set(ALL_TYPES), 60, False),
        "new_recipient_large": ({TRANSFER}, 50, False),
        "geo_anomaly": (set(ALL_TYPES), 40, False),
        "night_large": (set(ALL_TYPES), 30, False),
        "sanctioned_recipient": ({TRANSFER}, 100, True),
    }


def test_nothing_fires_on_an_ordinary_transfer() -> None:
    assert rules.fired(facts()) == []


# ---- the decision -----------------------------------------------------------------------------

GEO, NIGHT, NEW = (
    Fired("geo_anomaly", 40, False),
    Fired("night_large", 30, False),
    Fired("new_recipient_large", 50, False),
)
DEVIATION, VELOCITY = (
    Fired("large_amount_deviation", 60, False),
    Fired("velocity_breach", 100, True),
)


@pytest.mark.parametrize(
    ("fired", "decision", "score"),
    [
        ([], ALLOW, 0),
        ([GEO], ALLOW, 40),  # 40 < 50
        ([NEW], REVIEW, 50),  # exactly the review threshold
        ([GEO, NIGHT], REVIEW, 70),
        ([GEO, DEVIATION], BLOCK, 100),  # exactly the block threshold
        ([NEW, GEO], REVIEW, 90),
        ([VELOCITY], BLOCK, 100),
    ],
)
def test_the_score_is_the_sum_and_the_thresholds_decide(
    fired: list[Fired], decision: str, score: int
) -> None:
    decided = domain.decide(fired, review_threshold=50, block_threshold=100)
    assert (decided.decision, decided.score) == (decision, score)
    assert decided.rules == tuple(f.name for f in fired)


def test_a_force_block_rule_blocks_below_the_block_threshold() -> None:
    decided = domain.decide([VELOCITY], review_threshold=500, block_threshold=1000)
    assert decided.decision == BLOCK
    assert "force-block rule velocity_breach" in decided.reason
    not_forced = domain.decide([DEVIATION], review_threshold=500, block_threshold=1000)
    assert not_forced.decision == ALLOW


def test_the_thresholds_come_from_the_caller() -> None:
    assert domain.decide([GEO], review_threshold=40, block_threshold=41).decision == REVIEW
    assert domain.decide([GEO], review_threshold=10, block_threshold=40).decision == BLOCK


def test_the_reason_names_the_rules_and_the_threshold() -> None:
    reason = domain.decide([GEO, NIGHT], review_threshold=50, block_threshold=100).reason
    assert reason == "geo_anomaly (40), night_large (30); score 70 >= review threshold 50"
    assert "no rule fired" in domain.decide([], review_threshold=50, block_threshold=100).reason


def test_a_case_opens_on_review_and_is_closed_as_blocked_on_block() -> None:
    assert domain.case_status(REVIEW) == domain.OPEN
    assert domain.case_status(BLOCK) == domain.BLOCKED
    assert domain.case_status(ALLOW) is None


# ---- statistics -------------------------------------------------------------------------------


def test_welford_statistics_are_the_population_mean_and_deviation() -> None:
    amounts = [100, 300, 100, 300, 100, 300, 250, 17]
    stats = Stats()
    for amount in amounts:
        stats = stats.add(amount)
    mean = sum(amounts) / len(amounts)
    population = math.sqrt(sum((a - mean) ** 2 for a in amounts) / len(amounts))
    assert stats.count == len(amounts)
    assert stats.mean == pytest.approx(mean)
    assert stats.stddev == pytest.approx(population)


def test_the_initiator_is_the_sender_or_a_top_ups_recipient() -> None:
    sender, recipient = uuid.uuid4(), uuid.uuid4()
    assert domain.initiator(TRANSFER, sender, recipient) == sender
    assert domain.initiator(WITHDRAWAL, sender, None) == sender
    assert domain.initiator(TOPUP, None, recipient) == recipient


# ---- input and cases --------------------------------------------------------------------------


def request(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "transaction_id": str(uuid.uuid4()),
        "type": TRANSFER,
        "user_id": str(uuid.uuid4()),
        "recipient_id": str(uuid.uuid4()),
        "amount": 100,
        "currency": "usd",
        "ip_address": " 8.8.8.8 ",
        "user_country": "us",
        "recipient_is_contact": False,
    }
    return values | changes


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"transaction_id": "x"}, "invalid_transaction_id"),
        ({"user_id": ""}, "invalid_user_id"),
        ({"type": "GIFT"}, "invalid_type"),
        ({"amount": 0}, "invalid_amount"),
        ({"amount": 10**12}, "invalid_amount"),
        ({"recipient_id": ""}, "invalid_recipient_id"),
        ({"type": TOPUP}, "invalid_recipient_id"),  # a top-up names no recipient
    ],
)
def test_invalid_score_requests_are_refused_with_a_stable_code(
    changes: dict[str, Any], code: str
) -> None:
    with pytest.raises(Invalid) as refused:
        domain.score_input(**request(**changes))
    assert refused.value.code == code


def test_a_valid_score_request_is_normalised() -> None:
    scored = domain.score_input(**request())
    assert (scored.currency, scored.user_country, scored.ip_address) == ("USD", "US", "8.8.8.8")
    topup = domain.score_input(**request(type=TOPUP, recipient_id=""))
    assert topup.recipient_id is None


def test_review_outcomes_and_a_case_not_open() -> None:
    assert domain.review_status("APPROVE") == domain.APPROVED
    assert domain.review_status("BLOCK") == domain.REJECTED
    with pytest.raises(Invalid):
        domain.review_status("MAYBE")
    with pytest.raises(Refused) as refused:
        domain.refuse_review(domain.APPROVED)
    assert refused.value.code == "case_not_open"


def test_page_tokens_and_filters() -> None:
    case_id = uuid.uuid4()
    token = domain.encode_page_token(NOON, case_id)
    assert pagination.decode_page_token(token) == (NOON, case_id)
    assert domain.status_filter("") is None
    with pytest.raises(Invalid):
        domain.status_filter("PENDING")


# ---- IP → country -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.160", "GB"),
        ("::ffff:81.2.69.160", "GB"),  # IPv4-mapped
        ("10.1.2.3", None),  # private
        ("192.168.1.10", None),
        ("172.16.0.1", None),
        ("127.0.0.1", None),  # loopback
        ("::1", None),
        ("169.254.10.1", None),  # link-local
        ("fe80::1", None),
        ("", None),  # unknown
        ("not an address", None),
    ],
)
def test_countries_of_public_addresses_only(address: str, country: str | None) -> None:
    assert geo.country_of(address) == country
