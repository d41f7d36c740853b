"""The fraud service description (the only thing the runners import). No public HTTP API: its
HTTP port serves /healthz, /readyz, /metrics and /openapi.json only."""

from __future__ import annotations

from pathlib import Path

from mint.fraud.events import CONSUMERS
from mint.fraud.grpc import FraudServicer
from mint.fraud.models import Base
from mint.fraud.settings import Settings
from mint.fraud.v1 import fraud_pb2_grpc
from mint.fraud.wiring import Wiring, wire
from mint.kit.service import GrpcServicer, Service, ServiceContext


def redis_ready(ctx: ServiceContext) -> bool:
    """The velocity window's store answers (scoring a transfer needs it)."""
    return bool(ctx.redis.ping())


SERVICE = Service(
    name="fraud",
    prefix=None,
    settings_cls=Settings,
    metadata=Base.metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    grpc_servicers=[
        GrpcServicer(
            fraud_pb2_grpc.add_FraudServiceServicer_to_server,
            lambda ctx: FraudServicer(ctx.wired(Wiring)),
            "mint.fraud.v1.FraudService",
        )
    ],
    consumers=CONSUMERS,
    produces_events=True,
    readiness_checks=[("redis", redis_ready)],
    wire=wire,
)
