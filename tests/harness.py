"""The one harness for a service under test: the real service (its ``Service`` description, run
by the kit's own runner) on a fresh migrated database of the session's embedded servers, with

* ``http`` — an ASGI client of the real app (``fastapi.testclient.TestClient``),
* ``stub(StubClass)`` — a gRPC stub over a real socket to its gRPC port, carrying the internal
  token and a deadline (the kit's ``grpc_client``),
* ``tokens`` — a token issuer whose JWKS the service trusts (``tokens.headers(user_id)``),
* ``session()`` / ``outbox(type)`` — its database, to read what it wrote,
* its outbox relay, consumers and jobs running (``workers=True``) in consumer groups of its
  own, so suites never share offsets.

Used as ``with run_service(SERVICE, embedded_infra, limits_file=..., **settings) as svc``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mint.dev.platform import free_port
from mint.infra import EmbeddedInfra
from mint.kit.events import OUTBOX
from mint.kit.http import create_app
from mint.kit.rpc import grpc_client
from mint.kit.runner import ServiceProcess, migrate
from mint.kit.service import Service, ServiceContext, build_context
from tests.fixtures.tokens import TokenIssuer

INTERNAL_TOKEN = "harness-internal-token"
T = TypeVar("T")


@dataclass
class RunningService:
    ctx: ServiceContext
    http: TestClient
    tokens: TokenIssuer
    grpc_target: str | None

    @property
    def settings(self) -> Any:
        return self.ctx.settings

    def session(self) -> Any:
        """A unit of work on the service's database (commits on exit)."""
        return self.ctx.database().session()

    def stub(self, stub_cls: type[T], *, token: str | None = None) -> T:
        """A stub of ``stub_cls`` on the service's gRPC port, as another service calls it."""
        assert self.grpc_target is not None, f"{self.ctx.service.name} serves no gRPC here"
        settings = self.ctx.settings.model_copy(
            update={"internal_token": INTERNAL_TOKEN if token is None else token}
        )
        return grpc_client(settings, self.ctx.service.name, stub_cls, target=self.grpc_target)

    def headers(self, user_id: uuid.UUID, **claims: Any) -> dict[str, str]:
        return self.tokens.headers(user_id, **claims)

    def outbox(self, type: str | None = None, key: str | None = None) -> list[Any]:
        stmt = select(OUTBOX).order_by(OUTBOX.c.created_at)
        if type is not None:
            stmt = stmt.where(OUTBOX.c.type == type)
        if key is not None:
            stmt = stmt.where(OUTBOX.c.key == key)
        session: Session
        with self.session() as session:
            return list(session.execute(stmt).mappings())


@contextmanager
def run_service(
    service: Service,
    infra: EmbeddedInfra,
    *,
    workers: bool = True,
    grpc: bool = True,
    tokens: TokenIssuer | None = None,
    **overrides: Any,
) -> Iterator[RunningService]:
    """``service`` running on its own new database; ``overrides`` are settings fields (a
    ``database_url`` among them: the caller's database instead, e.g. on a private server)."""
    tag = uuid.uuid4().hex[:8]
    endpoints = infra.endpoints
    own_tokens = tokens is None
    issuer = tokens or TokenIssuer().start()
    values: dict[str, Any] = {
        "service_name": service.name,
        "environment": "test",
        "kafka_bootstrap_servers": endpoints.kafka_bootstrap,
        "redis_url": endpoints.redis_url,
        "auth_url": issuer.url,
        "internal_token": INTERNAL_TOKEN,
        "outbox_poll_seconds": 0.1,
        "consumer_max_attempts": 3,
        "consumer_backoff_seconds": 0.05,
        "consumer_group_prefix": f"mint-test-{tag}",
    }
    if service.has_database and "database_url" not in overrides:  # else: the caller's server
        values["database_url"] = infra.create_database(f"{service.name}_{tag}")
    if grpc and service.grpc_servicers:
        values["grpc_port"] = free_port()
    values.update(overrides)
    if not workers:  # no relay, consumers or jobs: the test drives them itself
        service = dataclasses.replace(service, consumers=(), jobs=(), produces_events=False)
    if not grpc:
        service = dataclasses.replace(service, grpc_servicers=())
    ctx = build_context(service, service.settings_cls(**values))
    migrate(ctx)
    process = ServiceProcess(ctx)
    process.start()  # startup hooks, limits watcher, gRPC, relay, consumers, jobs
    target = f"127.0.0.1:{values['grpc_port']}" if "grpc_port" in values else None
    try:
        with TestClient(create_app(ctx)) as client:
            yield RunningService(ctx=ctx, http=client, tokens=issuer, grpc_target=target)
    finally:
        process.stop()
        if own_tokens:
            issuer.stop()
