"""The limits check of a money movement: usage from this service's own records, the decision
from kyc ``CheckLimits`` (services.md §3 "Flow", §5).

Usage is the user's *other* top-ups (to them), transfers and withdrawals (from them) that count
— PROCESSING, COMPLETED, or PENDING past their own check (``counted_at``) — created within the
current UTC day / month. The flow holds the per-user advisory lock (``store.lock_user``) from
before :meth:`KycLimits.check` reads the usage until the transaction's decision (``counted_at``
and PROCESSING, or FAILED) is committed, so two parallel requests can never both fit under a
limit that only one of them fits.

kyc down, no answer within the deadline, or any other failure to decide → :class:`CheckFailed`
``dependency_unavailable``: the transaction FAILS (503), it never settles unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import grpc
import structlog
from sqlalchemy.orm import Session

from mint.kit.domain import Refused
from mint.kit.rpc import error_from_rpc
from mint.kit.time import utcnow
from mint.kyc.v1 import kyc_pb2
from mint.transactions import store
from mint.transactions.checks import CheckFailed, CheckInput, LimitDecision

log = structlog.get_logger("mint.transactions.limits")

LimitName = Literal["per_transaction", "daily", "monthly"]
LIMIT_NAMES: tuple[LimitName, ...] = ("per_transaction", "daily", "monthly")
#: kyc refusals of the request itself that are a public failure reason of ours.
_REQUEST_REFUSALS = frozenset({"unsupported_currency"})


def limited_user(txn: CheckInput) -> UUID:
    """Whose limits a movement uses: the sender of a transfer or withdrawal, the recipient
    (who is also the initiator) of a top-up."""
    user = txn.sender_id or txn.recipient_id
    if user is None:
        raise ValueError("a transaction without parties has no limits")
    return user


def windows(now: datetime) -> tuple[datetime, datetime]:
    """(start of the UTC day, start of the UTC month) containing ``now``."""
    utc = now.astimezone(UTC)
    day = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def decision_from_reply(reply: Any) -> LimitDecision:
    """A kyc ``CheckLimitsResponse`` as the flow's :class:`LimitDecision`."""
    if reply.allowed:
        return LimitDecision(
            allowed=True, remaining=int(reply.remaining), country=str(reply.country)
        )
    violated = str(reply.violated)
    if violated not in LIMIT_NAMES:
        raise CheckFailed("dependency_unavailable", f"kyc refused without a limit: {violated!r}")
    return LimitDecision(
        allowed=False,
        limit=violated,
        limit_value=int(reply.limit_value),
        remaining=int(reply.remaining),
    )


def failure_from_rpc_error(err: grpc.RpcError) -> CheckFailed:
    """No decision: kyc unreachable or slow (and anything unexpected) is a dependency outage;
    a refusal of the request that is one of our public reasons keeps its code."""
    error = error_from_rpc(err)
    if isinstance(error, Refused) and error.code in _REQUEST_REFUSALS:
        return CheckFailed(error.code, error.detail)
    log.warning("kyc_check_limits_failed", error=repr(error))
    return CheckFailed("dependency_unavailable", f"kyc CheckLimits: {error!r}")


@dataclass
class KycLimits:
    """:class:`mint.transactions.checks.LimitsChecker` backed by kyc ``CheckLimits``.

    ``stub`` is the ``KycServiceStub``; ``clock`` gives "now" for the day / month windows;
    ``timeout`` is the call's deadline — short, since the caller holds the user's lock and a
    database transaction while it waits."""

    stub: Any
    timeout: float = 2.0
    clock: Callable[[], datetime] = utcnow

    def check(self, session: Session, txn: CheckInput) -> LimitDecision:
        user = limited_user(txn)
        day_start, month_start = windows(self.clock())
        used_today, used_month = store.usage(
            session,
            user,
            day_start=day_start,
            month_start=month_start,
            exclude=txn.transaction_id,
            currency=txn.currency,
        )
        request = kyc_pb2.CheckLimitsRequest(
            user_id=str(user),
            amount=txn.amount,
            currency=txn.currency,
            used_today=used_today,
            used_this_month=used_month,
        )
        try:
            reply = self.stub.CheckLimits(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise failure_from_rpc_error(err) from None
        decision = decision_from_reply(reply)
        log.info(
            "limits_checked",
            transaction_id=str(txn.transaction_id),
            user_id=str(user),
            amount=txn.amount,
            used_today=used_today,
            used_this_month=used_month,
            allowed=decision.allowed,
            violated=decision.limit,
            tier=reply.tier,
            limits_version=reply.limits_version,
        )
        return decision
