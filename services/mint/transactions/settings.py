"""Settings of the transactions service (``MINT_*``)."""

from __future__ import annotations

from pydantic import Field

from mint.kit.config import KitSettings


class Settings(KitSettings):
    service_name: str = "transactions"
    #: PROCESSING longer than this → the recovery job re-drives the wallet ``Transfer``.
    recovery_processing_after_seconds: float = Field(default=30.0, gt=0)
    #: PENDING (not under review) longer than this → FAILED ``recovery_timeout``.
    recovery_pending_after_seconds: float = Field(default=120.0, gt=0)
    #: Transactions handled per recovery pass (per kind).
    recovery_batch: int = Field(default=100, ge=1, le=10000)
    #: Unsettled (PENDING / PROCESSING) longer than this → counted in
    #: ``mint_transactions_stuck`` and logged at ERROR on every recovery pass (alert on it).
    stuck_alert_seconds: float = Field(default=900.0, gt=0)
    #: Money requests of one user running at once in one process; more → 429 at once, so one
    #: user's flood never holds the connection pool (requests queue on the user's lock).
    money_requests_per_user: int = Field(default=2, ge=1, le=100)
