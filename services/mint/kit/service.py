"""The ``Service`` description: what one service is made of. The runners use only this."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.orm import Session

from mint.kit.config import KitSettings
from mint.kit.db import Database

T = TypeVar("T")
S = TypeVar("S", bound=KitSettings)

if TYPE_CHECKING:
    import grpc
    import redis

    from mint.kit.events import ConsumerSpec
    from mint.kit.limits import LimitsSource


@dataclass
class ServiceContext:
    """What a running service shares between its HTTP app, servicers, consumers and jobs."""

    service: Service
    settings: KitSettings
    db: Database | None
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)
    _shared_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """One object per running service, built on first use and then reused by every
        request, servicer and consumer (an engine, a client holding a script, …)."""
        with self._shared_lock:
            if key not in self._shared:
                self._shared[key] = factory()
            value: T = self._shared[key]
            return value

    def replace_shared(self, key: str, value: Any) -> None:
        """Swap a shared object (tests plug in another engine or client)."""
        with self._shared_lock:
            self._shared[key] = value

    def settings_as(self, cls: type[S]) -> S:
        """The service's own settings class (``Service.settings_cls``), typed."""
        if not isinstance(self.settings, cls):
            raise TypeError(f"{self.service.name} runs with {cls.__name__} (Service.settings_cls)")
        return self.settings

    @cached_property
    def redis(self) -> redis.Redis:
        import redis as redis_lib

        return redis_lib.Redis.from_url(
            self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )

    @cached_property
    def limits(self) -> LimitsSource:
        """The live limits source of a service with ``uses_limits`` (AttributeError otherwise,
        so ``getattr(ctx, "limits", None)`` is None for the others)."""
        if not self.service.uses_limits:
            raise AttributeError(f"service {self.service.name} does not use limits")
        from mint.kit.limits import LimitsSource

        return LimitsSource.from_settings(self.settings)

    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"service {self.service.name} has no database")
        return self.db


@dataclass(frozen=True)
class GrpcServicer:
    """One gRPC service implementation: ``add_to_server(servicer, server)`` from the generated
    ``*_pb2_grpc`` module, a factory building the servicer, and the full service name
    (``mint.wallet.v1.WalletService``) for health and reflection."""

    add_to_server: Callable[[Any, grpc.Server], None]
    factory: Callable[[ServiceContext], Any]
    full_name: str


@dataclass(frozen=True)
class Job:
    """A periodic background job. ``singleton`` jobs run on one replica at a time (Postgres
    advisory lock keyed by the job name)."""

    name: str
    interval_seconds: float
    run: Callable[[ServiceContext], None]
    singleton: bool = True


@dataclass(frozen=True)
class Service:
    name: str
    prefix: str | None  # public HTTP prefix, None for fraud / audit
    settings_cls: type[KitSettings] = KitSettings
    routers: Sequence[APIRouter] = ()
    # extra routers mounted at the root (e.g. auth's /.well-known/jwks.json)
    root_routers: Sequence[APIRouter] = ()
    metadata: MetaData | None = None  # None: no database
    migrations_dir: Path | None = None
    grpc_servicers: Sequence[GrpcServicer] = ()
    consumers: Sequence[ConsumerSpec] = ()
    jobs: Sequence[Job] = ()
    # callables run once at start with the context (e.g. ensure system accounts exist)
    on_startup: Sequence[Callable[[ServiceContext], None]] = ()
    uses_limits: bool = False
    produces_events: bool = False
    readiness_checks: Sequence[tuple[str, Callable[[ServiceContext], bool]]] = field(default=())

    @property
    def has_database(self) -> bool:
        return self.metadata is not None


def build_context(service: Service, settings: KitSettings | None = None) -> ServiceContext:
    settings = settings or service.settings_cls.load(service_name=service.name)
    db = None
    if service.has_database:
        settings.require("database_url")
        db = Database(settings.database_url, settings.db_pool_size)
    return ServiceContext(service=service, settings=settings, db=db)


# ---- FastAPI dependencies -------------------------------------------------------------------


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_context)]


def get_session(request: Request) -> Any:
    """A request-scoped unit of work (commit on success). Prefer ``ctx.database().session()``
    where the endpoint needs control of the transaction."""
    ctx: ServiceContext = request.app.state.ctx
    with ctx.database().session() as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]
