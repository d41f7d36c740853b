"""``mint ledger check``: verify the wallet ledger's invariants (services.md §2).

The database is ``--database-url``, else ``MINT_DATABASE_URL``, else the wallet database of a
running ``make dev`` (``.mint/runtime.json`` in this directory or a parent).
"""

from __future__ import annotations

import typer

from mint.dev.runtime import database_url_for

ledger_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Ledger tools")


@ledger_app.callback()
def _group() -> None:
    """Ledger tools."""


def resolve_database_url(explicit: str | None) -> str:
    try:
        return database_url_for("wallet", explicit)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from None


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
