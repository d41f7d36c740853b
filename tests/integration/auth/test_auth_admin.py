"""auth's admin surfaces against real PostgreSQL: the gRPC AuthService over loopback and the
``mint admin create`` command."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from mint.auth.models import RefreshFamily, User
from mint.auth.v1 import auth_pb2, auth_pb2_grpc
from mint.cli import app as mint_cli
from mint.cli_admin import admin_app, create_admin, resolve_database_url
from mint.kit.db import Database
from mint.kit.rpc import close_channels
from mint.kit.service import ServiceContext
from tests.harness import RunningService
from tests.integration.auth.support import (
    BASE,
    PASSWORD,
    new_email,
    outbox_rows,
    refresh,
    register,
)


@pytest.fixture(scope="module")
def stub(svc: RunningService) -> Iterator[auth_pb2_grpc.AuthServiceStub]:
    """A stub as another service gets it (deadline, caller identity, internal token), on the
    running service's gRPC port (the kit's server: internal token, health, reflection)."""
    yield svc.stub(auth_pb2_grpc.AuthServiceStub)
    close_channels()


def test_grpc_refuses_calls_without_the_internal_token(svc: RunningService) -> None:
    assert svc.grpc_target is not None
    with grpc.insecure_channel(svc.grpc_target) as channel:
        raw = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as refused:
            raw.GetStatus(auth_pb2.GetStatusRequest(user_id=str(uuid.uuid4())), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


# ---- gRPC --------------------------------------------------------------------------------------


def test_grpc_get_user_status_and_freeze(
    client: TestClient, ctx: ServiceContext, stub: auth_pb2_grpc.AuthServiceStub
) -> None:
    email = new_email()
    pair = register(client, email)
    uid = pair["user"]["id"]
    got = stub.GetUser(auth_pb2.GetUserRequest(user_id=uid), timeout=5)
    assert (got.email, got.role, got.status) == (email, "user", "ACTIVE")
    status = stub.GetStatus(auth_pb2.GetStatusRequest(user_id=uid), timeout=5)
    assert (status.role, status.status, status.email_verified) == ("user", "ACTIVE", False)
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetUser(auth_pb2.GetUserRequest(user_id=str(uuid.uuid4())), timeout=5)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "user_not_found"
    with pytest.raises(grpc.RpcError) as bad:
        stub.GetStatus(auth_pb2.GetStatusRequest(user_id="nope"), timeout=5)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details() == "invalid_user_id"

    admin = str(uuid.uuid4())
    frozen = stub.Freeze(auth_pb2.FreezeRequest(user_id=uid, reason="fraud", actor_id=admin))
    assert frozen.status == "FROZEN"
    stub.Freeze(auth_pb2.FreezeRequest(user_id=uid, reason="again", actor_id=admin))  # idempotent
    (event,) = outbox_rows(ctx, "auth.user_frozen", key=uid)
    assert event["data"] == {"user_id": uid, "reason": "fraud"} and event["actor"] == admin

    login = client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 403 and login.json()["code"] == "account_frozen"
    assert refresh(client, pair["refresh_token"]).json()["code"] == "invalid_refresh_token"

    stub.Unfreeze(auth_pb2.UnfreezeRequest(user_id=uid, actor_id=admin))
    assert outbox_rows(ctx, "auth.user_unfrozen", key=uid)
    assert (
        client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD}).status_code == 200
    )


def test_grpc_freeze_revokes_every_session(
    client: TestClient, ctx: ServiceContext, stub: auth_pb2_grpc.AuthServiceStub
) -> None:
    email = new_email()
    sessions = [register(client, email)]
    sessions += [
        client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD}).json()
        for _ in range(2)
    ]
    uid = sessions[0]["user"]["id"]
    stub.Freeze(auth_pb2.FreezeRequest(user_id=uid, reason="chargebacks", actor_id="admin-1"))
    with ctx.database().session() as s:
        families = s.scalars(
            select(RefreshFamily).where(RefreshFamily.user_id == uuid.UUID(uid))
        ).all()
    assert len(families) == 3
    assert all(f.revoked_at is not None and f.revoked_reason == "frozen" for f in families)
    for pair in sessions:
        assert refresh(client, pair["refresh_token"]).status_code == 401
    login = client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 403 and login.json()["code"] == "account_frozen"

    stub.Unfreeze(auth_pb2.UnfreezeRequest(user_id=uid, actor_id="admin-1"))
    (event,) = outbox_rows(ctx, "auth.user_unfrozen", key=uid)
    assert event["data"] == {"user_id": uid} and event["actor"] == "admin-1"
    for pair in sessions:  # unfreezing does not bring old sessions back
        assert refresh(client, pair["refresh_token"]).status_code == 401
    assert (
        client.post(f"{BASE}/login", json={"email": email, "password": PASSWORD}).status_code == 200
    )


def test_grpc_set_role_and_search(
    client: TestClient, ctx: ServiceContext, stub: auth_pb2_grpc.AuthServiceStub
) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = [register(client, f"srch-{tag}-{i}@example.com")["user"]["id"] for i in range(3)]
    promoted = stub.SetRole(auth_pb2.SetRoleRequest(user_id=ids[0], role="admin", actor_id="a"))
    assert promoted.role == "admin"
    assert outbox_rows(ctx, "auth.role_changed", key=ids[0])[0]["data"]["role"] == "admin"
    with pytest.raises(grpc.RpcError) as bad:
        stub.SetRole(auth_pb2.SetRoleRequest(user_id=ids[0], role="root"))
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    page1 = stub.SearchUsers(auth_pb2.SearchUsersRequest(query=f"SRCH-{tag}", page_size=2))
    assert [u.id for u in page1.users] == [ids[2], ids[1]] and page1.next_page_token
    page2 = stub.SearchUsers(
        auth_pb2.SearchUsersRequest(
            query=f"srch-{tag}", page_size=2, page_token=page1.next_page_token
        )
    )
    assert [u.id for u in page2.users] == [ids[0]] and not page2.next_page_token
    admins = stub.SearchUsers(auth_pb2.SearchUsersRequest(query=f"srch-{tag}", role="admin"))
    assert [u.id for u in admins.users] == [ids[0]]


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_create_admin_and_promote(client: TestClient, ctx: ServiceContext) -> None:
    url = ctx.settings.database_url
    email = new_email()
    user_id, created = create_admin(url, f" {email.upper()} ", "Admin-Pass-2024", "Root")
    assert created
    login = client.post(f"{BASE}/login", json={"email": email, "password": "Admin-Pass-2024"})
    assert login.status_code == 200
    user = login.json()["user"]
    assert (user["id"], user["role"], user["email_verified"]) == (user_id, "admin", True)
    (registered,) = outbox_rows(ctx, "auth.user_registered", key=user_id)
    assert registered["data"] == {"user_id": user_id, "email": email, "name": "Root"}
    assert registered["actor"] == "system"

    existing = register(client)
    uid = existing["user"]["id"]
    again_id, created = create_admin(url, existing["user"]["email"], "Whatever-Pass-1", "Ignored")
    assert (again_id, created) == (uid, False)
    with Database(url, pool_size=1).session() as s:
        promoted = s.get(User, uuid.UUID(uid))
        assert promoted is not None and promoted.role == "admin" and promoted.email_verified
    # The same use case as gRPC SetRole: its event, and the user's sessions end.
    (verified,) = outbox_rows(ctx, "auth.user_verified", key=uid)
    (changed,) = outbox_rows(ctx, "auth.role_changed", key=uid)
    assert verified["actor"] == changed["actor"] == "system"
    assert changed["data"] == {"user_id": uid, "role": "admin"}
    assert refresh(client, existing["refresh_token"]).json()["code"] == "invalid_refresh_token"
    with pytest.raises(ValueError, match="weak password"):
        create_admin(url, new_email(), "short", "X")


def test_cli_command_finds_make_devs_database(
    ctx: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".mint").mkdir()
    runtime = {"databases": {"auth": ctx.settings.database_url}}
    (tmp_path / ".mint" / "runtime.json").write_text(json.dumps(runtime))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINT_DATABASE_URL", raising=False)
    assert resolve_database_url(None) == ctx.settings.database_url
    assert resolve_database_url("postgresql+psycopg://x/y") == "postgresql+psycopg://x/y"

    email = new_email()
    args = ["create", "--email", email, "--password", "Admin-Pass-2024", "--name", "Ops"]
    result = CliRunner().invoke(mint_cli, ["admin", *args])  # as `mint admin create ...`
    assert result.exit_code == 0, result.output
    assert f"created admin {email}" in result.output
    weak = CliRunner().invoke(admin_app, [*args[:3], "--password", "weak", "--name", "Ops"])
    assert weak.exit_code == 2 and "weak password" in weak.output
