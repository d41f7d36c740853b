"""The dev gateway (``mint.dev.gateway``) in front of a real upstream, both real uvicorn servers
on loopback. Found by tests/e2e/test_fuzz.py: an escaped control character in a path was a 500
(the path was decoded, then rebuilt into an invalid URL) and an escaped newline a text/plain 404
(the catch-all route's pattern does not match a newline)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mint.dev.gateway import create_gateway

INTERNAL_TOKEN = "gateway-test-internal-token"


def _echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "x_forwarded_for": request.headers.get("x-forwarded-for"),
            "edge_headers": sorted(h for h in request.headers if h.startswith("x-mint-")),
        }
    )


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    upstream = Starlette(routes=[Route("/{path:path}", _echo, methods=methods)])
    # The route pattern cannot match a newline: such paths reach the fallback echo.
    upstream.router.default = _fallback
    servers: list[uvicorn.Server] = []
    try:
        base = _serve(upstream, servers)
        yield _serve(create_gateway({"wallet": base}, internal_token=INTERNAL_TOKEN), servers)
    finally:
        for server in servers:
            server.should_exit = True


async def _fallback(scope: Any, receive: Any, send: Any) -> None:
    await _echo(Request(scope, receive))(scope, receive, send)


def _serve(app: Any, servers: list[uvicorn.Server]) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", proxy_headers=False)
    )
    servers.append(server)
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/wallet/%08%C3%B3",  # an escaped control character
        "/api/v1/wallet/a%0Ab/cancel",  # an escaped newline
        "/api/v1/wallet/a%2Fb%3F%23",  # escaped separators stay escaped
        "/api/v1/wallet/%F1%AC",  # not UTF-8
    ],
)
def test_the_path_is_forwarded_as_sent(gateway_url: str, path: str) -> None:
    r = httpx.post(gateway_url + path, json={})
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("method", "raw_path")} == {"method": "POST", "raw_path": path}


def test_unrouted_paths_are_problems(gateway_url: str) -> None:
    r = httpx.get(gateway_url + "/api/v1/nowhere%0A")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_the_gateway_is_the_edge_a_clients_forwarded_for_is_not_believed(gateway_url: str) -> None:
    r = httpx.get(
        gateway_url + "/api/v1/wallet/x", headers={"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    )
    assert r.status_code == 200
    assert r.json()["x_forwarded_for"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("proof", "named", "seen"),
    [
        (INTERNAL_TOKEN, "198.51.100.23", "198.51.100.23"),  # web, for its visitor
        (INTERNAL_TOKEN, "2001:db8::5", "2001:db8::5"),
        ("not-the-token", "198.51.100.23", "127.0.0.1"),  # anyone else's claim: ignored
        (None, "198.51.100.23", "127.0.0.1"),
        (INTERNAL_TOKEN, "not an address", "127.0.0.1"),
    ],
)
def test_a_first_party_app_names_its_visitor_with_the_internal_token(
    gateway_url: str, proof: str | None, named: str, seen: str
) -> None:
    headers = {"X-Mint-Forwarded-For": named, "X-Forwarded-For": "203.0.113.7"}
    if proof is not None:
        headers["X-Mint-Internal-Token"] = proof
    r = httpx.get(gateway_url + "/api/v1/wallet/x", headers=headers)
    assert r.status_code == 200
    assert r.json()["x_forwarded_for"] == seen
    assert r.json()["edge_headers"] == []  # the token and the claim never reach a service


def _raw_get(base_url: str, raw_path: str) -> tuple[int, str]:
    """Send the path byte for byte (HTTP clients normalise dot segments away)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET {raw_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode("latin-1").partition("\r\n\r\n")
    return int(head.split()[1]), head + "\n" + body


def test_dot_segments_are_never_routed(gateway_url: str) -> None:
    assert _raw_get(gateway_url, "/api/v1/wallet/x")[0] == 200  # the route itself works
    for raw in ("/api/v1/wallet/../../metrics", "/api/v1/wallet/./x", "/api/v1/wallet/%2e%2e/y"):
        status, text = _raw_get(gateway_url, raw)
        assert status == 404, (raw, text)
        assert "application/problem+json" in text
