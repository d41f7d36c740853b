"""Real servers for the transactions integration tests: the transactions and wallet services run
by the shared harness (``tests.harness.run_service``: each on its own PostgreSQL database, gRPC
over a real socket, no relay / consumers / jobs — the tests drive recovery themselves), the real
kyc service (``tests.fixtures.kyc_service``: its runner, its gRPC ``CheckLimits``, a live limits
file), the real fraud service (``tests.fixtures.fraud_service``; velocity raised so that no
money-path test is about it — its defaults send a transfer above 20 000 to REVIEW), and real
RS256 tokens verified against a JWKS served over HTTP. Imported by
``test_transactions*.py`` (the ``env`` and ``kyc`` fixtures). kyc starts with generous limits;
:meth:`Env.use_limits` changes them live."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from mint.dev.platform import free_port
from mint.infra import EmbeddedInfra
from mint.kit.db import Database
from mint.kit.events import OUTBOX
from mint.kit.limits import TIERS, default_limits, write_limits_file
from mint.kit.service import ServiceContext
from mint.transactions.models import Transaction
from mint.transactions.service import SERVICE as TXN_SERVICE
from mint.transactions.settings import Settings
from mint.transactions.wiring import Wiring
from mint.wallet import actions as wallet_actions
from mint.wallet.service import SERVICE as WALLET_SERVICE
from tests.fixtures.fraud_service import Fraud, running_fraud
from tests.fixtures.kyc_service import INTERNAL_TOKEN, Kyc, kyc, wait_until
from tests.fixtures.tokens import TokenIssuer
from tests.harness import RunningService, run_service

__all__ = ["BASE", "TOKEN", "Env", "User", "env", "free_port", "kyc"]

TOKEN = INTERNAL_TOKEN  # one internal token for the transactions, wallet and kyc servers
BASE = "/api/v1/transactions"


# ---- real servers -----------------------------------------------------------------------------


@dataclass
class Env:
    service: RunningService  # transactions
    wallet: RunningService
    kyc: Kyc
    fraud: RunningService

    @property
    def client(self) -> TestClient:
        return self.service.http

    @property
    def ctx(self) -> ServiceContext:
        return self.service.ctx

    @property
    def db(self) -> Database:
        return self.ctx.database()

    @property
    def wallet_db(self) -> Database:
        return self.wallet.ctx.database()

    @property
    def tokens(self) -> TokenIssuer:
        return self.service.tokens

    @property
    def settings(self) -> Settings:
        return self.ctx.settings_as(Settings)

    @property
    def wire(self) -> Wiring:
        """The running service's collaborators (the ones its API uses)."""
        return self.ctx.wired(Wiring)

    def user(self, funds: int = 0, wallet: bool = True) -> User:
        uid = uuid.uuid4()
        if wallet:
            with self.wallet_db.session() as s:
                wallet_actions.open_wallet(s, uid)
        u = User(uid, self.tokens.headers(uid))
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
            return wallet_actions.get_wallet(s, u.id).balance

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


def _no_velocity_limit(fraud: Fraud) -> None:
    fraud.use_limits(velocity={"window_seconds": 3600, "max_transfers": 1_000_000})


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    headers: dict[str, str]


#: Limits no money-path test reaches (the limits tests set their own).
GENEROUS = {"per_transaction": 10**11, "daily": 10**11, "monthly": 10**11}


@pytest.fixture(scope="module")
def env(
    embedded_infra: EmbeddedInfra, kyc: Kyc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    common: dict[str, Any] = {"workers": False, "internal_token": TOKEN, "db_pool_size": 10}
    limits_file = tmp_path_factory.mktemp("transactions-limits") / "limits.yaml"
    with (
        running_fraud(embedded_infra, limits_file, internal_token=TOKEN) as fraud,
        run_service(WALLET_SERVICE, embedded_infra, **common) as wallet,
        run_service(
            TXN_SERVICE,
            embedded_infra,
            limits_file=limits_file,
            wallet_grpc=wallet.grpc_target,
            kyc_grpc=kyc.grpc_target,
            fraud_grpc=fraud.grpc_target,
            **common,
        ) as service,
    ):
        _no_velocity_limit(fraud)
        running = Env(service, wallet, kyc, fraud.service)
        running.use_limits(f"generous-{uuid.uuid4().hex[:8]}", **dict.fromkeys(TIERS, GENEROUS))
        yield running
