"""mint.kit.errors: a database that cannot be reached is a 503 ``dependency_unavailable`` the
client may retry, never a 500; a database error that says the request or the code is wrong
stays a 500 (the PostgreSQL restart itself: tests/integration/test_postgres_restart.py)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from mint.kit.errors import install_error_handlers


class _DriverError(Exception):
    """Stands for the DB-API driver's exception that SQLAlchemy wraps."""


def _app(error: BaseException) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails")
    def fails() -> None:
        raise error

    return app


CONNECTION_REFUSED = sa_exc.OperationalError("SELECT 1", None, _DriverError("connection refused"))
CONNECTION_LOST = sa_exc.DBAPIError(
    "SELECT 1", None, _DriverError("server closed the connection"), connection_invalidated=True
)
POOL_EXHAUSTED = sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")
CONSTRAINT = sa_exc.IntegrityError("INSERT", None, _DriverError("duplicate key"))


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (CONNECTION_REFUSED, 503, "dependency_unavailable"),
        (CONNECTION_LOST, 503, "dependency_unavailable"),
        (POOL_EXHAUSTED, 503, "dependency_unavailable"),
        (CONSTRAINT, 500, "internal_error"),
    ],
    ids=["connection-refused", "connection-lost", "pool-exhausted", "constraint"],
)
def test_database_errors_answer(error: BaseException, status: int, code: str) -> None:
    response = TestClient(_app(error), raise_server_exceptions=False).get("/fails")
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["content-type"] == "application/problem+json"
