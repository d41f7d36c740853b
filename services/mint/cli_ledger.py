"""``mint ledger check``: verify the wallet ledger's invariants (services.md §2).

The database is ``--database-url``, else ``MINT_DATABASE_URL``, else the wallet database of a
running ``make dev`` (``.mint/runtime.json`` in this directory or a parent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

ledger_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Ledger tools")


@ledger_app.callback()
def _group() -> None:
    """Ledger tools."""


def find_runtime_file(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / ".mint" / "runtime.json"
        if candidate.is_file():
            return candidate
    return None


def _psycopg(url: str) -> str:
    """``postgresql://`` URIs (CloudNativePG secrets) use the psycopg 3 driver."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def resolve_database_url(explicit: str | None) -> str:
    if explicit:
        return _psycopg(explicit)
    if env := os.environ.get("MINT_DATABASE_URL"):
        return _psycopg(env)
    runtime = find_runtime_file()
    if runtime is not None:
        try:
            url = json.loads(runtime.read_text())["databases"]["wallet"]
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(f"{runtime} has no wallet database ({exc})") from None
        return _psycopg(str(url))
    raise typer.BadParameter(
        "no database: pass --database-url, set MINT_DATABASE_URL, or run `make dev`",
        param_hint="--database-url",
    )


@ledger_app.command()
def check(
    database_url: str | None = typer.Option(
        None, "--database-url", help="wallet database URL (default: MINT_DATABASE_URL or make dev)"
    ),
) -> None:
    """Verify every ledger invariant; exit 1 on any violation."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from mint.wallet.invariants import INVARIANTS, check_ledger

    url = resolve_database_url(database_url)
    engine = create_engine(url, pool_pre_ping=True)
    try:
        report = check_ledger(engine)
    except SQLAlchemyError as exc:
        typer.echo(f"ledger check: cannot read the wallet database: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in report.counts.items())
    typer.echo(f"ledger: {counts}")
    typer.echo(f"checked {len(INVARIANTS)} invariants: {', '.join(INVARIANTS)}")
    if report.ok:
        typer.echo("OK: no violations")
        return
    typer.echo(f"FAILED: {len(report.violations)} violation(s)")
    for line in report.violations:
        typer.echo(f"  - {line}")
    raise typer.Exit(1)


if __name__ == "__main__":
    ledger_app()
