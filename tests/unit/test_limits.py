"""Validation of the limits document (platform.md "The limits file"): table-driven cases and
properties (hypothesis)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mint.kit.limits import (
    DEFAULT_LIMITS_FILE,
    MAX_AMOUNT,
    Limits,
    LimitsError,
    default_limits,
    parse_limits,
)

BASE: dict[str, Any] = {
    "version": "7",
    "currency": "USD",
    "tiers": {
        "UNVERIFIED": {"per_transaction": 5000, "daily": 10000, "monthly": 20000},
        "BASIC": {"per_transaction": 50000, "daily": 200000, "monthly": 1000000},
        "VERIFIED": {"per_transaction": 1000000, "daily": 5000000, "monthly": 20000000},
    },
    "fraud": {
        "review_threshold": 50,
        "block_threshold": 100,
        "velocity": {"window_seconds": 3600, "max_transfers": 5},
        "review_hold_hours": 72,
    },
}

DELETE = object()


def doc(**changes: Any) -> dict[str, Any]:
    """BASE with dotted-path changes; the value ``DELETE`` removes the key."""
    out = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = out
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return out


def test_shipped_default_is_valid_and_matches_the_spec() -> None:
    limits = default_limits()
    assert limits == parse_limits(DEFAULT_LIMITS_FILE.read_text())
    assert limits.currency == "USD"
    assert limits.for_tier("UNVERIFIED").model_dump() == BASE["tiers"]["UNVERIFIED"]
    assert limits.for_tier("BASIC").model_dump() == BASE["tiers"]["BASIC"]
    assert limits.for_tier("VERIFIED").model_dump() == BASE["tiers"]["VERIFIED"]
    assert limits.fraud.model_dump() == BASE["fraud"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"tiers__BASIC__daily": -1}, "tiers.BASIC.daily"),
        ({"tiers__BASIC__per_transaction": 300000}, "per_transaction <= daily <= monthly"),
        ({"tiers__VERIFIED__daily": 30000000}, "per_transaction <= daily <= monthly"),
        ({"tiers__GOLD": {"per_transaction": 1, "daily": 1, "monthly": 1}}, "tiers.GOLD"),
        ({"tiers__basic": BASE["tiers"]["BASIC"]}, "tiers.basic"),
        ({"tiers__VERIFIED": DELETE}, "tiers.VERIFIED"),
        ({"tiers__BASIC__daily": "200000"}, "tiers.BASIC.daily"),
        ({"tiers__BASIC__daily": 200000.5}, "tiers.BASIC.daily"),
        ({"tiers__BASIC__daily": True}, "tiers.BASIC.daily"),
        ({"tiers__BASIC__weekly": 1}, "tiers.BASIC.weekly"),
        ({"tiers__BASIC__monthly": MAX_AMOUNT + 1}, "tiers.BASIC.monthly"),
        ({"fraud__review_threshold": 100}, "review_threshold must be below block_threshold"),
        ({"fraud__review_threshold": 150}, "review_threshold must be below block_threshold"),
        ({"fraud__review_threshold": -1}, "fraud.review_threshold"),
        ({"fraud__velocity__window_seconds": 0}, "fraud.velocity.window_seconds"),
        ({"fraud__velocity__max_transfers": 0}, "fraud.velocity.max_transfers"),
        ({"fraud__review_hold_hours": 0}, "fraud.review_hold_hours"),
        ({"fraud__velocity": DELETE}, "fraud.velocity"),
        ({"currency": "EUR"}, "currency"),
        ({"version": ""}, "version"),
        ({"version": DELETE}, "version"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_documents_are_refused_with_a_reason(
    changes: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(LimitsError) as exc:
        parse_limits(yaml.safe_dump(doc(**changes)))
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    "text",
    ["", "just a string", "- a\n- list", "version: [unclosed", "{version: 1, tiers: }"],
)
def test_non_documents_are_refused(text: str) -> None:
    with pytest.raises(LimitsError):
        parse_limits(text)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"version": 12},  # unquoted: the same opaque version "12"
        {"tiers__UNVERIFIED": {"per_transaction": 0, "daily": 0, "monthly": 0}},  # frozen tier
        {"tiers__BASIC": {"per_transaction": 7, "daily": 7, "monthly": 7}},  # equal is fine
        {"fraud__review_threshold": 0, "fraud__block_threshold": 1},
    ],
)
def test_valid_documents_are_accepted(changes: dict[str, Any]) -> None:
    limits = parse_limits(yaml.safe_dump(doc(**changes)))
    assert isinstance(limits.version, str)
    assert parse_limits(limits.to_yaml()) == limits  # round trip


def test_version_is_opaque_text() -> None:
    assert parse_limits(yaml.safe_dump(doc(version=12))).version == "12"
    assert parse_limits(yaml.safe_dump(doc(version=" gen-3 "))).version == "gen-3"


def test_snapshot_is_immutable() -> None:
    limits = default_limits()
    with pytest.raises(ValueError):
        limits.tiers.BASIC.daily = 1
    with pytest.raises(ValueError):
        limits.version = "x"
    with pytest.raises(KeyError):
        limits.for_tier("GOLD")


amounts = st.integers(min_value=-(10**13), max_value=10**13)


@given(per_tx=amounts, daily=amounts, monthly=amounts)
def test_tier_accepted_iff_ordered_and_non_negative(per_tx: int, daily: int, monthly: int) -> None:
    document = doc(tiers__BASIC={"per_transaction": per_tx, "daily": daily, "monthly": monthly})
    ok = 0 <= per_tx <= daily <= monthly
    try:
        limits: Limits | None = parse_limits(yaml.safe_dump(document))
    except LimitsError:
        limits = None
    assert (limits is not None) == ok
    if limits is not None:
        assert limits.for_tier("BASIC").daily == daily


@given(review=st.integers(-5, 300), block=st.integers(-5, 300))
def test_thresholds_accepted_iff_review_below_block(review: int, block: int) -> None:
    document = doc(fraud__review_threshold=review, fraud__block_threshold=block)
    ok = 0 <= review < block
    try:
        parse_limits(yaml.safe_dump(document))
        accepted = True
    except LimitsError:
        accepted = False
    assert accepted == ok


@given(window=st.integers(-10, 10**5), max_transfers=st.integers(-3, 50), hold=st.integers(-3, 200))
def test_velocity_and_hold_bounds(window: int, max_transfers: int, hold: int) -> None:
    document = doc(
        fraud__velocity={"window_seconds": window, "max_transfers": max_transfers},
        fraud__review_hold_hours=hold,
    )
    ok = window > 0 and max_transfers >= 1 and hold > 0
    try:
        parse_limits(yaml.safe_dump(document))
        accepted = True
    except LimitsError:
        accepted = False
    assert accepted == ok
