"""The transactions service description (the only thing the runners import)."""

from __future__ import annotations

from pathlib import Path

from mint.kit.service import GrpcServicer, Service
from mint.transactions.api import router
from mint.transactions.grpc import TransactionServicer
from mint.transactions.models import Base
from mint.transactions.recovery import RECOVER_STUCK
from mint.transactions.settings import Settings
from mint.transactions.v1 import transactions_pb2_grpc

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
            lambda ctx: TransactionServicer(ctx),
            "mint.transactions.v1.TransactionService",
        )
    ],
    jobs=[RECOVER_STUCK],
    produces_events=True,
    # kyc decides on limits; transactions reads the same file (fraud hold hours, review expiry)
    # and reports the version it runs with in /readyz like every limits user.
    uses_limits=True,
)
