"""Real servers for the transactions integration tests: its own PostgreSQL database, the real
wallet servicer (with its own database) over a loopback gRPC socket started by
``mint.kit.rpc.serve_grpc``, the real kyc service (``tests.fixtures.kyc_service``: its runner,
its gRPC ``CheckLimits``, a live limits file), real RS256 tokens verified against a JWKS served
over HTTP, and the real ASGI app. Imported by ``test_transactions*.py`` (the ``env`` and ``kyc``
fixtures). kyc starts with generous limits; :meth:`Env.use_limits` changes them live."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from mint.infra import EmbeddedInfra
from mint.kit.db import Database, run_migrations
from mint.kit.events import OUTBOX
from mint.kit.http import create_app
from mint.kit.limits import TIERS, default_limits, write_limits_file
from mint.kit.rpc import bound_port, serve_grpc
from mint.kit.service import ServiceContext
from mint.transactions.models import Transaction
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.transactions.settings import Settings
from mint.wallet import store as wallet_store
from mint.wallet.service import SERVICE as WALLET_SERVICE
from mint.wallet.settings import Settings as WalletSettings
from tests.fixtures.kyc_service import INTERNAL_TOKEN, Kyc, kyc, wait_until
from tests.fixtures.tokens import TokenIssuer

__all__ = ["BASE", "Env", "User", "env", "free_port", "kyc"]

TOKEN = INTERNAL_TOKEN  # one internal token for the wallet and kyc servers
BASE = "/api/v1/transactions"


# ---- real servers -----------------------------------------------------------------------------


@dataclass
class Env:
    client: TestClient
    ctx: ServiceContext
    db: Database
    wallet_db: Database
    jwks: TokenIssuer
    settings: Settings
    kyc: Kyc

    def user(self, funds: int = 0, wallet: bool = True) -> User:
        uid = uuid.uuid4()
        if wallet:
            with self.wallet_db.session() as s:
                wallet_store.ensure_user_account(s, uid)
        u = User(uid, {"Authorization": f"Bearer {self.jwks.token(uid)}"})
        if funds:
            assert self.post(u, "/topup", {"amount": funds}).status_code == 201
        return u

    def post(
        self, u: User, path: str, body: Any, key: str | None = "", **kw: Any
    ) -> httpx.Response:
        headers = dict(u.headers)
        if key is not None:
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        response: httpx.Response = self.client.post(BASE + path, json=body, headers=headers, **kw)
        return response

    def get(self, u: User, path: str = "", **params: Any) -> httpx.Response:
        response: httpx.Response = self.client.get(BASE + path, headers=u.headers, params=params)
        return response

    def balance(self, u: User) -> int:
        with self.wallet_db.session() as s:
            w = wallet_store.get_wallet(s, u.id)
            assert w is not None
            return int(w.balance)

    def events(self, subject: str) -> list[dict[str, Any]]:
        with self.db.session() as s:
            rows = s.execute(select(OUTBOX).where(OUTBOX.c.subject == subject).order_by("seq"))
            return [dict(r._mapping) for r in rows]

    def txn(self, txn_id: str | uuid.UUID) -> Transaction:
        with self.db.session() as s:
            found = s.get(Transaction, uuid.UUID(str(txn_id)))
            assert found is not None
            return found

    def use_limits(self, version: str, **tiers: dict[str, int]) -> None:
        """Rewrite kyc's live limits file (the shipped defaults, ``tiers`` overriding whole
        tiers) and wait until kyc applies it."""
        document = default_limits().to_document()
        document["version"] = version
        document["tiers"].update(tiers)
        write_limits_file(self.kyc.limits_file, type(default_limits()).model_validate(document))
        wait_until(lambda: self.kyc.ctx.limits.version == version, what=f"limits {version}")

    def backdate(self, txn_id: str | uuid.UUID, seconds: int = 3600) -> None:
        with self.db.session() as s:
            s.execute(
                update(Transaction)
                .where(Transaction.id == uuid.UUID(str(txn_id)))
                .values(updated_at=text(f"now() - interval '{seconds} seconds'"))
            )


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    headers: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Limits no money-path test reaches (the limits tests set their own).
GENEROUS = {"per_transaction": 10**11, "daily": 10**11, "monthly": 10**11}


@pytest.fixture(scope="module")
def env(embedded_infra: EmbeddedInfra, kyc: Kyc) -> Iterator[Env]:
    suffix = uuid.uuid4().hex[:8]
    wallet_url = embedded_infra.create_database(f"txw_{suffix}")
    txn_url = embedded_infra.create_database(f"txn_{suffix}")
    assert WALLET_SERVICE.migrations_dir and TXN_SERVICE.migrations_dir
    run_migrations(wallet_url, WALLET_SERVICE.migrations_dir)
    run_migrations(txn_url, TXN_SERVICE.migrations_dir)
    wallet_ctx = ServiceContext(
        WALLET_SERVICE,
        WalletSettings(database_url=wallet_url, internal_token=TOKEN),
        Database(wallet_url, pool_size=10),
    )
    with wallet_ctx.database().session() as s:
        wallet_store.ensure_system_accounts(s)
    wallet_server = serve_grpc(wallet_ctx, WALLET_SERVICE.grpc_servicers, 0, host="127.0.0.1")
    jwks = TokenIssuer().start()
    settings = Settings(
        database_url=txn_url,
        internal_token=TOKEN,
        auth_url=jwks.url,
        wallet_grpc=f"127.0.0.1:{bound_port(wallet_server)}",
        kyc_grpc=kyc.grpc_target,
        environment="test",
    )
    ctx = ServiceContext(TXN_SERVICE, settings, Database(txn_url, pool_size=10))
    with TestClient(create_app(ctx)) as client:
        running = Env(client, ctx, ctx.database(), wallet_ctx.database(), jwks, settings, kyc)
        running.use_limits(f"generous-{suffix}", **dict.fromkeys(TIERS, GENEROUS))
        yield running
    wallet_server.stop(None)
    jwks.stop()
    ctx.database().dispose()
    wallet_ctx.database().dispose()
