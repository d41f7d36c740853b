"""Consumers: ``fraud.events`` — a reviewer's decision on a transaction under review
(``fraud.case_reviewed``) settles it: APPROVE captures the hold, BLOCK releases it. The handler
runs in the transaction that records the event as processed, and it locks the transaction's
row: a repeated or late decision (the transaction is no longer PENDING under review) changes
nothing. A wallet that does not answer raises, and the event is retried."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from sqlalchemy.orm import Session

from mint.contracts.fraud import CaseReviewed
from mint.kit.events import ConsumerSpec, Event, on
from mint.kit.service import ServiceContext
from mint.transactions import actions
from mint.transactions.wiring import Wiring

log = structlog.get_logger("mint.transactions.events")


@dataclass(frozen=True)
class WiredRoute:
    contract: type[Any]
    handler: Callable[[Wiring, Session, Any, Event], None]


def apply_review(wire: Wiring, session: Session, data: CaseReviewed, event: Event) -> None:
    applied = actions.apply_review(
        wire,
        session,
        data.transaction_id,
        approve=data.outcome == "APPROVE",
        actor=str(data.reviewer_id),
    )
    log.info(
        "fraud_review_applied" if applied else "fraud_review_ignored",
        transaction_id=str(data.transaction_id),
        case_id=str(data.case_id),
        outcome=data.outcome,
        event_id=event.id,
    )


#: What each consumed event type does, given the wiring.
ROUTES = (WiredRoute(CaseReviewed, apply_review),)


def consumers(ctx: ServiceContext) -> Sequence[ConsumerSpec]:
    """The consumer groups; their handlers settle with the wallet, so they need the wiring."""
    wire = ctx.wired(Wiring)
    return [
        ConsumerSpec(
            "transactions-fraud", routes=[on(r.contract, partial(r.handler, wire)) for r in ROUTES]
        )
    ]
