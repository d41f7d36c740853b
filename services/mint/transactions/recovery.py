"""The recovery job (services.md §3 "Recovery"): nothing stays stuck, no money is lost or
created by a crash.

* PROCESSING past ``MINT_RECOVERY_PROCESSING_AFTER_SECONDS`` → re-issue the wallet's idempotent
  ``Transfer`` with the same id: posted → COMPLETED, refused → FAILED, no answer → left for the
  next pass.
* PENDING past ``MINT_RECOVERY_PENDING_AFTER_SECONDS`` with no REVIEW decision → FAILED
  ``recovery_timeout`` (it never settles without its checks). PENDING under REVIEW is left to
  the reviewer or the hold expiry.
* Idempotency claims whose request died before recording a transaction are abandoned, and
  expired idempotency rows are deleted.

Each settlement also completes the original request's idempotency row, so a retry of that
request replays the final outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import structlog

from mint.kit import idempotency
from mint.kit.service import Job, ServiceContext
from mint.transactions import store
from mint.transactions.domain import Status
from mint.transactions.flow import Engine, engine_for
from mint.transactions.models import Transaction
from mint.transactions.settings import Settings
from mint.transactions.wallet_client import transfer_request

log = structlog.get_logger("mint.transactions.recovery")
ACTOR = store.SYSTEM


@dataclass
class RecoveryReport:
    completed: int = 0
    failed: int = 0
    left: int = 0
    timed_out: int = 0
    claims_released: int = 0
    keys_expired: int = 0

    @property
    def changed(self) -> bool:
        return any(vars(self).values())


def recover(engine: Engine, settings: Settings) -> RecoveryReport:
    """One pass over everything stuck. Safe to run concurrently with the API (row locks and the
    state machine decide) and repeatedly (the wallet is idempotent by transfer id)."""
    report = RecoveryReport()
    db = engine.db
    batch = settings.recovery_batch
    processing_after = timedelta(seconds=settings.recovery_processing_after_seconds)
    pending_after = timedelta(seconds=settings.recovery_pending_after_seconds)

    with db.session() as session:
        processing = store.stuck(session, Status.PROCESSING, processing_after, batch)
    for txn_id in processing:
        with db.session() as session:
            txn = session.get(Transaction, txn_id)
            if txn is None or txn.status != Status.PROCESSING:
                continue
            request, txn_type = transfer_request(txn), txn.type
        status, _ = engine.post(txn_id, request, txn_type=txn_type, actor=ACTOR)
        if status == 201:
            report.completed += 1
        elif status == 503:
            report.left += 1
        else:
            report.failed += 1

    with db.session() as session:
        pending = store.stuck(session, Status.PENDING, pending_after, batch)
    for txn_id in pending:
        with db.session() as session:
            txn = store.lock(session, txn_id, skip_locked=True)
            if txn is None or txn.status != Status.PENDING:
                continue
            if (txn.fraud or {}).get("decision") == "REVIEW":
                continue
            # (a hold placed for REVIEW is released here once the review flow lands)
            store.settle(
                session, txn, Status.FAILED, actor=ACTOR, failure_reason="recovery_timeout"
            )
            report.timed_out += 1

    with db.session() as session:
        stale = store.stale_claims(session, pending_after, batch)
    for user_id, key in stale:
        idempotency.abandon(db, user_id, key)
        report.claims_released += 1
    report.keys_expired = idempotency.cleanup(db, batch=batch)
    return report


def run(ctx: ServiceContext) -> None:
    """The job body (one active replica: the runner holds an advisory lock)."""
    report = recover(engine_for(ctx), cast(Settings, ctx.settings))
    if report.changed:
        log.info("recovery_pass", **vars(report))


RECOVER_STUCK = Job(name="recover_stuck", interval_seconds=10.0, run=run)
