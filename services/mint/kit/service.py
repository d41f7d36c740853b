"""The ``Service`` description: what one service is made of. The runners use only this."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.orm import Session

from mint.kit.catalog import CAPABILITIES, Capabilities
from mint.kit.config import KitSettings
from mint.kit.db import Database

S = TypeVar("S", bound=KitSettings)
W = TypeVar("W")

if TYPE_CHECKING:
    import grpc
    import redis

    from mint.kit.events import ConsumerSpec
    from mint.kit.limits import LimitsSource


@dataclass
class ServiceContext:
    """What a running service is given: its description, settings, database, Redis, limits and
    its *wiring* — the typed collaborators the service builds once in ``Service.wire``
    (gRPC stubs, checks, …) and its HTTP app, servicers, consumers and jobs share."""

    service: Service
    settings: KitSettings
    db: Database | None
    _wiring: Any = field(default=None, repr=False)
    _wiring_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def settings_as(self, cls: type[S]) -> S:
        """The service's own settings class (``Service.settings_cls``), typed."""
        if not isinstance(self.settings, cls):
            raise TypeError(f"{self.service.name} runs with {cls.__name__} (Service.settings_cls)")
        return self.settings

    def wired(self, cls: type[W]) -> W:
        """The service's wiring (``Service.wire(ctx)``), built on first use, then the same
        object for the life of the process."""
        with self._wiring_lock:
            if self._wiring is None:
                if self.service.wire is None:
                    raise RuntimeError(f"service {self.service.name} declares no wire function")
                self._wiring = self.service.wire(self)
            wiring = self._wiring
        if not isinstance(wiring, cls):
            raise TypeError(f"{self.service.name} is wired with {type(wiring).__name__}")
        return wiring

    @cached_property
    def redis(self) -> redis.Redis:
        import redis as redis_lib

        return redis_lib.Redis.from_url(
            self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )

    @cached_property
    def limits(self) -> LimitsSource | None:
        """The live limits source, for a service whose capabilities include ``limits``."""
        if not self.service.capabilities.limits:
            return None
        from mint.kit.limits import LimitsSource

        return LimitsSource.from_settings(self.settings)

    def require_limits(self) -> LimitsSource:
        if self.limits is None:
            raise RuntimeError(f"service {self.service.name} does not read the limits file")
        return self.limits

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
    # its consumer groups; a function of the context when handlers need the service's wiring
    # (transactions settles a reviewed transaction with the wallet from a fraud event)
    consumers: Sequence[ConsumerSpec] | Callable[[ServiceContext], Sequence[ConsumerSpec]] = ()
    jobs: Sequence[Job] = ()
    # callables run once at start with the context (e.g. ensure system accounts exist)
    on_startup: Sequence[Callable[[ServiceContext], None]] = ()
    produces_events: bool = False
    readiness_checks: Sequence[tuple[str, Callable[[ServiceContext], bool]]] = field(default=())
    # builds the service's typed collaborators once (``ctx.wired(Wiring)`` hands them out)
    wire: Callable[[ServiceContext], Any] | None = None

    @property
    def has_database(self) -> bool:
        return self.metadata is not None

    def consumer_specs(self, ctx: ServiceContext) -> Sequence[ConsumerSpec]:
        return self.consumers(ctx) if callable(self.consumers) else self.consumers

    @property
    def capabilities(self) -> Capabilities:
        """What this service needs from the platform: the catalogue's one table (a service
        the catalogue does not know — a test's — needs only what it declares)."""
        return CAPABILITIES.get(self.name, Capabilities(database=self.has_database))


def build_context(service: Service, settings: KitSettings | None = None) -> ServiceContext:
    settings = settings or service.settings_cls.load(service_name=service.name)
    db = None
    if service.has_database:
        settings.require("database_url")
        db = Database(settings.database_url, settings.db_pool_size)
    return ServiceContext(service=service, settings=settings, db=db)


# ---- FastAPI dependencies -------------------------------------------------------------------


async def get_context(request: Request) -> ServiceContext:
    # ``async``: a plain lookup. FastAPI runs a sync dependency in its threadpool — a thread
    # hand-off per dependency per request, the dearest part of a fast endpoint.
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


def wiring(cls: type[W]) -> Callable[[Request], Awaitable[W]]:
    """A FastAPI dependency handing out the service's wiring, typed::

    Wired = Annotated[Wiring, Depends(wiring(Wiring))]
    """

    async def dependency(request: Request) -> W:  # a lookup: no threadpool hand-off
        ctx: ServiceContext = request.app.state.ctx
        return ctx.wired(cls)

    return dependency
