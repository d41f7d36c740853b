"""What auth's HTTP routes, servicers and startup hooks share, built once per running service:
the database, settings, signing keys, the Redis rate limiter and the mailer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from mint.auth.keys import KeyRing
from mint.auth.mailing import AccountMail
from mint.auth.ratelimit import SlidingWindow
from mint.auth.settings import Settings
from mint.kit.db import Database
from mint.kit.service import ServiceContext, wiring


@dataclass
class Wiring:
    db: Database
    settings: Settings
    keys: KeyRing
    limiter: SlidingWindow
    mail: AccountMail


def wire(ctx: ServiceContext) -> Wiring:
    settings = ctx.settings_as(Settings)
    return Wiring(
        db=ctx.database(),
        settings=settings,
        keys=KeyRing(settings.signing_keys_dir),
        limiter=SlidingWindow(ctx.redis),
        mail=AccountMail(settings),
    )


Wired = Annotated[Wiring, Depends(wiring(Wiring))]
