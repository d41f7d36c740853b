"""Consumers: a wallet for every registered user (``auth.user_registered``)."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from mint.contracts.auth import UserRegistered
from mint.kit.events import ConsumerSpec, Event, on
from mint.wallet import actions

log = structlog.get_logger("mint.wallet.events")


def open_wallet_for(session: Session, data: UserRegistered, event: Event) -> None:
    wallet, created = actions.open_wallet(session, data.user_id)
    log.info(
        "wallet_created" if created else "wallet_exists",
        user_id=str(data.user_id),
        wallet_id=str(wallet.id),
    )


CONSUMERS = [ConsumerSpec("wallet", routes=[on(UserRegistered, open_wallet_for)])]
