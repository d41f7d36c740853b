"""The wallet service description (the only thing the runners import)."""

from __future__ import annotations

from pathlib import Path

from mint.kit.events import ConsumerSpec
from mint.kit.service import GrpcServicer, Service
from mint.wallet.api import router
from mint.wallet.events import ensure_system_accounts, handle_auth_event
from mint.wallet.grpc import WalletServicer
from mint.wallet.models import Base
from mint.wallet.settings import Settings
from mint.wallet.v1 import wallet_pb2_grpc

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
            lambda ctx: WalletServicer(ctx),
            "mint.wallet.v1.WalletService",
        )
    ],
    consumers=[ConsumerSpec("wallet", ["auth.events"], handle_auth_event)],
    on_startup=[ensure_system_accounts],
    produces_events=True,
)
