"""``mint outbox parked|requeue <service>``: the outbox rows a service's relay set aside after
they kept failing to publish (logged as ``outbox_row_parked``, counted by
``mint_outbox_parked``), and putting them back in line once the cause is fixed.

The database is ``--database-url``, else ``MINT_DATABASE_URL``, else the service's database of a
running ``make dev`` (``.mint/runtime.json`` in this directory or a parent).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import typer

from mint.dev.runtime import database_url_for
from mint.kit.catalog import SERVICE_NAMES

outbox_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Outbox tools")

T = TypeVar("T")

_SERVICE = typer.Argument(..., help="the service whose outbox it is (auth, wallet, kyc, ...)")
_DATABASE_URL = typer.Option(
    None, "--database-url", help="the service's database (default: MINT_DATABASE_URL or make dev)"
)


@outbox_app.callback()
def _group() -> None:
    """Outbox tools: rows set aside after failing to publish."""


def resolve_database_url(service: str, explicit: str | None) -> str:
    if service not in SERVICE_NAMES:
        raise typer.BadParameter(
            f"unknown service {service!r}; one of: {', '.join(SERVICE_NAMES)}",
            param_hint="SERVICE",
        )
    try:
        return database_url_for(service, explicit)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from None


def _in_database(service: str, url: str, work: Callable[..., T]) -> T:
    """``work(session)`` in one unit of work on ``url``; exit 2 when the database cannot be
    used (unreachable, or no outbox there)."""
    from sqlalchemy.exc import SQLAlchemyError

    from mint.kit.db import Database

    db = Database(url, pool_size=1)
    try:
        with db.session() as session:
            return work(session)
    except SQLAlchemyError as exc:
        typer.echo(f"outbox: cannot use {service}'s database: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@outbox_app.command()
def parked(
    service: str = _SERVICE,
    limit: int = typer.Option(100, "--limit", min=1, help="at most this many rows"),
    database_url: str | None = _DATABASE_URL,
) -> None:
    """List the parked rows, oldest first: id, topic, key, type, attempts, last error."""
    from mint.kit.events.outbox import parked_rows

    url = resolve_database_url(service, database_url)
    rows = _in_database(service, url, lambda session: parked_rows(session, limit=limit))
    if not rows:
        typer.echo(f"{service}: no parked outbox rows")
        return
    typer.echo(f"{service}: {len(rows)} parked outbox row(s)")
    for row in rows:
        typer.echo(
            f"  {row.id}  {row.topic}  key={row.key}  {row.type}  attempts={row.attempts}"
            f"  parked_at={row.parked_at.isoformat()}  error={row.last_error}"
        )


@outbox_app.command()
def requeue(
    service: str = _SERVICE,
    all_rows: bool = typer.Option(False, "--all", help="every parked row"),
    ids: list[str] = typer.Option([], "--id", help="a parked row's id (repeatable)"),
    database_url: str | None = _DATABASE_URL,
) -> None:
    """Put parked rows back in line, attempts counted from zero again.

    The relay publishes them, then the rows of their keys that waited behind them. Fix the
    cause first ('mint outbox parked' shows each row's last error). Exits 1 when an --id is
    not a parked row."""
    from mint.kit.events.outbox import requeue_parked

    if all_rows == bool(ids):
        raise typer.BadParameter("give either --all or one or more --id", param_hint="--all/--id")
    wanted: list[uuid.UUID] | None = None
    if ids:
        try:
            wanted = [uuid.UUID(value) for value in ids]
        except ValueError:
            raise typer.BadParameter(f"not a row id: {ids}", param_hint="--id") from None
    url = resolve_database_url(service, database_url)
    done = _in_database(service, url, lambda session: requeue_parked(session, wanted))
    typer.echo(f"{service}: requeued {len(done)} outbox row(s)")
    for row_id in done:
        typer.echo(f"  {row_id}")
    missing = sorted(str(w) for w in set(wanted or []) - set(done))
    if missing:
        typer.echo(f"not parked (left alone): {', '.join(missing)}", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    outbox_app()
