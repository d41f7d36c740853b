"""mint.kit.domain: one error model, mapped once for HTTP (mint.kit.errors) and once for gRPC
(mint.kit.rpc) — every kind has its status on both edges, and a call's failure comes back as
the same error."""

from __future__ import annotations

import grpc
import pytest

from mint.kit.domain import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    Kind,
    NotFound,
    RateLimited,
    Refused,
    Unauthenticated,
    Unavailable,
)
from mint.kit.errors import HTTP_STATUS, problem_from_error
from mint.kit.rpc import GRPC_STATUS, RpcFailed, error_from_rpc


class _Failed(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_every_kind_has_an_http_and_a_grpc_status() -> None:
    assert set(HTTP_STATUS) == set(GRPC_STATUS) == set(Kind)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Invalid("invalid_amount"), 422),
        (NotFound("wallet_not_found"), 404),
        (Refused("insufficient_funds"), 422),
        (Conflict("email_taken"), 409),
        (Unauthenticated("invalid_credentials"), 401),
        (Forbidden("account_frozen"), 403),
        (RateLimited("too_many_requests", retry_after=7), 429),
        (Unavailable(), 503),
    ],
)
def test_http_answer_and_grpc_round_trip(error: DomainError, status: int) -> None:
    problem = problem_from_error(error)
    assert (problem.status, problem.code) == (status, error.code)
    if isinstance(error, RateLimited):
        assert problem.headers["Retry-After"] == "7"
    back = error_from_rpc(_Failed(GRPC_STATUS[error.kind], error.code))
    if error.kind is Kind.UNAUTHENTICATED:  # between services: a wrong internal token, a 500
        assert isinstance(back, RpcFailed)
        return
    assert isinstance(back, DomainError)
    assert (back.kind, back.code) == (error.kind, error.code)


def test_extra_fields_travel_but_never_replace_the_problem_members() -> None:
    body = problem_from_error(Refused("limit_exceeded", "daily", limit="daily", remaining=5)).body()
    assert (body["status"], body["limit"], body["remaining"]) == (422, "daily", 5)
    with pytest.raises(ValueError, match="status"):
        problem_from_error(Unavailable(status="PROCESSING"))
