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
def bench(
    duration: float = typer.Option(10.0, min=0.5, help="seconds each run lasts"),
    clients: str = typer.Option("1,8,32", help="concurrent clients of each run, comma-separated"),
    scenarios: str = typer.Option(
        "transfer-pairs,transfer-one-sender,topup-many", help="scenarios, comma-separated"
    ),
    targets: str = typer.Option(
        "gateway,direct", help="gateway and/or direct (the transactions port), comma-separated"
    ),
    seed: int = typer.Option(1, help="picks the users of each run"),
    start_times: bool = typer.Option(True, help="time a cold and a warm `mint dev` start"),
    pgbench: bool = typer.Option(True, help="measure raw PostgreSQL with pgbench"),
    results_dir: Path = typer.Option(Path("bench-results"), help="where the results go"),
) -> None:
    """Benchmark the money path on a platform of its own (README "Benchmarks"); exit 1 on
    errors or broken ledger invariants, never on a time."""
    from mint.bench.report import failed
    from mint.bench.run import BenchOptions, run_bench

    def listed(text: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in text.split(",") if item.strip())

    try:
        options = BenchOptions(
            duration_s=duration,
            clients=tuple(int(c) for c in listed(clients)),
            scenarios=listed(scenarios),
            targets=listed(targets),
            seed=seed,
            start_times=start_times,
            pgbench=pgbench,
            results_dir=results_dir,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    report = run_bench(options, progress=lambda line: typer.echo(line))
    if failed(report):
        raise typer.Exit(1)


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
