"""fraud's collaborators, built once per running service: the database, the live limits file,
the velocity window in Redis and the clock (injected so the night rule is testable)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mint.fraud.velocity import VelocityWindow
from mint.kit.db import Database
from mint.kit.limits import LimitsSource
from mint.kit.service import ServiceContext
from mint.kit.time import utcnow


@dataclass
class Wiring:
    db: Database
    limits: LimitsSource
    velocity: VelocityWindow
    clock: Callable[[], datetime] = utcnow


def wire(ctx: ServiceContext) -> Wiring:
    return Wiring(
        db=ctx.database(),
        limits=ctx.require_limits(),
        velocity=VelocityWindow(ctx.redis),
    )
