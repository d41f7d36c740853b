"""The ledger's invariants, checked by ``mint ledger check`` and by tests.

``check_invariants(session)`` returns one human-readable line per violation (empty = healthy).
Run it in a REPEATABLE READ (or SERIALIZABLE) transaction to see one consistent snapshot while
transfers are still running; ``check_ledger`` does that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

# (name, SQL returning rows that violate it, how to describe one row)
_CHECKS: tuple[tuple[str, str, str], ...] = (
    (
        "entry_sums_to_zero",
        """
        SELECT e.transfer_id, COALESCE(SUM(p.amount), 0) AS total, COUNT(p.id) AS n
        FROM journal_entries e LEFT JOIN postings p ON p.entry_id = e.id
        GROUP BY e.id, e.transfer_id
        HAVING COALESCE(SUM(p.amount), 0) <> 0 OR COUNT(p.id) < 2
        """,
        "entry {transfer_id}: {n} posting(s) summing to {total}, expected >= 2 summing to 0",
    ),
    (
        "entry_matches_postings",
        """
        SELECT e.transfer_id, e.amount
        FROM journal_entries e
        WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id
                          AND p.account_id = e.from_account_id AND p.amount = -e.amount)
           OR NOT EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id
                          AND p.account_id = e.to_account_id AND p.amount = e.amount)
        """,
        "entry {transfer_id}: postings do not move {amount} from its sender to its recipient",
    ),
    (
        "balance_equals_postings",
        """
        SELECT a.code, a.balance, COALESCE(SUM(p.amount), 0) AS posted
        FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
        WHERE a.kind = 'USER'
        GROUP BY a.id, a.code, a.balance
        HAVING a.balance <> COALESCE(SUM(p.amount), 0)
        """,
        "account {code}: balance {balance} but its postings sum to {posted}",
    ),
    (
        "system_accounts_without_running_balance",
        """
        SELECT a.code, a.balance, COUNT(p.id) AS n
        FROM accounts a LEFT JOIN postings p
             ON p.account_id = a.id AND p.balance_after IS NOT NULL
        WHERE a.kind = 'SYSTEM'
        GROUP BY a.id, a.code, a.balance
        HAVING a.balance <> 0 OR COUNT(p.id) > 0
        """,
        "system account {code}: balance column {balance} and {n} posting(s) with a "
        "balance_after (its balance is the sum of its postings)",
    ),
    (
        "balance_after_chain",
        """
        SELECT code, id, balance_after, running FROM (
            SELECT a.code, p.id, p.balance_after,
                   SUM(p.amount) OVER (PARTITION BY p.account_id ORDER BY p.id) AS running
            FROM postings p JOIN accounts a ON a.id = p.account_id
            WHERE a.kind = 'USER'
        ) s WHERE balance_after IS DISTINCT FROM running
        """,
        "account {code}: posting {id} has balance_after {balance_after}, expected {running}",
    ),
    (
        "user_available_not_negative",
        """
        SELECT code, balance, held FROM accounts
        WHERE kind = 'USER' AND (balance - held < 0 OR held < 0)
        """,
        "account {code}: available {balance} - {held} is negative",
    ),
    (
        "held_equals_open_holds",
        """
        SELECT a.code, a.held,
               COALESCE(SUM(h.amount) FILTER (WHERE h.status = 'OPEN'), 0) AS open_holds
        FROM accounts a LEFT JOIN holds h ON h.account_id = a.id
        GROUP BY a.id, a.code, a.held
        HAVING a.held <> COALESCE(SUM(h.amount) FILTER (WHERE h.status = 'OPEN'), 0)
        """,
        "account {code}: held {held} but open holds sum to {open_holds}",
    ),
    (
        "one_entry_per_transfer_id",
        """
        SELECT transfer_id, COUNT(*) AS n FROM journal_entries
        GROUP BY transfer_id HAVING COUNT(*) > 1
        """,
        "transfer {transfer_id}: {n} journal entries",
    ),
    (
        "conservation",
        """
        SELECT users.total + systems.total AS total FROM
            (SELECT COALESCE(SUM(balance), 0) AS total FROM accounts WHERE kind = 'USER') users,
            (SELECT COALESCE(SUM(p.amount), 0) AS total
             FROM postings p JOIN accounts a ON a.id = p.account_id
             WHERE a.kind = 'SYSTEM') systems
        WHERE users.total + systems.total <> 0
        """,
        "user balances plus system postings sum to {total}, expected 0",
    ),
)

_COUNTS = {
    "accounts": "SELECT COUNT(*) FROM accounts",
    "user_accounts": "SELECT COUNT(*) FROM accounts WHERE kind = 'USER'",
    "entries": "SELECT COUNT(*) FROM journal_entries",
    "postings": "SELECT COUNT(*) FROM postings",
    "open_holds": "SELECT COUNT(*) FROM holds WHERE status = 'OPEN'",
}

INVARIANTS: tuple[str, ...] = tuple(name for name, _, _ in _CHECKS)


def check_invariants(session: Session) -> list[str]:
    """Every violation of every ledger invariant, as ``"<invariant>: <what>"`` lines."""
    violations: list[str] = []
    for name, sql, template in _CHECKS:
        for row in session.execute(text(sql)).mappings():
            violations.append(f"{name}: {template.format(**row)}")
    return violations


def ledger_counts(session: Session) -> dict[str, int]:
    return {name: int(session.execute(text(sql)).scalar_one()) for name, sql in _COUNTS.items()}


@dataclass
class LedgerReport:
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def check_ledger(engine: Engine) -> LedgerReport:
    """Counts and violations from one consistent snapshot (REPEATABLE READ, read only)."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin(), Session(bind=conn) as session:
            session.execute(text("SET TRANSACTION READ ONLY"))
            return LedgerReport(ledger_counts(session), check_invariants(session))
