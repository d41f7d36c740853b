"""The transactions service's collaborators, built once per process: its database, the wallet
adapter, the pre-flight checks (limits from kyc ``CheckLimits``, fraud ``ScoreTransaction``),
the live limits file (the review expiry), its settings, and how a settled movement's HTTP answer
is rendered."""

from __future__ import annotations

from dataclasses import dataclass

from mint.fraud.v1.fraud_pb2_grpc import FraudServiceStub
from mint.kit.db import Database
from mint.kit.gate import ConcurrencyGate
from mint.kit.limits import LimitsSource
from mint.kit.rpc import grpc_client
from mint.kit.service import ServiceContext
from mint.kyc.v1.kyc_pb2_grpc import KycServiceStub
from mint.transactions import answers
from mint.transactions.checks import Checks
from mint.transactions.limits import KycLimits
from mint.transactions.outcomes import Render
from mint.transactions.scoring import FraudScoring
from mint.transactions.settings import Settings
from mint.transactions.wallet_client import WalletClient
from mint.wallet.v1.wallet_pb2_grpc import WalletServiceStub


@dataclass
class Wiring:
    db: Database
    settings: Settings
    wallet: WalletClient
    checks: Checks
    #: the live limits file: ``fraud.review_hold_hours`` (the review expiry)
    limits: LimitsSource
    #: The per-user bound on concurrent money requests (``money_requests_per_user``).
    gate: ConcurrencyGate
    #: The final HTTP answer of a settled movement, stored with the settlement for replays.
    render: Render


def wire(ctx: ServiceContext) -> Wiring:
    """Wallet at ``MINT_WALLET_GRPC``, kyc ``CheckLimits`` at ``MINT_KYC_GRPC``, fraud
    ``ScoreTransaction`` at ``MINT_FRAUD_GRPC`` (each call with the ``grpc_deadline_seconds``
    deadline)."""
    settings = ctx.settings_as(Settings)
    kyc = grpc_client(settings, "kyc", KycServiceStub)
    fraud = grpc_client(settings, "fraud", FraudServiceStub)
    deadline = settings.grpc_deadline_seconds
    return Wiring(
        db=ctx.database(),
        settings=settings,
        wallet=WalletClient(grpc_client(settings, "wallet", WalletServiceStub)),
        checks=Checks(
            limits=KycLimits(kyc, timeout=deadline), fraud=FraudScoring(fraud, timeout=deadline)
        ),
        limits=ctx.require_limits(),
        gate=ConcurrencyGate(settings.money_requests_per_user),
        render=answers.render,
    )
