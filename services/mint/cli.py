"""The one ``mint`` command."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Mint platform command line")


@app.command()
def serve(name: str) -> None:
    """Run one service (the container entrypoint), configured by MINT_* environment variables."""
    from mint.kit.runner import serve as run

    run(name)


@app.command()
def dev(
    root: Path = typer.Option(Path(".mint"), help="where data, keys, logs and mail live"),
    service: list[str] = typer.Option(
        [], help="run only this service (repeatable; default: every implemented service)"
    ),
    free_ports: bool = typer.Option(
        False, help="free ports instead of the spec's (several platforms on one machine)"
    ),
) -> None:
    """Run the whole platform on embedded infrastructure with the gateway on :8080."""
    from mint.dev.dev import run_dev

    run_dev(root, service or None, free_ports=free_ports)


@app.command()
def migrate(name: str) -> None:
    """Apply a service's database migrations (MINT_DATABASE_URL)."""
    from mint.kit.runner import load_service
    from mint.kit.runner import migrate as run_migrate
    from mint.kit.service import build_context

    run_migrate(build_context(load_service(name)))
    typer.echo(f"{name}: migrations applied")


@app.command()
def operator() -> None:
    """Run the Kubernetes operator (kopf)."""
    from mint_operator.main import run

    run()


def _register_subcommands() -> None:
    from mint.cli_admin import admin_app
    from mint.cli_ledger import ledger_app
    from mint.cli_outbox import outbox_app

    app.add_typer(admin_app, name="admin", help="Administer users")
    app.add_typer(ledger_app, name="ledger", help="Ledger tools")
    app.add_typer(outbox_app, name="outbox", help="Outbox rows set aside: list, re-queue")


_register_subcommands()

if __name__ == "__main__":
    app()
