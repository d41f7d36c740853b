"""Bounded request bodies as they stream over a real connection (``mint.kit.bodies``;
conventions.md "HTTP APIs": 413 and 415): a kit-built service and the dev gateway, each on a
real uvicorn server over loopback, sent bodies of 20 MiB with and without Content-Length.

A tap between the server and the application counts the body bytes the application side pulls
from the server: a refused body is never read past its bound (in the probe that found this, a
200 MB body without a token made a service grow ~400 MB before its 401), and the connection
stays usable for the next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mint.dev.gateway import create_gateway
from mint.dev.platform import free_port
from mint.kit.bodies import MULTIPART_OVERHEAD_BYTES
from mint.kit.config import KitSettings
from mint.kit.http import create_app
from mint.kit.service import build_context
from tests.unit.test_kit_bodies import PREFIX, SERVICE, note_of, ran

MiB = 1024 * 1024
BOUND = MiB  # the defaults: MINT_MAX_BODY_BYTES, and MINT_MAX_UPLOAD_BYTES for the file
UPLOAD_BOUND = 10 * MiB + MULTIPART_OVERHEAD_BYTES
#: What one ``receive`` can hand over beyond the bound: uvicorn buffers up to 64 KiB before it
#: pauses reading, plus one socket read (256 KiB).
SERVER_READ_SLACK = 512 * 1024
JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": "Bearer ok"}


@dataclass
class BodyTap:
    """ASGI wrapper counting requests, the connections they came on, and the body bytes the
    application pulled from the server."""

    app: ASGIApp
    requests: int = 0
    pulled: int = 0
    peers: list[tuple[str, int]] = field(default_factory=list)

    def reset(self) -> None:
        self.requests = self.pulled = 0
        self.peers.clear()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        self.peers.append(tuple(scope["client"]))

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.pulled += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10  # only catches a server that never starts
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chunks(total: int, size: int = 64 * 1024, prefix: bytes = b"") -> Iterator[bytes]:
    """A body without Content-Length (chunked): ``prefix`` then zero bytes up to ``total``."""
    yield prefix
    sent = len(prefix)
    while sent < total:
        step = min(size, total - sent)
        yield b"\0" * step
        sent += step


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


# ---- a service -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[str, BodyTap]]:
    tap = BodyTap(create_app(build_context(SERVICE, KitSettings(service_name="bodies"))))
    with serving(tap) as url:
        yield url, tap


@pytest.fixture
def service_client(service: tuple[str, BodyTap]) -> Iterator[tuple[httpx.Client, BodyTap]]:
    url, tap = service
    tap.reset()
    ran.clear()
    with httpx.Client(base_url=url + PREFIX, timeout=30) as client:
        yield client, tap


def test_a_chunked_body_past_the_bound_is_413_and_never_read_further(
    service_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = service_client
    body = problem(
        client.post("/notes", content=chunks(20 * MiB), headers=JSON), 413, "payload_too_large"
    )
    assert body["max_bytes"] == BOUND
    assert BOUND < tap.pulled <= BOUND + SERVER_READ_SLACK, tap.pulled
    assert ran == {}  # no token was even looked at
    # the service answers the next request, on the same connection
    ok = client.post("/notes", content=note_of(100), headers={**AUTH, **JSON})
    assert ok.status_code == 201, ok.text
    assert tap.requests == 2 and tap.peers[0] == tap.peers[1]


def test_a_declared_oversize_is_413_before_a_byte_is_read(
    service_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = service_client
    oversized = b"x" * (20 * MiB)
    problem(client.post("/notes", content=oversized, headers=JSON), 413, "payload_too_large")
    assert tap.pulled == 0 and ran == {}
    ok = client.post("/notes", content=note_of(BOUND), headers={**AUTH, **JSON})
    assert ok.status_code == 201, ok.text
    assert tap.requests == 2 and tap.peers[0] == tap.peers[1]


def test_a_chunked_body_at_the_bound_is_read_and_parsed(
    service_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = service_client
    whole = note_of(BOUND)
    streamed = (whole[i : i + 100_000] for i in range(0, len(whole), 100_000))
    r = client.post("/notes", content=streamed, headers={**AUTH, **JSON})
    assert r.status_code == 201, r.text
    assert tap.pulled == BOUND


def test_a_text_plain_json_body_is_415_at_its_first_bytes(
    service_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = service_client
    first = b'{"text":"' + b"x" * 1000
    r = client.post(
        "/notes", content=chunks(BOUND, prefix=first), headers={"Content-Type": "text/plain"}
    )
    problem(r, 415, "unsupported_media_type")
    assert ran == {}
    assert tap.pulled <= SERVER_READ_SLACK, tap.pulled


def test_a_multipart_upload_streams_up_to_the_upload_bound(
    service_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, _ = service_client
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    accepted = client.post("/upload", content=chunks(UPLOAD_BOUND), headers=multipart)
    assert accepted.status_code == 200 and accepted.json() == {"received": UPLOAD_BOUND}
    over = client.post("/upload", content=chunks(UPLOAD_BOUND + 1), headers=multipart)
    assert problem(over, 413, "payload_too_large")["max_bytes"] == UPLOAD_BOUND


# ---- the dev gateway -----------------------------------------------------------------------


#: Requests whose body the upstream saw cut off (the client went away mid-body).
aborted: list[int] = []


async def _received(scope: Scope, receive: Receive, send: Send) -> None:
    """An upstream without any bound of its own: reads everything it is sent."""
    size = 0
    try:
        async for chunk in Request(scope, receive).stream():
            size += len(chunk)
    except ClientDisconnect:
        aborted.append(size)
        return
    await JSONResponse({"received": size})(scope, receive, send)


def upstream_aborts(count: int) -> list[int]:
    """The sizes of the first ``count`` bodies the upstream saw cut off. The gateway answers its
    client at once; its upstream learns of the abort a moment later."""
    deadline = time.monotonic() + 10  # only catches an upstream request that is never ended
    while len(aborted) < count:
        assert time.monotonic() < deadline, f"the upstream saw {aborted} cut off"
        time.sleep(0.01)
    return aborted[:count]


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[str, BodyTap]]:
    upstream = Starlette()
    upstream.router.default = _received
    tap = BodyTap(upstream)
    with serving(tap) as upstream_url, serving(create_gateway({"wallet": upstream_url})) as url:
        yield url, tap


@pytest.fixture
def gateway_client(gateway: tuple[str, BodyTap]) -> Iterator[tuple[httpx.Client, BodyTap]]:
    url, tap = gateway
    tap.reset()
    aborted.clear()
    with httpx.Client(base_url=url + "/api/v1/wallet", timeout=30) as client:
        yield client, tap


def test_the_gateway_refuses_a_chunked_body_past_the_bound_itself(
    gateway_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = gateway_client
    body = problem(
        client.post("/x", content=chunks(20 * MiB), headers=JSON), 413, "payload_too_large"
    )
    assert body["max_bytes"] == BOUND
    assert tap.pulled <= BOUND  # the chunk that crossed the bound was never forwarded
    # the upstream request was cut off, never ended as if the body were complete
    (cut_at,) = upstream_aborts(1)
    assert tap.requests == 1 and cut_at <= BOUND
    after = client.post("/x", content=b"{}", headers=JSON)
    assert after.status_code == 200 and after.json() == {"received": 2}


def test_the_gateway_refuses_a_declared_oversize_without_calling_the_service(
    gateway_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = gateway_client
    r = client.post("/x", content=b"x" * (20 * MiB), headers=JSON)
    problem(r, 413, "payload_too_large")
    assert tap.requests == 0
    assert client.post("/x", content=b"x" * BOUND).json() == {"received": BOUND}
    assert tap.requests == 1


def test_the_gateway_streams_uploads_up_to_the_upload_bound(
    gateway_client: tuple[httpx.Client, BodyTap],
) -> None:
    client, tap = gateway_client
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    accepted = client.post("/x", content=chunks(UPLOAD_BOUND), headers=multipart)
    assert accepted.json() == {"received": UPLOAD_BOUND}
    over = client.post("/x", content=chunks(UPLOAD_BOUND + 1), headers=multipart)
    assert problem(over, 413, "payload_too_large")["max_bytes"] == UPLOAD_BOUND
    (cut_at,) = upstream_aborts(1)
    assert tap.requests == 2 and cut_at <= UPLOAD_BOUND
