"""problem+json errors (RFC 9457) with stable ``code`` strings, and their FastAPI handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mint.kit.domain import DomainError, Kind, RateLimited

PROBLEM_CONTENT_TYPE = "application/problem+json"
log = structlog.get_logger("mint.errors")

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error answered as problem+json. ``extra`` fields are added to the body."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail or code.replace("_", " ")
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return problem_body(self.status, self.code, self.detail, extra=self.extra)


#: The members RFC 9457 (and the kit) give a problem; extra fields never replace them.
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "instance"})


def problem_body(
    status: int, code: str, detail: str, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    extra = extra or {}
    clash = RESERVED_MEMBERS & extra.keys()
    if clash:
        raise ValueError(f"problem extra fields {sorted(clash)} would replace RFC 9457 members")
    return {
        "type": f"https://mint.dev/problems/{code.replace('_', '-')}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, detail, extra=extra),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


#: The HTTP edge of the domain error model (mint.kit.domain): one status per kind.
HTTP_STATUS: dict[Kind, int] = {
    Kind.INVALID: 422,
    Kind.NOT_FOUND: 404,
    Kind.REFUSED: 422,
    Kind.CONFLICT: 409,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.RATE_LIMITED: 429,
    Kind.UNAVAILABLE: 503,
}


def problem_from_error(error: DomainError) -> Problem:
    """The problem+json answer of a use case's :class:`DomainError`."""
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if error.kind is Kind.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    problem = Problem(HTTP_STATUS[error.kind], error.code, error.detail, headers=headers)
    problem.extra = dict(error.extra)  # not as keywords: an extra named like a parameter
    problem.body()  # refuses extras that would replace RFC 9457 members, here, not later
    return problem


# Convenience constructors for the common cases.
def not_found(code: str = "not_found", detail: str = "not found") -> Problem:
    return Problem(404, code, detail)


def unauthorized(detail: str = "missing or invalid access token") -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(code: str = "forbidden", detail: str = "not allowed") -> Problem:
    return Problem(403, code, detail)


def unavailable(detail: str = "a dependency is unavailable") -> Problem:
    return Problem(503, "dependency_unavailable", detail)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or used right now (down, restarting,
    the connection lost, the pool exhausted) rather than that the request or the code is wrong:
    a 503 the client may retry, never a 500."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within pool_timeout
        return True
    if isinstance(exc, sa_exc.OperationalError):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated


def database_unavailable_response(exc: BaseException) -> JSONResponse:
    log.warning("database_unavailable", error_type=type(exc).__name__, error=str(exc)[:500])
    return problem_response(503, "dependency_unavailable", "the database is unavailable")


class UnhandledErrorMiddleware:
    """An exception no handler took becomes a logged 500 problem *here*, instead of reaching the
    server: uvicorn closes the connection of an application that raised, and a proxy reusing
    that keep-alive connection (the gateway, an ingress) then fails the next, unrelated request
    on it with a 502/503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:  # too late for an answer: the server ends the connection
                log.exception("unhandled_error", error_type=type(exc).__name__)
                raise
            if database_unavailable(exc):
                response = database_unavailable_response(exc)
            else:
                log.exception("unhandled_error", error_type=type(exc).__name__)
                response = problem_response(500, "internal_error", "internal server error")
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """The problem+json handlers, and :class:`UnhandledErrorMiddleware` (call this before
    adding other middleware, so that it sits innermost and theirs see its 500)."""
    app.add_middleware(UnhandledErrorMiddleware)

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return JSONResponse(
            exc.body(), status_code=exc.status, media_type=PROBLEM_CONTENT_TYPE, headers=exc.headers
        )

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        problem = problem_from_error(exc)
        return JSONResponse(
            problem.body(),
            status_code=problem.status,
            media_type=PROBLEM_CONTENT_TYPE,
            headers=problem.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
            for err in exc.errors()
        ]
        # Malformed JSON is a 400; a well-formed body that breaks a rule is a 422.
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem_response(400, "malformed_json", "request body is not valid JSON")
        return problem_response(422, "validation_error", "request validation failed", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        return problem_response(exc.status_code, code, detail, headers=exc.headers)

    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            return database_unavailable_response(exc)
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return problem_response(500, "internal_error", "internal server error")

    @app.exception_handler(Exception)
    async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return problem_response(500, "internal_error", "internal server error")
