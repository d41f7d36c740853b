"""The wallet service description (the only thing the runners import)."""

from __future__ import annotations

from pathlib import Path

from mint.kit.service import GrpcServicer, Service, ServiceContext
from mint.wallet import actions
from mint.wallet.api import router
from mint.wallet.events import CONSUMERS
from mint.wallet.grpc import WalletServicer
from mint.wallet.models import Base
from mint.wallet.settings import Settings
from mint.wallet.v1 import wallet_pb2_grpc


def ensure_system_accounts(ctx: ServiceContext) -> None:
    with ctx.database().session() as session:
        actions.ensure_system_accounts(session)


SERVICE = Service(
    name="wallet",
    prefix="/api/v1/wallet",
    settings_cls=Settings,
    routers=[router],
    metadata=Base.metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    grpc_servicers=[
        GrpcServicer(
            wallet_pb2_grpc.add_WalletServiceServicer_to_server,
            lambda ctx: WalletServicer(ctx.database()),
            "mint.wallet.v1.WalletService",
        )
    ],
    consumers=CONSUMERS,
    on_startup=[ensure_system_accounts],
    produces_events=True,
)
