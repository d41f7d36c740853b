"""Request bodies through the gateway of the running platform (conventions.md "HTTP APIs": 413
and 415; issue 8 item 1).

Found by a review: a 20 MiB JSON login body was read and validated (422, not 413), a 200 MB body
without a token made a service grow ~400 MB before its 401, and a JSON body sent as
``text/plain`` was a 422, not a 415. How far a refused body is read is counted in
tests/integration/test_bodies.py; here the platform as a client meets it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from mint.dev.platform import Platform
from tests.e2e.conftest import register
from tests.fixtures.documents import make_png

MiB = 1024 * 1024
BOUND = MiB  # MINT_MAX_BODY_BYTES, by default
PASSWORD = "Correct-Horse-42"  # what conftest.register uses
JSON = {"Content-Type": "application/json"}
#: Each service's public prefix and, where it has one, an operation taking a JSON body.
JSON_OPERATIONS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "auth": ("/api/v1/auth", ("POST", "/api/v1/auth/login")),
    "wallet": ("/api/v1/wallet", None),
    "transactions": ("/api/v1/transactions", ("POST", "/api/v1/transactions/transfer")),
    "kyc": ("/api/v1/kyc", ("PUT", "/api/v1/kyc/profile")),
}


def login_of(email: str, password_bytes: int) -> bytes:
    """A well-formed login document whose password is ``password_bytes`` long."""
    return b'{"email":"' + email.encode() + b'","password":"' + b"p" * password_bytes + b'"}'


def streamed(body: bytes, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """``body`` sent without Content-Length (chunked)."""
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def login(gateway: httpx.Client, **kwargs: Any) -> httpx.Response:
    response = gateway.post("/api/v1/auth/login", **kwargs)
    gateway.cookies.clear()
    return response


def test_a_20_mib_login_is_413_with_and_without_content_length(gateway: httpx.Client) -> None:
    user = register(gateway, "Bulky")
    huge = login_of(user.email, 20 * MiB)
    declared = login(gateway, content=huge, headers=JSON)
    assert problem(declared, 413, "payload_too_large")["max_bytes"] == BOUND
    chunked = login(gateway, content=streamed(huge), headers=JSON)
    assert "content-length" not in chunked.request.headers
    problem(chunked, 413, "payload_too_large")
    # auth still answers, and a login just under the bound is read and judged on its merits
    ok = login(gateway, json={"email": user.email, "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    near = login_of(user.email, BOUND - 200)
    assert len(near) <= BOUND
    too_long = login(gateway, content=streamed(near), headers=JSON)
    problem(too_long, 422, "validation_error")  # the password is too long, the body is not


def test_a_body_is_refused_before_its_caller_is_authenticated(gateway: httpx.Client) -> None:
    profile = {"country": "DE", "full_name": "x" * (2 * MiB), "date_of_birth": "1990-01-01"}
    big = httpx.Request("PUT", "http://x", json=profile).read()
    for body in (big, streamed(big)):  # no token: 413, not a 401 after reading it all
        r = gateway.put("/api/v1/kyc/profile", content=body, headers=JSON)
        problem(r, 413, "payload_too_large")
    no_token = gateway.put("/api/v1/kyc/profile", json={"country": "DE"})
    problem(no_token, 401, "unauthorized")  # kyc still answers


def test_every_service_bounds_bodies_itself(platform: Platform) -> None:
    """Behind the gateway, each service (a service is reachable without it in a cluster)."""
    oversized = b"{" + b" " * BOUND + b"}"
    for service, (prefix, json_operation) in JSON_OPERATIONS.items():
        with httpx.Client(base_url=f"http://127.0.0.1:{platform.http_ports[service]}") as direct:
            declared = direct.post(prefix, content=oversized, headers=JSON)
            assert problem(declared, 413, "payload_too_large")["max_bytes"] == BOUND, service
            if json_operation is not None:
                method, path = json_operation
                chunked = direct.request(method, path, content=streamed(oversized), headers=JSON)
                problem(chunked, 413, "payload_too_large")
            assert direct.get("/healthz").status_code == 200, service


def test_json_sent_as_another_type_is_415(gateway: httpx.Client) -> None:
    user = register(gateway, "Typist")
    document = f'{{"email":"{user.email}","password":"{PASSWORD}"}}'.encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        r = login(gateway, content=document, headers={"Content-Type": content_type})
        problem(r, 415, "unsupported_media_type")
    untyped = login(gateway, content=document)
    problem(untyped, 415, "unsupported_media_type")
    profile = gateway.put(
        "/api/v1/kyc/profile",
        content=b'{"country":"DE"}',
        headers={**user.headers, "Content-Type": "text/plain"},
    )
    problem(profile, 415, "unsupported_media_type")


def test_json_with_a_charset_and_an_empty_untyped_body_are_accepted(
    gateway: httpx.Client,
) -> None:
    user = register(gateway, "Charset")
    document = f'{{"email":"{user.email}","password":"{PASSWORD}"}}'.encode()
    with_charset = login(
        gateway,
        content=document,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert with_charset.status_code == 200, with_charset.text
    token = with_charset.json()["access_token"]
    # POST /logout with a Bearer token and no body at all: no Content-Type needed
    logout = gateway.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert "content-type" not in logout.request.headers
    assert logout.status_code == 204, logout.text


def test_a_multipart_upload_keeps_its_own_bound(gateway: httpx.Client) -> None:
    user = register(gateway, "Uploader")
    limit = 10 * MiB  # kyc's MINT_KYC_MAX_UPLOAD_BYTES, within the kit's MINT_MAX_UPLOAD_BYTES

    def upload(content: bytes) -> httpx.Response:
        return gateway.post(
            "/api/v1/kyc/documents",
            files={"file": ("big.png", content, "image/png")},
            data={"type": "OTHER"},
            headers=user.headers,
        )

    png = make_png()
    nine_mib = png + b"\0" * (9 * MiB - len(png))
    accepted = upload(nine_mib)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["size"] == len(nine_mib)
    # just over kyc's bound: kyc's own refusal comes through the gateway, not the kit's
    over = upload(png + b"\0" * (limit + 1 - len(png)))
    assert problem(over, 413, "file_too_large")["max_bytes"] == limit
