"""Bounded request bodies in the kit (``mint.kit.bodies``, installed by
``mint.kit.http.create_app``; conventions.md "HTTP APIs": 413 and 415), on an app built exactly
as a service's is.

Found by a review (issue 8): a 20 MiB JSON login body was read and validated (422, not 413), a
body without a token was read in full before its 401, and a JSON body sent as ``text/plain`` was
a 422, not a 415. The streaming side (chunked bodies on a real server, the dev gateway) is in
tests/integration/test_bodies.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, Header, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from structlog.testing import capture_logs

from mint.kit.bodies import MULTIPART_OVERHEAD_BYTES, BodyLimits, is_json
from mint.kit.config import KitSettings
from mint.kit.errors import PROBLEM_CONTENT_TYPE, Problem
from mint.kit.http import create_app
from mint.kit.service import Service, build_context

BOUND = 4096
UPLOAD = 16384
PREFIX = "/api/v1/bodies"

#: How often the test service's authentication and endpoints ran (reset per test).
ran: Counter[str] = Counter()


class Note(BaseModel):
    text: str


def authenticate(authorization: Annotated[str | None, Header()] = None) -> str:
    ran["authenticate"] += 1
    if authorization != "Bearer ok":
        raise Problem(401, "unauthorized")
    return "user"


User = Annotated[str, Depends(authenticate)]
router = APIRouter()


@router.post("/notes", status_code=201)
def create_note(note: Note, user: User) -> dict[str, str]:
    ran["create_note"] += 1
    return {"text": note.text, "by": user}


@router.post("/logout", status_code=204)
def logout(note: Note | None = None) -> None:
    """A JSON body that may be left out (as auth's logout)."""
    ran["logout"] += 1


@router.post("/ping")
def ping() -> dict[str, bool]:
    """No body parameter: whatever is sent is not looked at."""
    ran["ping"] += 1
    return {"pong": True}


@router.post("/upload")
async def upload(request: Request) -> dict[str, int]:
    """Reads its (multipart) body itself, as kyc's documents upload does."""
    ran["upload"] += 1
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"received": size}


SERVICE = Service(name="bodies", prefix=PREFIX, routers=[router])


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = KitSettings(service_name="bodies", max_body_bytes=BOUND, max_upload_bytes=UPLOAD)
    with TestClient(create_app(build_context(SERVICE, settings))) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _reset() -> None:
    ran.clear()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def note_of(size: int) -> bytes:
    """A valid ``Note`` JSON document of exactly ``size`` bytes."""
    frame = b'{"text":""}'
    return frame[:-2] + b"x" * (size - len(frame)) + frame[-2:]


AUTH = {"Authorization": "Bearer ok"}
JSON = {"Content-Type": "application/json"}


# ---- 413 -----------------------------------------------------------------------------------


def test_a_body_at_the_bound_is_accepted(client: TestClient) -> None:
    r = client.post(f"{PREFIX}/notes", content=note_of(BOUND), headers={**AUTH, **JSON})
    assert r.status_code == 201, r.text
    assert len(r.json()["text"]) == BOUND - len(b'{"text":""}')


def test_a_body_over_the_bound_is_413_before_authentication_or_parsing(
    client: TestClient,
) -> None:
    # without a token: the body is refused, never read in full and then answered 401
    body = problem(
        client.post(f"{PREFIX}/notes", content=note_of(BOUND + 1), headers=JSON),
        413,
        "payload_too_large",
    )
    assert body["max_bytes"] == BOUND
    assert body["title"] == "Content Too Large"
    # not even valid JSON: nothing parses it
    garbage = b"{" * (BOUND + 1)
    problem(
        client.post(f"{PREFIX}/notes", content=garbage, headers={**AUTH, **JSON}),
        413,
        "payload_too_large",
    )
    assert ran == Counter()


def test_an_oversized_body_is_413_on_a_route_that_never_reads_it(client: TestClient) -> None:
    problem(
        client.post(f"{PREFIX}/ping", content=b"x" * (BOUND + 1), headers=JSON),
        413,
        "payload_too_large",
    )
    assert ran == Counter()


def test_a_multipart_upload_has_the_upload_bound(client: TestClient) -> None:
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    most = UPLOAD + MULTIPART_OVERHEAD_BYTES
    accepted = client.post(f"{PREFIX}/upload", content=b"x" * most, headers=multipart)
    assert accepted.status_code == 200 and accepted.json() == {"received": most}
    over = client.post(f"{PREFIX}/upload", content=b"x" * (most + 1), headers=multipart)
    assert problem(over, 413, "payload_too_large")["max_bytes"] == most
    # any other type has the body bound, on the same route
    problem(client.post(f"{PREFIX}/upload", content=b"x" * (BOUND + 1)), 413, "payload_too_large")
    assert ran == Counter(upload=1)


def test_a_body_without_content_length_is_counted(client: TestClient) -> None:
    # httpx sends a generator chunked; the test client hands it over in one message
    streamed = client.post(
        f"{PREFIX}/notes", content=iter([note_of(BOUND + 1)]), headers={**AUTH, **JSON}
    )
    problem(streamed, 413, "payload_too_large")
    assert "content-length" not in streamed.request.headers
    # a route reading the stream itself learns of the refusal by an exception, which is the
    # middleware's own: no unhandled error is logged, no 500 goes out
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    with capture_logs() as logs:
        upload = client.post(
            f"{PREFIX}/upload",
            content=iter([b"x" * (UPLOAD + MULTIPART_OVERHEAD_BYTES + 1)]),
            headers=multipart,
        )
    problem(upload, 413, "payload_too_large")
    assert [entry for entry in logs if entry["log_level"] in ("error", "critical")] == []
    assert ran == Counter(upload=1)


# ---- 415 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        None,  # a body needs its type
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=b",
        "application/xml",
        "application/jsonx",
    ],
)
def test_a_json_body_of_another_type_is_415_before_authentication(
    client: TestClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for auth in ({}, AUTH):
        r = client.post(f"{PREFIX}/notes", content=b'{"text":"hi"}', headers={**auth, **headers})
        problem(r, 415, "unsupported_media_type")
    assert ran == Counter()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/merge-patch+json",
    ],
)
def test_json_with_parameters_or_a_json_suffix_is_accepted(
    client: TestClient, content_type: str
) -> None:
    r = client.post(
        f"{PREFIX}/notes",
        content=b'{"text":"hi"}',
        headers={**AUTH, "Content-Type": content_type},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"text": "hi", "by": "user"}


def test_an_empty_body_needs_no_content_type(client: TestClient) -> None:
    assert client.post(f"{PREFIX}/logout").status_code == 204
    assert (
        client.post(f"{PREFIX}/logout", headers={"Content-Type": "text/plain"}).status_code == 204
    )
    # a required body left out is a validation error, not a media type one
    missing = client.post(f"{PREFIX}/notes", headers=AUTH)
    assert problem(missing, 422, "validation_error")["errors"][0]["loc"] == ["body"]
    assert ran == Counter(logout=2, authenticate=1)


def test_a_route_without_a_json_body_does_not_look_at_the_type(client: TestClient) -> None:
    r = client.post(f"{PREFIX}/ping", content=b"hello", headers={"Content-Type": "text/plain"})
    assert r.status_code == 200, r.text


def test_malformed_json_is_still_a_400(client: TestClient) -> None:
    problem(
        client.post(f"{PREFIX}/notes", content=b'{"text":', headers={**AUTH, **JSON}),
        400,
        "malformed_json",
    )


# ---- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json;charset=utf-8", True),
        (" APPLICATION/JSON ", True),
        ("application/problem+json", True),
        ("application/json-seq", False),
        ("text/json", False),
        ("", False),
    ],
)
def test_is_json(content_type: str, expected: bool) -> None:
    assert is_json(content_type) is expected


def test_the_bound_follows_the_content_type_and_the_settings() -> None:
    limits = BodyLimits.from_settings(KitSettings())
    assert limits == BodyLimits(body_bytes=1024 * 1024, upload_bytes=10 * 1024 * 1024)
    assert limits.bound_for("application/json") == 1024 * 1024
    assert limits.bound_for("") == 1024 * 1024
    assert limits.bound_for("Multipart/Form-Data; boundary=x") == (
        10 * 1024 * 1024 + MULTIPART_OVERHEAD_BYTES
    )


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINT_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("MINT_MAX_UPLOAD_BYTES", "4096")
    assert BodyLimits.from_settings(KitSettings()) == BodyLimits(2048, 4096)


# ---- the OpenAPI document ------------------------------------------------------------------


def test_the_document_says_where_413_and_415_are_answered(client: TestClient) -> None:
    doc = client.get(f"{PREFIX}/openapi.json").json()
    notes = doc["paths"][f"{PREFIX}/notes"]["post"]["responses"]
    assert notes["413"]["description"].startswith("payload_too_large")
    assert notes["415"]["description"].startswith("unsupported_media_type")
    assert notes["413"]["content"] == {
        PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert {"413", "415"} <= set(doc["paths"][f"{PREFIX}/logout"]["post"]["responses"])
    # no body: nothing to bound or to type
    assert not {"413", "415"} & set(doc["paths"][f"{PREFIX}/ping"]["post"]["responses"])
    assert doc["components"]["schemas"]["Problem"]["properties"]["max_bytes"]["type"] == "integer"
