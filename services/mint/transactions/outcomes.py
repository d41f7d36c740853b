"""How a money movement ends, as the use cases hand it to the edge: the settled transaction
(and why it was refused, if it was), and the type of the function that renders the request's
final answer (wired in by the HTTP edge, stored with the settlement for replays)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mint.kit.domain import DomainError
from mint.transactions import domain
from mint.transactions.models import Transaction


@dataclass(frozen=True)
class Settled:
    """A transaction in a settled status, as its request ends: ``extra`` are the fields its
    refusal carries besides the code (a limit's ``limit``, ``limit_value``, ``remaining``)."""

    transaction: Transaction
    extra: Mapping[str, Any] = field(default_factory=dict)

    def refusal(self) -> DomainError | None:
        """``None`` when the money moved, else why not (naming the transaction)."""
        txn = self.transaction
        return domain.refusal(txn.status, txn.failure_reason, txn.id, self.extra)


#: The final answer (status, body) of the request that created a settled transaction — what
#: it answers and what its idempotency row stores for replays. Wired in by the HTTP edge.
Render = Callable[[Settled], tuple[int, dict[str, Any]]]
