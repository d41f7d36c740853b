"""KYC rules, no I/O: tiers and statuses, the limits check, submission requirements, review
decisions, the review queue's page rules, document types by content, and the validation of
profile details. Refusals are the kit's domain errors (mint.kit.domain)."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal, get_args

import pycountry

from mint.contracts.kyc import Tier
from mint.kit import pagination
from mint.kit.domain import Conflict, Invalid, Refused
from mint.kit.limits import TierLimits

# ---- vocabulary ---------------------------------------------------------------------------

UNVERIFIED: Final = "UNVERIFIED"
BASIC: Final = "BASIC"
VERIFIED: Final = "VERIFIED"
TIERS: tuple[Tier, ...] = get_args(Tier)

NONE, PENDING_REVIEW, APPROVED, REJECTED = "NONE", "PENDING_REVIEW", "APPROVED", "REJECTED"
STATUSES = (NONE, PENDING_REVIEW, APPROVED, REJECTED)

DOCUMENT_TYPES = ("PASSPORT", "DRIVERS_LICENSE", "SELFIE", "UTILITY_BILL", "OTHER")
ID_DOCUMENT_TYPES = frozenset({"PASSPORT", "DRIVERS_LICENSE"})
SELFIE = "SELFIE"
DocumentType = Literal["PASSPORT", "DRIVERS_LICENSE", "SELFIE", "UTILITY_BILL", "OTHER"]

# A document is UPLOADED until the profile is submitted, then carries the review's outcome.
DOC_UPLOADED, DOC_SUBMITTED, DOC_APPROVED, DOC_REJECTED = (
    "UPLOADED",
    "SUBMITTED",
    "APPROVED",
    "REJECTED",
)
DOCUMENT_STATUSES = (DOC_UPLOADED, DOC_SUBMITTED, DOC_APPROVED, DOC_REJECTED)


def tier_rank(tier: str) -> int:
    return TIERS.index(parse_tier(tier))


def parse_tier(value: str) -> Tier:
    """A tier read back from storage, typed (``ValueError`` for anything else)."""
    for tier in TIERS:
        if value == tier:
            return tier
    raise ValueError(f"unknown tier {value!r}")


def parse_id(value: str, code: str) -> uuid.UUID:
    """A UUID from a request field; ``Invalid(code)`` when it is not one."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise Invalid(code, f"not a UUID: {value!r}") from None


# ---- limits -------------------------------------------------------------------------------

Violation = Literal["none", "per_transaction", "daily", "monthly"]


@dataclass(frozen=True)
class LimitCheck:
    allowed: bool
    violated: Violation
    remaining: int  # the largest amount allowed now (before this one), never negative
    limit_value: int  # the binding limit's value when refused, else 0


def check_limits(
    limits: TierLimits, amount: int, used_today: int, used_this_month: int
) -> LimitCheck:
    """Does ``amount`` fit, given what was already used today and this month?

    Each limit leaves a headroom (per_transaction: its value; daily / monthly: value - used).
    ``remaining`` is the smallest headroom; a refusal names the limit with that smallest
    headroom (per_transaction first, then daily, on ties), so ``remaining`` is always what the
    user can still move under the limit reported."""
    if amount <= 0 or used_today < 0 or used_this_month < 0:
        # callers refuse these first (validate_limits_request); reaching here is a bug
        raise ValueError("amount must be positive and usage non-negative")
    headrooms: list[tuple[Violation, int, int]] = [
        ("per_transaction", limits.per_transaction, limits.per_transaction),
        ("daily", limits.daily - used_today, limits.daily),
        ("monthly", limits.monthly - used_this_month, limits.monthly),
    ]
    name, headroom, value = min(headrooms, key=lambda h: h[1])  # first of equals wins
    remaining = max(0, headroom)
    if amount <= remaining:
        return LimitCheck(allowed=True, violated="none", remaining=remaining, limit_value=0)
    return LimitCheck(allowed=False, violated=name, remaining=remaining, limit_value=value)


def validate_limits_request(amount: int, used_today: int, used_this_month: int) -> None:
    """What a caller of the limits check must send: a positive amount, non-negative usage."""
    if amount <= 0:
        raise Invalid("invalid_amount", "amount must be positive")
    if used_today < 0 or used_this_month < 0:
        raise Invalid("invalid_usage", "usage must not be negative")


def check_currency(requested: str, limits_currency: str) -> None:
    """An empty currency means the limits' own; any other one is refused."""
    if requested and requested != limits_currency:
        raise Refused("unsupported_currency", f"limits are in {limits_currency}")


# ---- submission and review ----------------------------------------------------------------


def submission_problems(tier: str, status: str, document_types: set[str]) -> list[str]:
    """What keeps a profile from being submitted, most fundamental first (empty: it may be).

    ``already_pending`` while under review; ``already_verified`` once VERIFIED; then
    ``tier_too_low`` (BASIC needed), ``id_document_missing`` (a passport or driver's licence)
    and ``selfie_missing``."""
    if status == PENDING_REVIEW:
        return ["already_pending"]
    if tier == VERIFIED:
        return ["already_verified"]
    missing = []
    if tier_rank(tier) < tier_rank(BASIC):
        missing.append("tier_too_low")
    if not document_types & ID_DOCUMENT_TYPES:
        missing.append("id_document_missing")
    if SELFIE not in document_types:
        missing.append("selfie_missing")
    return missing


def refuse_submission(tier: str, status: str, document_types: set[str]) -> None:
    """Refused with the most fundamental problem; ``missing`` lists every unmet requirement."""
    problems = submission_problems(tier, status, document_types)
    if problems:
        raise Refused(problems[0], missing=problems)


def refuse_while_in_review(status: str) -> None:
    """Nothing about a profile changes while a reviewer looks at it."""
    if status == PENDING_REVIEW:
        raise Conflict("review_in_progress", "the profile is under review")


def refuse_detail_change(status: str) -> None:
    """Details may change until the review approved them."""
    refuse_while_in_review(status)
    if status == APPROVED:
        raise Conflict("profile_locked", "a verified profile cannot be changed")


MAX_REASON_LENGTH = 1000


def rejection_reason(reason: str | None) -> str:
    """What a rejection records and tells the user: the reviewer's reason, trimmed and cut to
    ``MAX_REASON_LENGTH`` characters, or ``rejected`` when it says nothing."""
    return (reason or "").strip()[:MAX_REASON_LENGTH] or "rejected"


# ---- the review queue ---------------------------------------------------------------------


def encode_queue_token(submitted_at: datetime, profile_id: uuid.UUID) -> str:
    return pagination.encode_cursor(submitted_at, profile_id)


# ---- documents ----------------------------------------------------------------------------

MAGIC_BYTES_NEEDED = 8
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


def sniff_content_type(head: bytes) -> str | None:
    """The content type of a file from its first bytes (JPEG, PNG, PDF), else None."""
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    return None


_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def clean_file_name(name: str | None, content_type: str) -> str:
    """A display name from the client's file name: last path part, no control characters or
    separators, at most 255 characters; ``document.<ext>`` when nothing is left."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = unicodedata.normalize("NFC", _UNSAFE.sub("", base)).strip().lstrip(".")
    if not base:
        return "document" + _EXTENSIONS.get(content_type, "")
    return base[:255]


# ---- profile details ----------------------------------------------------------------------

MIN_AGE_YEARS = 18
OLDEST_BIRTH_DATE = date(1900, 1, 1)


def normalize_country(code: str) -> str:
    """An ISO 3166-1 alpha-2 code (any case) → upper case; ValueError when not assigned."""
    value = code.strip().upper()
    if len(value) != 2 or not value.isascii() or not value.isalpha():
        raise ValueError("country must be an ISO 3166-1 alpha-2 code")
    if pycountry.countries.get(alpha_2=value) is None:
        raise ValueError(f"unknown country code {value!r}")
    return value


def normalize_full_name(name: str) -> str:
    value = " ".join(unicodedata.normalize("NFC", name).split())
    if not value:
        raise ValueError("full_name must not be blank")
    if len(value) > 200:
        raise ValueError("full_name must be at most 200 characters")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValueError("full_name must not contain control characters")
    return value


def check_date_of_birth(born: date, today: date) -> date:
    if born < OLDEST_BIRTH_DATE or born > today:
        raise ValueError("date_of_birth is not a plausible birth date")
    try:
        adult_on = born.replace(year=born.year + MIN_AGE_YEARS)
    except ValueError:  # 29 February
        adult_on = date(born.year + MIN_AGE_YEARS, 3, 1)
    if adult_on > today:
        raise ValueError(f"must be at least {MIN_AGE_YEARS} years old")
    return born
