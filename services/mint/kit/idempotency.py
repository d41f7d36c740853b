"""Idempotency-Key handling for POSTs that create something (conventions.md "Idempotency").

Scope is (user, key). The protocol that keeps money from moving twice:

1. ``validate_key(header)`` — 400 ``idempotency_key_required`` / ``invalid_idempotency_key``.
2. ``begin(db, user_id, key, fingerprint(method, path, body))`` in its **own short transaction**
   (``INSERT … ON CONFLICT DO NOTHING``) so the claim is durable before any work starts — or
   ``claim(session, …)`` in the transaction of the work's first durable step, so the two
   commit together (the money path):
   ``Claimed`` → do the work; ``Replay`` → answer the stored outcome (``replay_response``);
   ``InProgress`` → 409 ``idempotency_request_in_progress``; ``Reused`` → 422
   ``idempotency_key_reused``. ``respond(claim)`` turns the last three into a response / Problem.
3. ``complete(session, user_id, key, status, body)`` stores the final outcome (business refusals
   such as 422 ``insufficient_funds`` included) in the same transaction as the final state.
   Only a claim still in flight is completed: a stored outcome never changes (a late second
   settlement gets False back and writes nothing).
4. ``abandon(db, user_id, key)`` deletes the claim when the request failed before any durable
   effect, so a corrected retry can proceed. A claim whose work *did* start is never abandoned:
   it stays ``in_progress`` until the work's outcome is known (a recovery job completes it).

Rows live 24 h (``TTL``); an expired row counts as absent and ``cleanup`` deletes them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse

from mint.kit.db import Database
from mint.kit.errors import PROBLEM_CONTENT_TYPE, Problem

TABLE = "idempotency_keys"
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
IN_PROGRESS = "in_progress"
DONE = "done"
_EXPIRES_INDEX = "ix_idempotency_keys_expires_at"


def _columns() -> list[Any]:
    return [
        Column("user_id", PG_UUID(as_uuid=True), nullable=False),
        Column("key", String(MAX_KEY_LENGTH), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("response_status", Integer, nullable=True),
        Column("response_body", JSONB, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    ]


def _table(metadata: MetaData) -> Table:
    table = Table(TABLE, metadata, *_columns())
    Index(_EXPIRES_INDEX, table.c.expires_at)
    return table


# Detached definition used for DML: every service's table has the same shape.
KEYS = _table(MetaData())


def add_idempotency_table(metadata: MetaData) -> None:
    """Add ``idempotency_keys`` to a service's metadata (idempotent)."""
    if TABLE not in metadata.tables:
        _table(metadata)


def create_idempotency_table(op: Any) -> None:
    """Create the table in a service's Alembic migration (``op`` = ``alembic.op``)."""
    op.create_table(TABLE, *_columns())
    op.create_index(_EXPIRES_INDEX, TABLE, ["expires_at"])


def drop_idempotency_table(op: Any) -> None:
    op.drop_index(_EXPIRES_INDEX, table_name=TABLE)
    op.drop_table(TABLE)


# ---- keys and fingerprints -------------------------------------------------------------------


def validate_key(value: str | None) -> str:
    """The header's value, or a 400: missing → ``idempotency_key_required``; not 1-255
    printable ASCII characters → ``invalid_idempotency_key``."""
    if value is None:
        raise Problem(400, "idempotency_key_required", f"the {HEADER} header is required")
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in value):
        raise Problem(
            400,
            "invalid_idempotency_key",
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable ASCII characters",
        )
    return value


def canonical_json(body: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is. An absent body is ``{}`` (conventions.md:
    actions accept an empty body or ``{}``)."""
    return json.dumps(
        {} if body is None else body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def fingerprint(method: str, path: str, body: Any) -> str:
    """sha256 hex of the method, the path and the canonical JSON body."""
    material = f"{method.upper()}\n{path}\n{canonical_json(body)}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


# ---- claims ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """This request owns the key: do the work, then ``complete`` (or ``abandon``)."""


@dataclass(frozen=True)
class Replay:
    """The first request finished: answer its stored status and body."""

    status: int
    body: Any


@dataclass(frozen=True)
class InProgress:
    """The first request with this key is still running."""


@dataclass(frozen=True)
class Reused:
    """The key was first used for a different request."""


Claim = Claimed | Replay | InProgress | Reused

_ATTEMPTS = 5


def begin(
    db: Database, user_id: UUID, key: str, fingerprint: str, *, ttl: timedelta = TTL
) -> Claim:
    """Claim (user_id, key) in a transaction of its own, committed before returning."""
    for _ in range(_ATTEMPTS):
        with db.session() as session:
            claim = _try_claim(session, user_id, key, fingerprint, ttl)
        if claim is not None:
            return claim
    # The row kept appearing and disappearing (abandoned by concurrent requests): say busy.
    return InProgress()


def claim(
    session: Session, user_id: UUID, key: str, fingerprint: str, *, ttl: timedelta = TTL
) -> Claim:
    """Claim (user_id, key) in the caller's transaction, together with the work's first durable
    step: both commit, or neither does (then the key is free again, nothing to abandon). A
    concurrent request with the same key waits on the row until this transaction ends, then
    sees the claim."""
    for _ in range(_ATTEMPTS):
        found = _try_claim(session, user_id, key, fingerprint, ttl)
        if found is not None:
            return found
    return InProgress()


def _try_claim(session: Session, user_id: UUID, key: str, fp: str, ttl: timedelta) -> Claim | None:
    fresh = {
        "fingerprint": fp,
        "status": IN_PROGRESS,
        "response_status": None,
        "response_body": None,
        "created_at": func.now(),
        "expires_at": func.now() + ttl,
    }
    inserted = session.execute(
        pg_insert(KEYS)
        .values(user_id=user_id, key=key, **fresh)
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(KEYS.c.key)
    ).first()
    if inserted is not None:
        return Claimed()
    # An expired row counts as absent: take it over atomically.
    retaken = session.execute(
        update(KEYS)
        .where(_pk(user_id, key), KEYS.c.expires_at <= func.now())
        .values(**fresh)
        .returning(KEYS.c.key)
    ).first()
    if retaken is not None:
        return Claimed()
    row = session.execute(
        select(
            KEYS.c.fingerprint, KEYS.c.status, KEYS.c.response_status, KEYS.c.response_body
        ).where(_pk(user_id, key))
    ).first()
    if row is None:  # abandoned between our INSERT and SELECT: try again
        return None
    if row.fingerprint != fp:
        return Reused()
    if row.status == DONE and row.response_status is not None:
        return Replay(status=row.response_status, body=row.response_body)
    return InProgress()


def stored_answer(session: Session, user_id: UUID, key: str) -> Replay | None:
    """The answer stored for (user_id, key), if its request is complete — what a replay gets."""
    row = session.execute(
        select(KEYS.c.status, KEYS.c.response_status, KEYS.c.response_body).where(_pk(user_id, key))
    ).first()
    if row is None or row.status != DONE or row.response_status is None:
        return None
    return Replay(status=row.response_status, body=row.response_body)


def _pk(user_id: UUID, key: str) -> Any:
    return and_(KEYS.c.user_id == user_id, KEYS.c.key == key)


def complete(session: Session, user_id: UUID, key: str, status: int, body: Any) -> bool:
    """Store the final outcome of the claim still in flight, in the caller's transaction (with
    the final state change); True when it was stored.

    A stored outcome never changes: when the row is already completed (a second or late
    settlement), or gone (abandoned, or expired and cleaned up), nothing is written and this
    returns False — for the caller a sign that two paths settled the same request."""
    stored = session.execute(
        update(KEYS)
        .where(_pk(user_id, key), KEYS.c.status == IN_PROGRESS)
        .values(status=DONE, response_status=status, response_body=body)
        .returning(KEYS.c.key)
    ).first()
    return stored is not None


def abandon(db: Database, user_id: UUID, key: str) -> None:
    """Release an unfinished claim (no durable effect happened) so a retry can proceed."""
    with db.session() as session:
        session.execute(delete(KEYS).where(_pk(user_id, key), KEYS.c.status == IN_PROGRESS))


def cleanup(db: Database, *, batch: int = 1000) -> int:
    """Delete up to ``batch`` expired rows; returns how many were deleted."""
    with db.session() as session:
        expired = KEYS.c.expires_at <= func.now()
        doomed = select(KEYS.c.user_id, KEYS.c.key).where(expired).limit(batch)
        # ``expired`` is repeated on the DELETE so a row re-taken meanwhile is kept.
        result = session.execute(
            delete(KEYS)
            .where(tuple_(KEYS.c.user_id, KEYS.c.key).in_(doomed), expired)
            .returning(KEYS.c.key)
        )
        return len(result.all())


# ---- HTTP helpers ----------------------------------------------------------------------------


def replay_response(replay: Replay) -> JSONResponse:
    """The stored outcome, marked ``Idempotent-Replayed: true``."""
    return JSONResponse(
        replay.body,
        status_code=replay.status,
        media_type=PROBLEM_CONTENT_TYPE if replay.status >= 400 else None,
        headers={REPLAYED_HEADER: "true"},
    )


def respond(claim: Replay | InProgress | Reused) -> JSONResponse:
    """The answer to a request that did not get the claim (raises the 409 / 422 Problems)."""
    if isinstance(claim, Replay):
        return replay_response(claim)
    if isinstance(claim, InProgress):
        raise Problem(
            409,
            "idempotency_request_in_progress",
            "a request with this Idempotency-Key is still being processed",
        )
    raise Problem(
        422, "idempotency_key_reused", "this Idempotency-Key was used for a different request"
    )
