"""The pure parts of the transactions limits check: UTC windows, whose limits apply, kyc's
answer and errors as the flow's decision, and the HTTP outcome of a refusal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import grpc
import pytest

from mint.transactions.answers import render
from mint.transactions.checks import CheckFailed, CheckInput, LimitDecision
from mint.transactions.limits import (
    decision_from_reply,
    failure_from_rpc_error,
    limited_user,
    windows,
)
from mint.transactions.outcomes import Settled


def _input(kind: str, sender: uuid.UUID | None, recipient: uuid.UUID | None) -> CheckInput:
    return CheckInput(
        transaction_id=uuid.uuid4(),
        user_id=sender or recipient or uuid.uuid4(),
        type=kind,
        amount=100,
        currency="USD",
        sender_id=sender,
        recipient_id=recipient,
    )


@pytest.mark.parametrize(
    ("now", "day", "month"),
    [
        (datetime(2025, 3, 15, 12, 30, tzinfo=UTC), datetime(2025, 3, 15), datetime(2025, 3, 1)),
        (datetime(2025, 3, 1, 0, 0, tzinfo=UTC), datetime(2025, 3, 1), datetime(2025, 3, 1)),
        (
            datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(2024, 12, 31),
            datetime(2024, 12, 1),
        ),
        # 01:30 at UTC+2 on April 1st is still March 31st in UTC.
        (
            datetime(2025, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2025, 3, 31),
            datetime(2025, 3, 1),
        ),
    ],
)
def test_windows_are_the_utc_day_and_month(now: datetime, day: datetime, month: datetime) -> None:
    assert windows(now) == (day.replace(tzinfo=UTC), month.replace(tzinfo=UTC))


def test_limited_user_is_the_sender_or_the_topup_recipient() -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    assert limited_user(_input("TOPUP", None, alice)) == alice
    assert limited_user(_input("TRANSFER", alice, bob)) == alice
    assert limited_user(_input("WITHDRAWAL", alice, None)) == alice
    with pytest.raises(ValueError):
        limited_user(_input("TOPUP", None, None))


def _reply(**fields: object) -> SimpleNamespace:
    base = {"allowed": False, "violated": "none", "remaining": 0, "limit_value": 0, "country": ""}
    return SimpleNamespace(**{**base, **fields})


def test_decision_from_kyc_reply() -> None:
    assert decision_from_reply(_reply(allowed=True, remaining=700, country="DE")) == LimitDecision(
        allowed=True, remaining=700, country="DE"
    )
    refused = decision_from_reply(_reply(violated="daily", limit_value=10_000, remaining=2_500))
    assert refused == LimitDecision(False, "daily", 10_000, 2_500)
    assert refused.refusal_extra() == {"limit": "daily", "limit_value": 10_000, "remaining": 2_500}
    with pytest.raises(CheckFailed) as no_limit:
        decision_from_reply(_reply(violated="weekly"))
    assert no_limit.value.failure_reason == "dependency_unavailable"


class _RpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str = "") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "reason"),
    [
        (grpc.StatusCode.UNAVAILABLE, "connection refused", "dependency_unavailable"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", "dependency_unavailable"),
        (grpc.StatusCode.UNAUTHENTICATED, "bad token", "dependency_unavailable"),
        (grpc.StatusCode.INTERNAL, "boom", "dependency_unavailable"),
        (grpc.StatusCode.INVALID_ARGUMENT, "invalid_amount", "dependency_unavailable"),
        (grpc.StatusCode.FAILED_PRECONDITION, "unsupported_currency", "unsupported_currency"),
        (grpc.StatusCode.FAILED_PRECONDITION, "something_else", "dependency_unavailable"),
    ],
)
def test_kyc_errors_never_let_a_transaction_through(
    code: grpc.StatusCode, details: str, reason: str
) -> None:
    assert failure_from_rpc_error(_RpcError(code, details)).failure_reason == reason


def _failed(reason: str) -> SimpleNamespace:
    return SimpleNamespace(id=uuid.uuid4(), status="FAILED", failure_reason=reason)


def test_refusal_outcomes() -> None:
    extra = LimitDecision(False, "per_transaction", 5_000, 5_000).refusal_extra()
    txn = _failed("limit_exceeded")
    status, body = render(Settled(txn, extra))
    assert status == 422
    assert (body["code"], body["limit"], body["limit_value"], body["remaining"]) == (
        "limit_exceeded", "per_transaction", 5_000, 5_000
    )  # fmt: skip
    assert body["transaction_id"] == str(txn.id) and body["status"] == 422
    assert list(body)[-4:] == ["limit", "limit_value", "remaining", "transaction_id"]
    status, body = render(Settled(_failed("dependency_unavailable")))
    assert (status, body["code"]) == (503, "dependency_unavailable")
