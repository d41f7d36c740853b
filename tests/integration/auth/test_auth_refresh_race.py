"""Concurrent refreshes of one refresh token (services.md §1): the token rotates once — exactly
one new pair — and every other presentation is a reuse of a rotated token, so the family is
revoked and even the winner's new refresh token is refused afterwards.

The requests really overlap: each thread has its own client of the real app (a TestClient is not
thread-safe), all wait on one barrier, then present the same token at once to auth on real
PostgreSQL, where the token's row lock decides who rotates it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mint.auth.domain import token_hash
from mint.auth.models import RefreshFamily, RefreshToken
from mint.kit.service import ServiceContext
from tests.integration.auth.support import app_client, outbox_rows, refresh, register


def refresh_all_at_once(ctx: ServiceContext, token: str, n: int) -> list[Any]:
    """``n`` refreshes of ``token``, one client and one thread each, released together."""
    barrier = threading.Barrier(n)

    def present(client: TestClient) -> Any:
        barrier.wait(timeout=60)
        return refresh(client, token)

    with ExitStack() as stack:
        clients = [stack.enter_context(app_client(ctx)) for _ in range(n)]
        for client in clients:  # warm: each app's first request (and DB connection) done
            assert refresh(client, "not-a-refresh-token").status_code == 401
        with ThreadPoolExecutor(max_workers=n) as pool:
            return list(pool.map(present, clients))


@pytest.mark.parametrize("n", [2, 8])
def test_concurrent_refreshes_rotate_once_and_revoke_the_family(
    ctx: ServiceContext, n: int
) -> None:
    with app_client(ctx) as client:
        session = register(client)
    user_id, token = session["user"]["id"], session["refresh_token"]

    answers = refresh_all_at_once(ctx, token, n)

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [401] * (n - 1), [a.text for a in answers]
    codes = sorted(a.json()["code"] for a in answers if a.status_code == 401)
    # The first loser presents a rotated token of a live family: the reuse the spec names
    # (401 refresh_token_reused, the family revoked). Every later one finds the family already
    # revoked and is answered as any token of a dead session: invalid_refresh_token.
    assert codes == ["invalid_refresh_token"] * (n - 2) + ["refresh_token_reused"], codes
    (winner,) = (a.json() for a in answers if a.status_code == 200)

    with ctx.database().session() as s:
        presented = s.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(token))
        ).one()
        family = s.get(RefreshFamily, presented.family_id)
        assert family is not None
        assert family.revoked_at is not None and family.revoked_reason == "refresh_token_reused"
        issued = s.scalars(
            select(RefreshToken).where(RefreshToken.family_id == presented.family_id)
        ).all()
    # Exactly one new pair: the presented token and the one it was rotated to, nothing else.
    assert len(issued) == 2, issued
    assert presented.rotated_to == next(t.jti for t in issued if t.jti != presented.jti)
    assert token_hash(winner["refresh_token"]) in {t.token_hash for t in issued}

    # The family is revoked: the winner's new refresh token is refused too.
    with app_client(ctx) as client:
        after = refresh(client, winner["refresh_token"])
    assert after.status_code == 401 and after.json()["code"] == "invalid_refresh_token"
    # One reuse burst, one security event.
    assert len(outbox_rows(ctx, "auth.refresh_reused", key=user_id)) == 1
