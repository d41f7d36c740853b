"""The transactions service description (the only thing the runners import)."""

from __future__ import annotations

from pathlib import Path

import structlog
from prometheus_client import Gauge

from mint.kit.service import GrpcServicer, Job, Service, ServiceContext
from mint.transactions import actions
from mint.transactions.api import router
from mint.transactions.events import consumers
from mint.transactions.grpc import TransactionServicer
from mint.transactions.models import Base
from mint.transactions.settings import Settings
from mint.transactions.v1 import transactions_pb2_grpc
from mint.transactions.wiring import Wiring, wire

log = structlog.get_logger("mint.transactions.recovery")

STUCK = Gauge(
    "mint_transactions_stuck",
    "Transactions unsettled past MINT_STUCK_ALERT_SECONDS, by status (after the last recovery)",
    ["status"],
)


def recover_stuck(ctx: ServiceContext) -> None:
    """The recovery job (one active replica: the runner holds an advisory lock)."""
    report = actions.recover(ctx.wired(Wiring))
    if report.changed:
        log.info("recovery_pass", **{k: v for k, v in vars(report).items() if k != "stuck"})
    for status, count in report.stuck.items():
        STUCK.labels(status).set(count)
    if any(report.stuck.values()):
        log.error("transactions_stuck", **report.stuck)


SERVICE = Service(
    name="transactions",
    prefix="/api/v1/transactions",
    settings_cls=Settings,
    routers=[router],
    metadata=Base.metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    grpc_servicers=[
        GrpcServicer(
            transactions_pb2_grpc.add_TransactionServiceServicer_to_server,
            lambda ctx: TransactionServicer(ctx.wired(Wiring)),
            "mint.transactions.v1.TransactionService",
        )
    ],
    consumers=consumers,
    jobs=[Job(name="recover_stuck", interval_seconds=10.0, run=recover_stuck)],
    produces_events=True,
    wire=wire,
)
