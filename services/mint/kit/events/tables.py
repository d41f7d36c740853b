"""The ``outbox`` and ``processed_events`` tables every producing / consuming service owns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

OUTBOX_TABLE = "outbox"
PROCESSED_TABLE = "processed_events"


def _outbox_columns() -> list[Any]:
    return [
        Column("id", UUID(as_uuid=True), nullable=False),  # = the CloudEvents ce_id
        # Tie-breaker for events emitted in the same microsecond (order of emission).
        Column("seq", BigInteger, Identity(always=False), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("type", String(255), nullable=False),
        Column("source", String(64), nullable=False),
        Column("subject", String(255), nullable=False),
        Column("actor", String(255), nullable=False),
        Column("data", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text, nullable=True),
        PrimaryKeyConstraint("id", name="pk_outbox"),
    ]


def _parking_columns() -> list[Any]:
    """Added to the initial shape by each service's ``outbox_parking`` migration
    (:func:`add_outbox_parking`)."""
    return [
        # Not retried before this instant (backoff after a failed publish); NULL: due now.
        Column("next_attempt_at", DateTime(timezone=True), nullable=True),
        # Set aside after ``outbox_max_attempts`` failed publishes: kept, never retried until
        # `mint outbox requeue` clears it; later rows of its key wait behind it.
        Column("parked_at", DateTime(timezone=True), nullable=True),
    ]


def _processed_columns() -> list[Any]:
    return [
        Column("group", String(255), nullable=False),
        Column("event_id", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("group", "event_id", name="pk_processed_events"),
    ]


_UNPUBLISHED_INDEX = "ix_outbox_unpublished"
_UNPUBLISHED_WHERE = "published_at IS NULL"


def _outbox(metadata: MetaData) -> Table:
    table = Table(OUTBOX_TABLE, metadata, *_outbox_columns(), *_parking_columns())
    Index(
        _UNPUBLISHED_INDEX,
        table.c.created_at,
        table.c.seq,
        postgresql_where=text(_UNPUBLISHED_WHERE),
    )
    return table


def _processed(metadata: MetaData) -> Table:
    return Table(PROCESSED_TABLE, metadata, *_processed_columns())


# Table objects used for DML by emit / the relay / the consumers (any service's database has
# the same shape, so one detached definition serves them all).
OUTBOX = _outbox(MetaData())
PROCESSED_EVENTS = _processed(MetaData())


def add_event_tables(metadata: MetaData) -> None:
    """Add ``outbox`` and ``processed_events`` to a service's metadata (idempotent)."""
    if OUTBOX_TABLE not in metadata.tables:
        _outbox(metadata)
    if PROCESSED_TABLE not in metadata.tables:
        _processed(metadata)


def create_event_tables(op: Any) -> None:
    """Create both tables in a service's initial Alembic migration (``op`` = ``alembic.op``),
    in their initial shape: :func:`add_outbox_parking` (a later migration) completes it."""
    op.create_table(OUTBOX_TABLE, *_outbox_columns())
    op.create_index(
        _UNPUBLISHED_INDEX,
        OUTBOX_TABLE,
        ["created_at", "seq"],
        postgresql_where=text(_UNPUBLISHED_WHERE),
    )
    op.create_table(PROCESSED_TABLE, *_processed_columns())


def drop_event_tables(op: Any) -> None:
    """Drop both tables (the initial migration's ``downgrade``)."""
    op.drop_table(PROCESSED_TABLE)
    op.drop_index(_UNPUBLISHED_INDEX, table_name=OUTBOX_TABLE)
    op.drop_table(OUTBOX_TABLE)


def add_outbox_parking(op: Any) -> None:
    """Add the relay's retry and parking columns to the outbox (each service's
    ``outbox_parking`` migration)."""
    for column in _parking_columns():
        op.add_column(OUTBOX_TABLE, column)


def drop_outbox_parking(op: Any) -> None:
    """The ``outbox_parking`` migration's ``downgrade``."""
    for column in reversed(_parking_columns()):
        op.drop_column(OUTBOX_TABLE, column.name)
