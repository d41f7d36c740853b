"""kyc rules without I/O: the limits check (table-driven + properties), submission
requirements and review rules, the review queue's pages, content sniffing, file names and
profile details."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint.kit import pagination
from mint.kit.domain import Conflict, Invalid, Refused
from mint.kit.limits import TierLimits
from mint.kyc import domain

BASIC = TierLimits(per_transaction=50_000, daily=200_000, monthly=1_000_000)


@pytest.mark.parametrize(
    ("amount", "today", "month", "allowed", "violated", "remaining", "value"),
    [
        (1, 0, 0, True, "none", 50_000, 0),
        (50_000, 0, 0, True, "none", 50_000, 0),
        (50_001, 0, 0, False, "per_transaction", 50_000, 50_000),
        (50_000, 150_000, 150_000, True, "none", 50_000, 0),  # daily headroom == per_tx
        (40_000, 170_000, 170_000, False, "daily", 30_000, 200_000),
        (1, 200_000, 200_000, False, "daily", 0, 200_000),
        (1, 250_000, 250_000, False, "daily", 0, 200_000),  # over-used: remaining never < 0
        (20_000, 0, 990_000, False, "monthly", 10_000, 1_000_000),
        (20_000, 195_000, 990_000, False, "daily", 5_000, 200_000),  # the tighter one binds
        (10_000, 190_000, 990_000, True, "none", 10_000, 0),
    ],
)
def test_check_limits_table(
    amount: int, today: int, month: int, allowed: bool, violated: str, remaining: int, value: int
) -> None:
    result = domain.check_limits(BASIC, amount, today, month)
    assert (result.allowed, result.violated, result.remaining, result.limit_value) == (
        allowed,
        violated,
        remaining,
        value,
    )


@pytest.mark.parametrize(("amount", "today", "month"), [(0, 0, 0), (-5, 0, 0), (1, -1, 0)])
def test_check_limits_refuses_nonsense(amount: int, today: int, month: int) -> None:
    with pytest.raises(ValueError):
        domain.check_limits(BASIC, amount, today, month)


@pytest.mark.parametrize(
    ("amount", "today", "month", "code"),
    [(0, 0, 0, "invalid_amount"), (-5, 0, 0, "invalid_amount"), (1, -1, 0, "invalid_usage")],
)
def test_limits_requests_are_validated(amount: int, today: int, month: int, code: str) -> None:
    with pytest.raises(Invalid) as refused:
        domain.validate_limits_request(amount, today, month)
    assert refused.value.code == code
    domain.validate_limits_request(1, 0, 0)


def test_only_the_limits_currency_is_checked() -> None:
    domain.check_currency("", "USD")
    domain.check_currency("USD", "USD")
    with pytest.raises(Refused) as refused:
        domain.check_currency("EUR", "USD")
    assert refused.value.code == "unsupported_currency"


@st.composite
def tier_limits(draw: st.DrawFn) -> TierLimits:
    a, b, c = sorted(draw(st.lists(st.integers(0, 10**9), min_size=3, max_size=3)))
    return TierLimits(per_transaction=a, daily=b, monthly=c)


@given(
    limits=tier_limits(),
    amount=st.integers(1, 2 * 10**9),
    today=st.integers(0, 2 * 10**9),
    month_extra=st.integers(0, 10**9),
)
def test_check_limits_properties(
    limits: TierLimits, amount: int, today: int, month_extra: int
) -> None:
    month = today + month_extra  # the month includes the day
    result = domain.check_limits(limits, amount, today, month)
    fits = (
        amount <= limits.per_transaction
        and today + amount <= limits.daily
        and month + amount <= limits.monthly
    )
    assert result.allowed == fits
    assert result.remaining >= 0
    assert result.remaining == max(
        0, min(limits.per_transaction, limits.daily - today, limits.monthly - month)
    )
    if fits:
        assert result.violated == "none" and result.limit_value == 0
    else:
        assert amount > result.remaining
        assert result.limit_value == getattr(limits, result.violated)
        # the reported limit is really exceeded by this amount
        used = {"per_transaction": 0, "daily": today, "monthly": month}[result.violated]
        assert used + amount > result.limit_value
    # anything up to `remaining` is allowed (what a user is told they can still move)
    if result.remaining > 0:
        assert domain.check_limits(limits, result.remaining, today, month).allowed


@pytest.mark.parametrize(
    ("tier", "status", "docs", "problems"),
    [
        ("UNVERIFIED", "NONE", set(), ["tier_too_low", "id_document_missing", "selfie_missing"]),
        ("BASIC", "NONE", {"SELFIE"}, ["id_document_missing"]),
        ("BASIC", "NONE", {"PASSPORT", "UTILITY_BILL"}, ["selfie_missing"]),
        ("BASIC", "NONE", {"PASSPORT", "SELFIE"}, []),
        ("BASIC", "REJECTED", {"DRIVERS_LICENSE", "SELFIE"}, []),
        ("BASIC", "PENDING_REVIEW", {"PASSPORT", "SELFIE"}, ["already_pending"]),
        ("VERIFIED", "APPROVED", {"PASSPORT", "SELFIE"}, ["already_verified"]),
        ("UNVERIFIED", "NONE", {"PASSPORT", "SELFIE"}, ["tier_too_low"]),
    ],
)
def test_submission_problems(tier: str, status: str, docs: set[str], problems: list[str]) -> None:
    assert domain.submission_problems(tier, status, docs) == problems


def test_refused_submission_names_the_first_problem_and_lists_all() -> None:
    with pytest.raises(Refused) as refused:
        domain.refuse_submission("UNVERIFIED", "NONE", {"SELFIE"})
    assert refused.value.code == "tier_too_low"
    assert refused.value.extra == {"missing": ["tier_too_low", "id_document_missing"]}
    domain.refuse_submission("BASIC", "REJECTED", {"PASSPORT", "SELFIE"})


@pytest.mark.parametrize(
    ("status", "code"),
    [("PENDING_REVIEW", "review_in_progress"), ("APPROVED", "profile_locked")],
)
def test_details_are_locked_under_review_and_once_approved(status: str, code: str) -> None:
    with pytest.raises(Conflict) as refused:
        domain.refuse_detail_change(status)
    assert refused.value.code == code
    for open_status in ("NONE", "REJECTED"):
        domain.refuse_detail_change(open_status)


def test_rejection_reason_is_trimmed_cut_and_never_empty() -> None:
    assert domain.rejection_reason("  blurred  ") == "blurred"
    assert domain.rejection_reason("x" * 5000) == "x" * domain.MAX_REASON_LENGTH
    for empty in (None, "", "   "):
        assert domain.rejection_reason(empty) == "rejected"


def test_queue_pages() -> None:
    position = (datetime(2026, 1, 31, 12, 0, tzinfo=UTC), uuid.uuid4())
    assert pagination.decode_page_token(domain.encode_queue_token(*position)) == position


def test_ids_and_tiers_are_parsed() -> None:
    user = uuid.uuid4()
    assert domain.parse_id(str(user), "invalid_user_id") == user
    with pytest.raises(Invalid) as refused:
        domain.parse_id("nope", "invalid_user_id")
    assert refused.value.code == "invalid_user_id"
    assert [domain.parse_tier(t) for t in ("UNVERIFIED", "BASIC", "VERIFIED")] == list(domain.TIERS)
    with pytest.raises(ValueError):
        domain.parse_tier("GOLD")


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x7fELF\x02\x01\x01\x00", None),
        (b"MZ\x90\x00", None),
        (b"GIF89a", None),
        (b"\x89PNG\r\n", None),  # truncated signature
        (b"", None),
    ],
)
def test_sniff_content_type(head: bytes, expected: str | None) -> None:
    assert domain.sniff_content_type(head) == expected


@pytest.mark.parametrize(
    ("name", "content_type", "expected"),
    [
        ("passport.pdf", "application/pdf", "passport.pdf"),
        ("../../etc/passwd", "application/pdf", "passwd"),
        ("C:\\Users\\me\\selfie.png", "image/png", "selfie.png"),
        ("bad\x00name\n.png", "image/png", "badname.png"),
        ("", "image/jpeg", "document.jpg"),
        (None, "application/pdf", "document.pdf"),
        ("...", "image/png", "document.png"),
        ("x" * 300 + ".png", "image/png", "x" * 255),
    ],
)
def test_clean_file_name(name: str | None, content_type: str, expected: str) -> None:
    assert domain.clean_file_name(name, content_type) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DE", "DE"),
        ("us", "US"),
        (" gb ", "GB"),
        ("XX", None),
        ("D1", None),
        ("DEU", None),
        ("ÄÖ", None),
        ("", None),
    ],
)
def test_normalize_country(code: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            domain.normalize_country(code)
    else:
        assert domain.normalize_country(code) == expected


def test_full_name_and_birth_date() -> None:
    assert domain.normalize_full_name("  Grace \t Hopper ") == "Grace Hopper"
    for bad in ("", "   ", "x" * 201, "Bad\u200bname\x07"):
        with pytest.raises(ValueError):
            domain.normalize_full_name(bad)
    today = date(2026, 3, 1)
    assert domain.check_date_of_birth(date(2008, 3, 1), today) == date(2008, 3, 1)
    assert domain.check_date_of_birth(date(2008, 2, 29), today) == date(2008, 2, 29)
    for bad_date in (date(2008, 3, 2), date(2026, 3, 2), date(1899, 12, 31)):
        with pytest.raises(ValueError):
            domain.check_date_of_birth(bad_date, today)
