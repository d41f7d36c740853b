"""The kyc service description (the only thing the runners import)."""

from __future__ import annotations

from pathlib import Path

import structlog

from mint.kit.service import GrpcServicer, Service, ServiceContext
from mint.kyc.api import router
from mint.kyc.events import CONSUMERS
from mint.kyc.grpc import KycServicer
from mint.kyc.models import Base
from mint.kyc.settings import Settings
from mint.kyc.storage import StorageUnavailable
from mint.kyc.v1 import kyc_pb2_grpc
from mint.kyc.wiring import Wiring, wire

log = structlog.get_logger("mint.kyc")


def ensure_bucket(ctx: ServiceContext) -> None:
    """Startup hook: the documents bucket exists (if storage is down, the first upload retries)."""
    try:
        ctx.wired(Wiring).storage.ensure_bucket()
    except StorageUnavailable:
        log.warning("kyc_bucket_not_ready", detail="document storage unreachable at start")


def storage_ready(ctx: ServiceContext) -> bool:
    return ctx.wired(Wiring).storage.ping()


SERVICE = Service(
    name="kyc",
    prefix="/api/v1/kyc",
    settings_cls=Settings,
    routers=[router],
    metadata=Base.metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    grpc_servicers=[
        GrpcServicer(
            kyc_pb2_grpc.add_KycServiceServicer_to_server,
            lambda ctx: KycServicer(ctx.wired(Wiring)),
            "mint.kyc.v1.KycService",
        )
    ],
    consumers=CONSUMERS,
    on_startup=[ensure_bucket],
    produces_events=True,
    readiness_checks=[("storage", storage_ready)],
    wire=wire,
)
