"""kyc's collaborators, built once per running service: the database, its settings, the live
limits file and the document storage."""

from __future__ import annotations

from dataclasses import dataclass

from mint.kit.db import Database
from mint.kit.limits import LimitsSource
from mint.kit.service import ServiceContext
from mint.kyc.settings import Settings
from mint.kyc.storage import DocumentStorage


@dataclass
class Wiring:
    db: Database
    settings: Settings
    limits: LimitsSource
    storage: DocumentStorage


def wire(ctx: ServiceContext) -> Wiring:
    settings = ctx.settings_as(Settings)
    return Wiring(
        db=ctx.database(),
        settings=settings,
        limits=ctx.require_limits(),
        storage=DocumentStorage(settings),
    )
