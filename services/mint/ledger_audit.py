"""The cross-service ledger audit: the transactions database against the wallet's ledger.

``audit(wallet_url, transactions_url)`` checks, besides every wallet invariant
(:mod:`mint.wallet.invariants`), that the two services agree on what moved:

* ``settled_has_entry`` — a COMPLETED or REVERSED transaction has its wallet entry (the entry
  whose ``transfer_id`` is the transaction id: transactions posts ``Transfer`` under it);
* ``entry_matches_transaction`` — that entry moves the transaction's amount and currency
  between the accounts its type implies: TOPUP ``external:funding`` → ``user:<recipient>``,
  TRANSFER ``user:<sender>`` → ``user:<recipient>``, WITHDRAWAL ``user:<sender>`` →
  ``external:payout``;
* ``reversed_has_reversal`` — a REVERSED transaction's entry has its REVERSAL entry (the wallet
  links it by ``reversal_of``), mirroring it; ``completed_not_reversed`` — a COMPLETED one's has
  none (a reversal younger than ``stuck_after_seconds`` is in flight: the admin flow posts the
  wallet's ``Reverse``, then moves the transaction to REVERSED);
* ``unmoved_has_no_entry`` — a FAILED or CANCELLED transaction (and a PENDING one: the wallet
  is called only once it is PROCESSING) has no entry;
* ``entry_has_transaction`` — every entry that transactions could have posted has its
  transaction;
* ``open_hold_has_review`` — every OPEN hold placed under a transaction id (a fraud review's
  hold) belongs to that transaction while it is PENDING under review or PROCESSING after its
  approval, and holds its amount: a hold whose transaction was cancelled, failed or completed
  would keep the user's money out of reach forever (the flow releases or captures before it
  settles).

Which entries are the transactions service's: those whose ``transfer_id`` is a transaction id, a
canonical UUID — the only entries anything but a test posts today (transactions' ``Transfer``
and, once the review flow lands, its ``CaptureHold``, both under the transaction id). Entries
under any other id (a test funding a wallet through the wallet directly, ``fund-…``) are counted
as ``foreign_entries`` and not cross-checked; a REVERSAL entry is judged through the entry it
reverses, whatever its own id.

It also lists the transactions PENDING or PROCESSING for longer than ``stuck_after_seconds``
(``stuck``): what the recovery job should have settled. They are reported, not violations — an
unanswering wallet keeps a transaction PROCESSING by design — so an operator sees them while the
exit status stays about money that disagrees.

Consistency: each database is read in one REPEATABLE READ, read-only snapshot, transactions
first, then the wallet. The two snapshots are not one atomic read, so the wallet may be ahead:
money that moves between the two reads shows an entry whose transaction was still PENDING or
PROCESSING, or did not exist yet, in the earlier snapshot. Those entries are re-read in the
transactions database after the wallet snapshot and counted ``in_flight`` when the transaction
has caught up (or is PROCESSING: the flow or recovery completes it), never reported as
violations. The other order cannot happen: the wallet posts before its transaction is COMPLETED,
so a transaction COMPLETED in the earlier snapshot has its entry in the later one.

Plain SQL on both databases: no service's models or use cases are imported, so the audit checks
the rules as the spec states them, not as the code under audit computes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from sqlalchemy import Connection, bindparam, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from mint.contracts.money import FUNDING_ACCOUNT, PAYOUT_ACCOUNT, user_account
from mint.kit.config import psycopg_url
from mint.wallet.invariants import check_invariants, ledger_counts

#: The cross-service checks, by the name each violation line starts with.
CHECKS: Final[tuple[str, ...]] = (
    "settled_has_entry",
    "entry_matches_transaction",
    "reversed_has_reversal",
    "completed_not_reversed",
    "unmoved_has_no_entry",
    "entry_has_transaction",
    "open_hold_has_review",
)

_SETTLED: Final = frozenset({"COMPLETED", "REVERSED"})
_OPEN: Final = frozenset({"PENDING", "PROCESSING"})

_TRANSACTIONS_SQL: Final = """
    SELECT id, type, status, amount, currency, sender_id, recipient_id, failure_reason,
           fraud ->> 'decision' AS decision, updated_at,
           EXTRACT(EPOCH FROM now() - updated_at)::float AS age_seconds
    FROM transactions
"""

_ENTRIES_SQL: Final = """
    SELECT e.id, e.transfer_id, e.kind, e.amount, e.currency, e.reversal_of,
           fa.code AS from_code, ta.code AS to_code,
           EXTRACT(EPOCH FROM now() - e.created_at)::float AS age_seconds
    FROM journal_entries e
    JOIN accounts fa ON fa.id = e.from_account_id
    JOIN accounts ta ON ta.id = e.to_account_id
"""


_OPEN_HOLDS_SQL: Final = "SELECT hold_id, amount, currency FROM holds WHERE status = 'OPEN'"


@dataclass(frozen=True)
class _Txn:
    id: UUID
    type: str
    status: str
    amount: int
    currency: str
    sender_id: UUID | None
    recipient_id: UUID | None
    failure_reason: str | None
    decision: str | None
    updated_at: object
    age_seconds: float

    def describe(self) -> str:
        why = f" ({self.failure_reason})" if self.failure_reason else ""
        return f"transaction {self.id} {self.status}{why} {self.type} {self.amount} {self.currency}"


@dataclass(frozen=True)
class _Entry:
    id: UUID
    transfer_id: str
    kind: str
    amount: int
    currency: str
    reversal_of: UUID | None
    from_code: str
    to_code: str
    age_seconds: float

    def describe(self) -> str:
        return (
            f"{self.kind} entry {self.transfer_id}: {self.amount} {self.currency} "
            f"{self.from_code} -> {self.to_code}"
        )


@dataclass
class LedgerAudit:
    """What ``audit`` found. ``ok`` means no violation; ``stuck`` does not count against it."""

    #: One ``"<check or invariant>: <what>"`` line per violation (the wallet's invariants too).
    violations: list[str] = field(default_factory=list)
    #: Transactions PENDING or PROCESSING longer than the window, one line each.
    stuck: list[str] = field(default_factory=list)
    #: Wallet entries ahead of their transaction's status, caught between the two snapshots.
    in_flight: list[str] = field(default_factory=list)
    #: The wallet's counts (accounts, entries, ...) plus ``transactions`` and ``foreign_entries``.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations


def expected_accounts(txn: _Txn) -> tuple[str, str]:
    """(from, to) of the wallet entry a transaction implies (services.md §2, §3)."""
    if txn.type == "TOPUP":
        assert txn.recipient_id is not None
        return FUNDING_ACCOUNT, user_account(txn.recipient_id)
    if txn.type == "WITHDRAWAL":
        assert txn.sender_id is not None
        return user_account(txn.sender_id), PAYOUT_ACCOUNT
    assert txn.sender_id is not None and txn.recipient_id is not None
    return user_account(txn.sender_id), user_account(txn.recipient_id)


def is_transaction_id(transfer_id: str) -> bool:
    """Whether ``transfer_id`` has the form of the ids transactions posts under (``str(UUID)``)."""
    try:
        return str(UUID(transfer_id)) == transfer_id
    except ValueError:
        return False


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    """One read-only REPEATABLE READ transaction on the database at ``url``."""
    engine = create_engine(psycopg_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(text("SET TRANSACTION READ ONLY"))
                yield conn
    finally:
        engine.dispose()


def _transactions(conn: Connection, ids: Iterable[UUID] | None = None) -> dict[UUID, _Txn]:
    if ids is None:
        rows = conn.execute(text(_TRANSACTIONS_SQL))
    else:
        wanted = text(_TRANSACTIONS_SQL + " WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        rows = conn.execute(wanted, {"ids": list(ids)})
    return {row.id: _Txn(**row._mapping) for row in rows}


def audit(
    wallet_url: str, transactions_url: str, *, stuck_after_seconds: float = 300.0
) -> LedgerAudit:
    """Audit the wallet at ``wallet_url`` against the transactions at ``transactions_url``."""
    report = LedgerAudit()
    with _snapshot(transactions_url) as conn:
        txns = _transactions(conn)
    with _snapshot(wallet_url) as conn:
        entries = [_Entry(**row._mapping) for row in conn.execute(text(_ENTRIES_SQL))]
        holds = [
            (row.hold_id, row.amount) for row in conn.execute(text(_OPEN_HOLDS_SQL))
            if is_transaction_id(row.hold_id)
        ]  # fmt: skip
        with Session(bind=conn) as session:
            report.counts = ledger_counts(session)
            report.violations.extend(check_invariants(session))

    primary = {e.transfer_id: e for e in entries if e.kind != "REVERSAL"}
    reversal_of = {e.reversal_of: e for e in entries if e.reversal_of is not None}
    ours = {tid for tid in primary if is_transaction_id(tid)}
    foreign = {e.id for e in primary.values() if e.transfer_id not in ours}
    report.counts["transactions"] = len(txns)
    report.counts["foreign_entries"] = len(foreign) + len(foreign & reversal_of.keys())

    # Entries the earlier snapshot cannot explain, re-read once the wallet has been read.
    ahead = [
        UUID(tid) for tid in ours if UUID(tid) not in txns or txns[UUID(tid)].status == "PENDING"
    ]
    held_unseen = [UUID(hold_id) for hold_id, _ in holds if UUID(hold_id) not in txns]
    later: dict[UUID, _Txn] = {}
    if ahead or held_unseen:
        with _snapshot(transactions_url) as conn:
            later = _transactions(conn, ahead + held_unseen)

    for txn in txns.values():
        _check_transaction(report, txn, primary, reversal_of, later, stuck_after_seconds)
    for txn_id in ahead:
        if txn_id in txns:
            continue  # a PENDING one, judged above
        entry = primary[str(txn_id)]
        if (now := later.get(txn_id)) is None:
            report.violations.append(
                f"entry_has_transaction: {entry.describe()} has no transaction {txn_id}"
            )
        else:  # created after the first snapshot
            _check_entry(report, now, entry)
            _judge_unsettled_entry(report, now, entry)
    for hold_id, amount in holds:
        _check_hold(report, hold_id, amount, txns.get(UUID(hold_id)) or later.get(UUID(hold_id)))
    return report


def _check_hold(report: LedgerAudit, hold_id: str, amount: int, txn: _Txn | None) -> None:
    """An OPEN hold in the (later) wallet snapshot. Its transaction, read earlier, may only be
    behind in one way: PENDING under review (the hold is placed after that commit)."""
    if txn is None:
        problem = "has no transaction"
    elif txn.decision != "REVIEW" or txn.status not in _OPEN:
        problem = f"is still open for {txn.describe()}"
    elif txn.amount != amount:
        problem = f"holds {amount}, not the amount of {txn.describe()}"
    else:
        return
    report.violations.append(f"open_hold_has_review: hold {hold_id} {problem}")


def _check_transaction(
    report: LedgerAudit,
    txn: _Txn,
    primary: Mapping[str, _Entry],
    reversal_of: Mapping[UUID, _Entry],
    later: Mapping[UUID, _Txn],
    stuck_after_seconds: float,
) -> None:
    entry = primary.get(str(txn.id))
    reversal = None if entry is None else reversal_of.get(entry.id)
    if entry is not None:
        _check_entry(report, txn, entry)
    if txn.status in _OPEN and txn.age_seconds > stuck_after_seconds:
        review = " under review" if txn.decision == "REVIEW" else ""
        report.stuck.append(
            f"{txn.describe()}{review}: unchanged for {txn.age_seconds:.0f}s "
            f"(since {txn.updated_at}), past the {stuck_after_seconds:g}s window"
        )

    if txn.status in _SETTLED:
        if entry is None:
            report.violations.append(f"settled_has_entry: {txn.describe()} has no wallet entry")
            return
        if txn.status == "REVERSED":
            if reversal is None:
                report.violations.append(
                    f"reversed_has_reversal: {txn.describe()}: its {entry.describe()} "
                    "was never reversed"
                )
            else:
                _check_reversal(report, txn, entry, reversal)
        elif reversal is not None:
            # The admin reversal posts the wallet's Reverse, then moves the transaction to
            # REVERSED: within the window, the second step may still be on its way.
            if reversal.age_seconds <= stuck_after_seconds:
                report.in_flight.append(f"{reversal.describe()}: {txn.describe()} not yet")
            else:
                report.violations.append(
                    f"completed_not_reversed: {txn.describe()} but its entry was reversed "
                    f"by {reversal.describe()}"
                )
        return

    if entry is not None:
        # A PENDING one may have moved on since the first snapshot: judged as it is now.
        _judge_unsettled_entry(report, later.get(txn.id, txn), entry)


def _judge_unsettled_entry(report: LedgerAudit, txn: _Txn, entry: _Entry) -> None:
    """An entry of a transaction not settled when first read: in flight when the transaction
    is PROCESSING (posted, COMPLETED not written yet: the flow or recovery finishes it) or has
    settled since; a violation when it is FAILED or CANCELLED (final, never posted) or still
    PENDING (the wallet is called only once the checks have passed)."""
    if txn.status == "PROCESSING" or txn.status in _SETTLED:
        report.in_flight.append(f"{entry.describe()}: {txn.describe()}")
    else:
        report.violations.append(f"unmoved_has_no_entry: {txn.describe()} has {entry.describe()}")


def _check_entry(report: LedgerAudit, txn: _Txn, entry: _Entry) -> None:
    """The entry moves what the transaction says, between the accounts its type implies."""
    from_code, to_code = expected_accounts(txn)
    if (entry.amount, entry.currency, entry.from_code, entry.to_code) != (
        txn.amount,
        txn.currency,
        from_code,
        to_code,
    ) or entry.kind not in ("TRANSFER", "CAPTURE"):
        report.violations.append(
            f"entry_matches_transaction: {txn.describe()} has {entry.describe()}, expected "
            f"TRANSFER or CAPTURE of {txn.amount} {txn.currency} {from_code} -> {to_code}"
        )


def _check_reversal(report: LedgerAudit, txn: _Txn, entry: _Entry, reversal: _Entry) -> None:
    mirror = (entry.amount, entry.currency, entry.to_code, entry.from_code)
    if (reversal.amount, reversal.currency, reversal.from_code, reversal.to_code) != mirror:
        report.violations.append(
            f"reversed_has_reversal: {txn.describe()}: {reversal.describe()} does not mirror "
            f"{entry.describe()}"
        )
