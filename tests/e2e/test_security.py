"""Security end to end through the gateway (spec/quality.md "Security", conventions.md
"Authentication and authorisation"): another user's objects are 404s, frozen users cannot move
money even with a still-valid access token, gRPC stays internal, secrets never reach logs,
events or error bodies, and the ledger's invariants hold after all of it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import grpc
import httpx
import pytest

from mint.dev.platform import Platform
from tests.e2e.conftest import User, trace_file
from tests.e2e.security_support import (
    INTERNAL_METHODS,
    TRACE_MARKERS,
    Admin,
    assert_failed_transaction,
    assert_not_internal,
    assert_problem,
    balance,
    grpc_call,
    leaks,
    ledger_check,
    mailed_token,
    malformed_requests,
    move,
    read_topics,
    users,
)
from tests.fixtures.documents import make_pdf, make_png

PASSWORD = "Correct-Horse-42"  # what conftest.register uses


# ---- 1. object-level authorisation -------------------------------------------------------------


def test_another_users_transactions_are_404_and_never_listed(gateway: httpx.Client) -> None:
    alice, bob, eve = users(gateway, "Alice", "Bob", "Eve")
    topup = move(gateway, alice, "topup", 5_000)
    assert topup.status_code == 201, topup.text
    paid = move(gateway, alice, "transfer", 1_200, recipient=bob)
    assert paid.status_code == 201, paid.text
    own = move(gateway, eve, "topup", 300)
    assert own.status_code == 201, own.text
    foreign = [topup.json()["id"], paid.json()["id"]]
    empty: tuple[dict[str, Any] | None, ...] = (None, {})

    for txn_id in foreign:
        assert_problem(gateway.get(f"/api/v1/transactions/{txn_id}", headers=eve.headers), 404)
        for body in empty:  # an empty body or {} (conventions.md)
            r = gateway.post(
                f"/api/v1/transactions/{txn_id}/cancel", json=body, headers=eve.headers
            )
            assert_problem(r, 404)
    # Bob, not a party to Alice's top-up, cannot see it either; he can see what he received.
    assert_problem(gateway.get(f"/api/v1/transactions/{foreign[0]}", headers=bob.headers), 404)
    assert gateway.get(f"/api/v1/transactions/{foreign[1]}", headers=bob.headers).status_code == 200
    # A well-formed id that exists nowhere is the same 404 as someone else's.
    missing = gateway.get(f"/api/v1/transactions/{uuid.uuid4()}", headers=eve.headers)
    assert (
        assert_problem(missing, 404)["code"]
        == assert_problem(
            gateway.get(f"/api/v1/transactions/{foreign[1]}", headers=eve.headers), 404
        )["code"]
    )

    # Listing, with every filter and with query parameters naming someone else, shows only mine.
    queries = [
        "", "?status=COMPLETED", "?type=TRANSFER", "?type=TOPUP", "?limit=100",
        f"?user_id={alice.id}", f"?sender_id={alice.id}", f"?recipient_id={bob.id}",
    ]  # fmt: skip
    for query in queries:
        r = gateway.get(f"/api/v1/transactions{query}", headers=eve.headers)
        if r.status_code == 422:  # unknown filters may be refused; never honoured
            continue
        assert r.status_code == 200, r.text
        assert {t["id"] for t in r.json()["items"]} <= {own.json()["id"]}, query
    mine = gateway.get("/api/v1/transactions", headers=eve.headers).json()["items"]
    assert [t["id"] for t in mine] == [own.json()["id"]]
    # Alice's cursor used by Eve continues Eve's list, never Alice's.
    page = gateway.get("/api/v1/transactions?limit=1", headers=alice.headers).json()
    assert page["next_cursor"], page
    r = gateway.get(
        "/api/v1/transactions", params={"cursor": page["next_cursor"]}, headers=eve.headers
    )
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert {t["id"] for t in r.json()["items"]} <= {own.json()["id"]}


def test_wallet_endpoints_show_only_the_callers_wallet(gateway: httpx.Client) -> None:
    alice, bob, eve = users(gateway, "Alice", "Bob", "Eve")
    assert move(gateway, alice, "topup", 4_000).status_code == 201
    assert move(gateway, alice, "transfer", 700, recipient=bob).status_code == 201
    assert move(gateway, alice, "transfer", 800, recipient=bob).status_code == 201
    alice_wallet = gateway.get("/api/v1/wallet", headers=alice.headers).json()

    for query in ("", f"?user_id={alice.id}", f"?id={alice_wallet['id']}"):
        r = gateway.get(f"/api/v1/wallet{query}", headers=eve.headers)
        assert r.status_code == 200, r.text
        assert (r.json()["user_id"], r.json()["balance"]) == (eve.id, 0)
    # No route takes a wallet or user id: anyone's wallet by id is a 404.
    for path in (alice_wallet["id"], alice.id, f"{alice.id}/history"):
        assert_problem(gateway.get(f"/api/v1/wallet/{path}", headers=eve.headers), 404)

    for query in ("", f"?user_id={alice.id}", "?limit=100"):
        r = gateway.get(f"/api/v1/wallet/history{query}", headers=eve.headers)
        assert r.status_code == 200 and r.json()["items"] == [], r.text
    bob_items = gateway.get("/api/v1/wallet/history", headers=bob.headers).json()["items"]
    assert sorted(i["amount"] for i in bob_items) == [700, 800]
    assert {i["counterparty_id"] for i in bob_items} == {alice.id}
    # Alice's history cursor used by Eve or Bob pages through their own entries only.
    page = gateway.get("/api/v1/wallet/history?limit=1", headers=alice.headers).json()
    assert page["next_cursor"], page
    for other in (eve, bob):
        r = gateway.get(
            "/api/v1/wallet/history", params={"cursor": page["next_cursor"]}, headers=other.headers
        )
        assert r.status_code in (200, 422), r.text
        if r.status_code == 200:
            mine = {(i["transfer_id"], i["amount"]) for i in bob_items} if other is bob else set()
            assert {(i["transfer_id"], i["amount"]) for i in r.json()["items"]} <= mine


def test_kyc_documents_are_only_ever_the_callers_own(gateway: httpx.Client) -> None:
    alice, eve = users(gateway, "Alice", "Eve")
    r = gateway.post(
        "/api/v1/kyc/documents",
        files={"file": ("passport.pdf", make_pdf("Alice Example"), "application/pdf")},
        data={"type": "PASSPORT"},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    doc = r.json()

    # No public route takes a document id; if one ever appears it must 404 for Eve.
    spec = gateway.get("/api/v1/kyc/openapi.json").json()
    templated = [p for p in spec["paths"] if "{" in p]
    for path in templated:
        concrete = path.split("{", 1)[0] + doc["id"]
        for method in spec["paths"][path]:
            r = gateway.request(method.upper(), concrete, headers=eve.headers)
            assert_problem(r, 404)
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = gateway.request(method, f"/api/v1/kyc/documents/{doc['id']}", headers=eve.headers)
        assert r.status_code in (404, 405), r.text
        assert r.status_code != 403

    # Eve "replacing" a PASSPORT only ever touches her own profile.
    r = gateway.post(
        "/api/v1/kyc/documents",
        files={"file": ("evil.png", make_png(8, 8), "image/png")},
        data={"type": "PASSPORT", "document_id": doc["id"]},
        headers=eve.headers,
    )
    assert r.status_code in (201, 400, 422), r.text
    eve_docs = gateway.get("/api/v1/kyc", headers=eve.headers).json()["documents"]
    assert doc["id"] not in {d["id"] for d in eve_docs}
    alice_docs = gateway.get("/api/v1/kyc", headers=alice.headers).json()["documents"]
    assert [(d["id"], d["file_name"]) for d in alice_docs] == [(doc["id"], "passport.pdf")]


# ---- 2. frozen users ---------------------------------------------------------------------------


def test_frozen_user_cannot_move_money_with_a_still_valid_token(
    platform: Platform, gateway: httpx.Client
) -> None:
    frozen, friend = users(gateway, "Frozen", "Friend")
    login = gateway.post("/api/v1/auth/login", json={"email": frozen.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    refresh_token = login.json()["refresh_token"]
    gateway.cookies.clear()
    assert move(gateway, frozen, "topup", 10_000).status_code == 201
    assert move(gateway, friend, "topup", 10_000).status_code == 201
    admin = Admin(platform)
    admin.freeze(frozen)
    try:
        for kind, recipient in (("transfer", friend), ("withdraw", None)):
            r = move(gateway, frozen, kind, 1_000, recipient=recipient)
            assert_problem(r, 403, "account_frozen")
            assert_failed_transaction(gateway, frozen, r)
        r = move(gateway, frozen, "topup", 1_000)
        assert 400 <= r.status_code < 500, r.text  # refused (its code: the xfail test below)
        assert_failed_transaction(gateway, frozen, r)
        # Paying the frozen user: refused without saying why.
        r = move(gateway, friend, "transfer", 500, recipient=frozen)
        body = assert_problem(r, 422, "recipient_unavailable")
        assert "frozen" not in json.dumps(body).lower()
        assert_failed_transaction(gateway, friend, r)
        assert (balance(gateway, frozen), balance(gateway, friend)) == (10_000, 10_000)

        r = gateway.post("/api/v1/auth/login", json={"email": frozen.email, "password": PASSWORD})
        assert_problem(r, 403, "account_frozen")
        r = gateway.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert r.status_code in (401, 403), r.text
        assert_problem(r, r.status_code)
        assert "access_token" not in r.json()
    finally:
        admin.unfreeze(frozen)
        gateway.cookies.clear()

    r = gateway.post("/api/v1/auth/login", json={"email": frozen.email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    gateway.cookies.clear()
    thawed = User(id=frozen.id, email=frozen.email, token=r.json()["access_token"])
    assert move(gateway, thawed, "topup", 1_000).status_code == 201
    assert move(gateway, thawed, "transfer", 2_000, recipient=friend).status_code == 201
    assert move(gateway, thawed, "withdraw", 500).status_code == 201
    assert move(gateway, friend, "transfer", 300, recipient=thawed).status_code == 201
    assert (balance(gateway, thawed), balance(gateway, friend)) == (8_800, 11_700)


def test_frozen_users_top_up_is_refused_as_account_frozen(
    platform: Platform, gateway: httpx.Client
) -> None:
    (frozen,) = users(gateway, "FrozenTopup")
    admin = Admin(platform)
    admin.freeze(frozen)
    try:
        r = move(gateway, frozen, "topup", 1_000)
        assert_problem(r, 403, "account_frozen")
    finally:
        admin.unfreeze(frozen)
    assert balance(gateway, frozen) == 0


# ---- 3. gRPC is internal only ------------------------------------------------------------------


def test_gateway_never_routes_grpc(platform: Platform, gateway: httpx.Client) -> None:
    alice, bob = users(gateway, "Alice", "Bob")
    paths = [
        "/mint.wallet.v1.WalletService/Transfer", "/mint.wallet.v1.WalletService/Freeze",
        "/mint.auth.v1.AuthService/SetRole", "/mint.kyc.v1.KycService/GetDocument",
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]  # fmt: skip
    grpc_headers = {"content-type": "application/grpc", "te": "trailers", **alice.headers}
    for path in paths:
        r = gateway.post(path, content=b"\x00\x00\x00\x00\x00", headers=grpc_headers)
        assert r.status_code == 404, (path, r.status_code, r.text)
    assert (balance(gateway, alice), balance(gateway, bob)) == (0, 0)


def test_gateway_never_escapes_the_routed_prefix_with_encoded_segments(platform: Platform) -> None:
    """Encoded dot segments and slashes never reach a service's internal /metrics, /readyz or
    /healthz (only the ingress prefixes are public)."""
    for path in (
        "/metrics", "/readyz", "/api/v1/auth/%2E%2E/%2E%2E/%2E%2E/metrics",
        "/api/v1/kyc/..%2F..%2F..%2Fmetrics", "/api/v1/wallet/%2e%2e%2f%2e%2e%2f%2e%2e%2freadyz",
        "/api/v1/transactions/..%2F..%2F..%2Fhealthz",
    ):  # fmt: skip
        assert_not_internal(platform, path)


def test_gateway_never_escapes_the_routed_prefix_with_dot_segments(platform: Platform) -> None:
    for path in (
        "/api/v1/auth/../../../metrics", "/api/v1/wallet/../../../readyz",
        "/api/v1/kyc/x/../../../../healthz", "/api/v1/transactions/./../../../metrics",
    ):  # fmt: skip
        assert_not_internal(platform, path)


def test_gateway_answers_control_characters_in_paths_with_a_problem(
    gateway: httpx.Client,
) -> None:
    (user,) = users(gateway, "Nul")
    for path in ("/api/v1/transactions/%00", "/api/v1/wallet/%0a", "/api/v1/kyc/%7f"):
        r = gateway.get(path, headers=user.headers)
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
        assert_problem(r, r.status_code)


@pytest.mark.parametrize("token", [None, "", "not-the-internal-token"])
def test_grpc_without_the_internal_token_is_unauthenticated(
    platform: Platform, token: str | None
) -> None:
    codes = {m: grpc_call(platform, m, token) for m in INTERNAL_METHODS}
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, codes
    # Control: with the token the same calls reach the servicers (and refuse the empty request).
    with_token = {m: grpc_call(platform, m, platform.internal_token()) for m in INTERNAL_METHODS}
    assert grpc.StatusCode.UNAUTHENTICATED not in with_token.values(), with_token


# ---- 4. secrets never in logs, events or error bodies ------------------------------------------


def test_secrets_never_in_logs_events_or_responses(
    platform: Platform, gateway: httpx.Client
) -> None:
    address = f"secret-{uuid.uuid4().hex[:8]}@example.com"
    password, new_password = f"Pw-{uuid.uuid4().hex}", f"Np-{uuid.uuid4().hex}"
    wrong = f"Wrong-{uuid.uuid4().hex}"
    secrets: dict[str, str] = {"password": password, "new password": new_password}
    secrets["wrong password"] = wrong
    bodies: list[str] = []

    def auth(path: str, status: int, **kwargs: Any) -> httpx.Response:
        r = gateway.post(f"/api/v1/auth/{path}", **kwargs)
        gateway.cookies.clear()
        assert r.status_code == status, (path, r.text)
        if r.status_code >= 400:
            bodies.append(r.text)
        return r

    reg = auth("register", 201, json={"email": address, "password": password, "name": "Sam"})
    user_id = reg.json()["user"]["id"]
    auth("register", 409, json={"email": address, "password": password, "name": "Sam"})
    auth("register", 422, json={"email": "nope", "password": password, "name": "S", "x": 1})
    auth("login", 401, json={"email": address, "password": wrong})
    login = auth("login", 200, json={"email": address, "password": password})
    refreshed = auth("refresh", 200, json={"refresh_token": login.json()["refresh_token"]})
    # reusing the rotated token revokes the family (auth.refresh_reused on audit.events)
    auth("refresh", 401, json={"refresh_token": login.json()["refresh_token"]})
    for i, r in enumerate((reg, login, refreshed)):
        secrets[f"access token {i}"] = r.json()["access_token"]
        secrets[f"refresh token {i}"] = r.json()["refresh_token"]
    headers = {"Authorization": f"Bearer {reg.json()['access_token']}"}
    auth("verify-email/request", 202, headers=headers)
    secrets["verify token"] = mailed_token(platform, address, "/verify-email")
    auth("verify-email", 204, json={"token": secrets["verify token"]})
    auth("password/forgot", 202, json={"email": address})
    secrets["reset token"] = mailed_token(platform, address, "/reset-password")
    auth("password/reset", 422, json={"token": secrets["reset token"], "new_password": "short"})
    auth(
        "password/reset", 204, json={"token": secrets["reset token"], "new_password": new_password}
    )
    auth(
        "password/reset", 422, json={"token": secrets["reset token"], "new_password": new_password}
    )
    auth("verify-email", 422, json={"token": secrets["verify token"]})
    relogin = auth("login", 200, json={"email": address, "password": new_password})
    secrets["access token 3"] = relogin.json()["access_token"]
    secrets["refresh token 3"] = relogin.json()["refresh_token"]

    def seen(blobs: list[bytes]) -> bool:
        wanted = [b"auth.user_verified", b"auth.password_reset", b"auth.refresh_reused"]
        return all(any(w in b and user_id.encode() in b for b in blobs) for w in wanted)

    messages = read_topics(platform.infra.kafka_bootstrap, ["auth.events", "audit.events"], seen)
    haystacks = {
        f"{s}.log": (platform.root / "logs" / f"{s}.log").read_bytes() for s in platform.services
    }
    haystacks["traces.jsonl"] = trace_file(platform).read_bytes()
    haystacks["auth.events + audit.events"] = b"\n".join(messages)
    # An error body may tell what went wrong; it never echoes a secret.
    haystacks["error bodies"] = "\n".join(bodies).encode()
    assert b"/password/reset" in haystacks["traces.jsonl"]  # the files do cover this flow
    assert all(len(data) > 0 for data in haystacks.values()), [
        k for k, v in haystacks.items() if not v
    ]
    assert leaks(haystacks, secrets) == []


def test_error_bodies_never_carry_stack_traces(platform: Platform, gateway: httpx.Client) -> None:
    (user,) = users(gateway, "Mallory")
    server_errors = []
    for method, path, kwargs in malformed_requests(user.headers):
        r = gateway.request(method, path, **kwargs)
        gateway.cookies.clear()
        where = f"{method} {path} {kwargs.get('params', '')}"
        assert r.status_code >= 400, (where, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), (where, r.text)
        assert not [m for m in TRACE_MARKERS if m in r.text], (where, r.text)
        if r.status_code >= 500:
            server_errors.append((where, r.status_code, r.text))
    assert server_errors == []


# ---- 5. money invariants after everything ------------------------------------------------------


def test_ledger_invariants_hold_after_everything(platform: Platform) -> None:
    check = ledger_check(platform)
    assert check.returncode == 0, check.stdout + check.stderr
