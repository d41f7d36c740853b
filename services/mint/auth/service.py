"""The auth service description (the only thing the runners import)."""

from __future__ import annotations

from pathlib import Path

from mint.auth.api import jwks_router, router
from mint.auth.grpc import FULL_NAME, AuthServicer
from mint.auth.keys import ensure_signing_key
from mint.auth.models import Base
from mint.auth.settings import Settings
from mint.auth.v1 import auth_pb2_grpc
from mint.auth.wiring import Wiring, wire
from mint.kit.config import ConfigError
from mint.kit.service import GrpcServicer, Service, ServiceContext


def check_signing_keys(ctx: ServiceContext) -> None:
    """Refuse to start without a signing key; in dev/test make the first one (persisted, so the
    kid is stable across restarts). In production the operator's Secret provides them."""
    w = ctx.wired(Wiring)
    if w.settings.is_dev:
        ensure_signing_key(w.settings.signing_keys_dir)
    if not w.keys.all_keys():
        raise ConfigError(
            f"MINT_SIGNING_KEYS_DIR: no <kid>.pem RSA key in {w.settings.signing_keys_dir}"
        )


def redis_ready(ctx: ServiceContext) -> bool:
    """Login, registration and mail need the rate-limit counters (they fail closed)."""
    return bool(ctx.wired(Wiring).limiter.client.ping())


SERVICE = Service(
    name="auth",
    prefix="/api/v1/auth",
    settings_cls=Settings,
    routers=[router],
    root_routers=[jwks_router],
    metadata=Base.metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    grpc_servicers=[
        GrpcServicer(
            add_to_server=auth_pb2_grpc.add_AuthServiceServicer_to_server,
            factory=lambda ctx: AuthServicer(ctx.wired(Wiring).db),
            full_name=FULL_NAME,
        )
    ],
    on_startup=[check_signing_keys],
    produces_events=True,
    readiness_checks=[("redis", redis_ready)],
    wire=wire,
)
