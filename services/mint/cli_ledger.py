"""``mint ledger check``: verify the wallet ledger's invariants (services.md §2) and, with the
transactions database, that both services agree on every movement (:mod:`mint.ledger_audit`).

The wallet database is ``--database-url``, else ``MINT_DATABASE_URL``, else the wallet database of
a running ``make dev`` (``.mint/runtime.json`` in this directory or a parent). The transactions
database is ``--transactions-database-url``, else — only when the wallet's came from ``make dev``
too — the running ``make dev``'s: a wallet named by hand is never paired with another platform's
transactions. Without one, only the wallet's invariants are checked, and the output says so.
"""

from __future__ import annotations

import os

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


def resolve_transactions_url(explicit: str | None, wallet_explicit: str | None) -> str | None:
    """The transactions database to audit against, or None when there is none to pair with."""
    if explicit:
        return database_url_for("transactions", explicit)
    if wallet_explicit or os.environ.get("MINT_DATABASE_URL"):
        return None
    try:
        return database_url_for("transactions")
    except LookupError:
        return None


@ledger_app.command()
def check(
    database_url: str | None = typer.Option(
        None, "--database-url", help="wallet database URL (default: MINT_DATABASE_URL or make dev)"
    ),
    transactions_database_url: str | None = typer.Option(
        None,
        "--transactions-database-url",
        help="transactions database URL (default: make dev's, when the wallet's is too)",
    ),
    stuck_after_seconds: float = typer.Option(
        300.0,
        "--stuck-after-seconds",
        min=0.0,
        help="report transactions PENDING or PROCESSING for longer than this",
    ),
) -> None:
    """Verify every ledger invariant and the cross-service checks; exit 1 on any violation."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from mint.ledger_audit import CHECKS, LedgerAudit, audit
    from mint.wallet.invariants import INVARIANTS, check_ledger

    url = resolve_database_url(database_url)
    transactions_url = resolve_transactions_url(transactions_database_url, database_url)
    try:
        if transactions_url is not None:
            report = audit(url, transactions_url, stuck_after_seconds=stuck_after_seconds)
        else:
            engine = create_engine(url, pool_pre_ping=True)
            try:
                wallet = check_ledger(engine)
            finally:
                engine.dispose()
            report = LedgerAudit(violations=wallet.violations, counts=wallet.counts)
    except SQLAlchemyError as exc:
        typer.echo(f"ledger check: cannot read a database: {exc}", err=True)
        raise typer.Exit(2) from None

    counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in report.counts.items())
    typer.echo(f"ledger: {counts}")
    typer.echo(f"checked {len(INVARIANTS)} wallet invariants: {', '.join(INVARIANTS)}")
    if transactions_url is None:
        typer.echo(
            "cross-service checks SKIPPED: no transactions database "
            "(pass --transactions-database-url)"
        )
    else:
        typer.echo(f"checked {len(CHECKS)} cross-service checks: {', '.join(CHECKS)}")
        if report.counts.get("foreign_entries"):
            typer.echo(
                "  (foreign entries: posted under an id that is no transaction's, not by "
                "transactions; not cross-checked)"
            )
        typer.echo(
            f"in flight (wallet ahead of its transaction, settling): {len(report.in_flight)}"
        )
        for line in report.in_flight:
            typer.echo(f"  ~ {line}")
        if report.stuck:
            typer.echo(
                f"STUCK: {len(report.stuck)} transaction(s) PENDING or PROCESSING past "
                f"{stuck_after_seconds:g}s (reported, not a violation: recovery should settle them)"
            )
            for line in report.stuck:
                typer.echo(f"  ! {line}")
        else:
            typer.echo(f"stuck (PENDING or PROCESSING past {stuck_after_seconds:g}s): none")
    if report.ok:
        typer.echo("OK: no violations")
        return
    typer.echo(f"FAILED: {len(report.violations)} violation(s)")
    for line in report.violations:
        typer.echo(f"  - {line}")
    raise typer.Exit(1)


if __name__ == "__main__":
    ledger_app()
