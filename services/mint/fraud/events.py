"""Consumers of ``transaction.events``: ``transaction.completed`` feeds the initiator's
statistics (the ``large_amount_deviation`` rule), ``transaction.cancelled`` closes the
transaction's OPEN case as CANCELLED, and so does ``transaction.failed`` (a transaction under
review that failed — its hold refused for funds, a frozen account — leaves the reviewer
nothing to decide). Each handler runs in the transaction that records the event
as processed, so a redelivered event has exactly one effect; closing a case is a conditional
update, so a cancellation arriving after the case was decided changes nothing."""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from mint.contracts.transaction import (
    TransactionCancelled,
    TransactionCompleted,
    TransactionFailed,
)
from mint.fraud import actions
from mint.kit.events import ConsumerSpec, Event, on
from mint.kit.time import utcnow

log = structlog.get_logger("mint.fraud.events")


def count_completed(session: Session, data: TransactionCompleted, event: Event) -> None:
    stats = actions.record_completed(
        session,
        type=data.type,
        amount=data.amount,
        sender_id=data.sender_id,
        recipient_id=data.recipient_id,
    )
    log.info("fraud_stats_updated", transaction_id=str(data.id), type=data.type, count=stats.count)


def cancel_case(
    session: Session, data: TransactionCancelled | TransactionFailed, event: Event
) -> None:
    cancelled = actions.cancel_case(session, data.id, now=utcnow())
    log.info(
        "fraud_case_cancelled" if cancelled else "fraud_case_not_open",
        transaction_id=str(data.id),
        event_id=event.id,
    )


CONSUMERS = [
    ConsumerSpec(
        "fraud-transactions",
        routes=[
            on(TransactionCompleted, count_completed),
            on(TransactionCancelled, cancel_case),
            on(TransactionFailed, cancel_case),
        ],
    )
]
