"""HTTP only: the answer of a settled money movement — 201 with the transaction object (202
when it awaits a fraud review), or the problem+json of its refusal (the kit's one kind → status
mapping). The first request answers it and its idempotency row stores it for replays; the use
cases get it as ``Wiring.render``, so they never build an HTTP answer themselves."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from mint.kit.errors import PROBLEM_CONTENT_TYPE, problem_from_error
from mint.transactions.domain import Status
from mint.transactions.outcomes import Settled
from mint.transactions.schemas import TransactionOut


def render(settled: Settled) -> tuple[int, dict[str, Any]]:
    """(status, body) of the request that created ``settled.transaction``."""
    refusal = settled.refusal()
    if refusal is None:
        # 202: accepted, under review (PENDING with its hold); 201: the money moved
        status = 202 if settled.transaction.status == Status.PENDING else 201
        return status, TransactionOut.model_validate(settled.transaction).model_dump(mode="json")
    problem = problem_from_error(refusal)
    return problem.status, problem.body()


def respond(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_CONTENT_TYPE if status >= 400 else None
    )
