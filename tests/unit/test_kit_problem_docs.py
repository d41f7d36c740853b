"""The kit's error answers and how the OpenAPI document describes them (found missing by
tests/e2e/test_fuzz.py: every error was problem+json, the document said application/json)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from mint.kit.errors import PROBLEM_CONTENT_TYPE, Problem, install_error_handlers
from mint.kit.openapi import install_problem_docs
from mint.kit.security import CurrentUser

PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things", status_code=201, responses={409: {"description": "thing_exists"}})
    def create(body: Body, user: CurrentUser) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/open")
    def open_route() -> dict[str, str]:
        return {}

    @app.post("/echo")
    def echo(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    @app.get("/refused")
    def refused() -> None:
        raise Problem(409, "thing_exists")

    install_problem_docs(app)
    return app


def responses(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    result: dict[str, Any] = doc["paths"][path][method]["responses"]
    return result


def test_errors_are_documented_as_problems() -> None:
    doc = make_app().openapi()
    created = responses(doc, "/things", "post")
    assert set(created) == {"201", "400", "401", "409", "413", "415", "422"}
    for status in ("400", "401", "409", "413", "415", "422"):
        assert created[status]["content"] == {PROBLEM_CONTENT_TYPE: PROBLEM}, status
    assert created["409"]["description"] == "thing_exists"
    assert created["422"]["description"].startswith("validation_error")
    assert doc["paths"]["/things"]["post"]["security"] == [{"HTTPBearer": []}, {"APIKeyCookie": []}]
    # nothing to validate, no credentials needed: nothing added
    assert set(responses(doc, "/open", "get")) == {"200"}
    assert set(responses(doc, "/echo", "post")) == {"200", "400", "413", "415", "422"}
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail", "code"]


def test_the_document_is_built_once() -> None:
    app = make_app()
    assert app.openapi() is app.openapi()


def test_an_unhandled_error_is_a_problem_and_does_not_reach_the_server() -> None:
    # TestClient re-raises what reaches the server; the kit answers it itself, so the
    # connection a proxy keeps alive is not dropped.
    with TestClient(make_app()) as client:
        r = client.get("/boom")
        assert r.status_code == 500
        assert r.headers["content-type"] == PROBLEM_CONTENT_TYPE
        assert r.json()["code"] == "internal_error"
        assert "a bug" not in r.text
        assert client.get("/refused").json()["code"] == "thing_exists"
        bad_json = client.post(
            "/echo", content=b"\x00", headers={"content-type": "application/json"}
        )
        assert bad_json.json()["code"] == "malformed_json"
