"""Typed event contracts: one frozen pydantic model per event type of events.md.

Producers build a model and hand it to the kit's ``emit``; consumers get the validated model
for the event's ``ce_type``. Importing this package imports every topic module, so
:data:`EVENT_TYPES` is complete. Imports only the standard library, pydantic and
``mint.kit.catalog`` / ``mint.kit.time``. See README.md.
"""

from typing import Final

from mint.contracts import (
    admin,
    analytics,
    audit,
    auth,
    fraud,
    kyc,
    money,
    social,
    transaction,
    wallet,
    webhook,
)
from mint.contracts.base import (
    EVENT_TYPES,
    ContractError,
    EventContract,
    Instant,
    contract_for,
    parse,
)
from mint.kit import catalog


def _topic_types() -> dict[str, tuple[str, ...]]:
    by_topic: dict[str, list[str]] = {}
    for event_type, contract in EVENT_TYPES.items():
        by_topic.setdefault(contract.TOPIC, []).append(event_type)
    return {topic: tuple(sorted(by_topic[topic])) for topic in catalog.TOPICS if topic in by_topic}


#: topic → its event types (sorted), for every topic that has any, in catalogue order.
TOPIC_TYPES: Final[dict[str, tuple[str, ...]]] = _topic_types()

__all__ = [
    "EVENT_TYPES",
    "TOPIC_TYPES",
    "ContractError",
    "EventContract",
    "Instant",
    "admin",
    "analytics",
    "audit",
    "auth",
    "contract_for",
    "fraud",
    "kyc",
    "money",
    "parse",
    "social",
    "transaction",
    "wallet",
    "webhook",
]
