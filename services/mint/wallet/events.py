"""Consumer of ``auth.events``: a wallet account for every registered user."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.orm import Session

from mint.kit.events import Event
from mint.kit.service import ServiceContext
from mint.wallet import store

log = structlog.get_logger("mint.wallet.events")


def handle_auth_event(ctx: ServiceContext, session: Session, event: Event) -> None:
    """``auth.user_registered`` → create the user's wallet (idempotent) and emit
    ``wallet.created``; every other auth event is ignored."""
    if event.type != "auth.user_registered":
        return
    user_id = uuid.UUID(str(event.data["user_id"]))
    wallet, created = store.ensure_user_account(session, user_id)
    log.info(
        "wallet_created" if created else "wallet_exists",
        user_id=str(user_id),
        wallet_id=str(wallet.id),
    )


def ensure_system_accounts(ctx: ServiceContext) -> None:
    """Startup hook: the system accounts exist (idempotent, safe with several replicas)."""
    with ctx.database().session() as session:
        store.ensure_system_accounts(session)
