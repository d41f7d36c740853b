"""``mint admin …``: user administration from the command line (wired in by ``mint.cli``)."""

from __future__ import annotations

import typer

from mint.auth.domain import normalize_email
from mint.dev.runtime import database_url_for

admin_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Administer users")


@admin_app.callback()
def _admin() -> None:
    """Administer users (auth's database)."""


def resolve_database_url(explicit: str | None) -> str:
    """``--database-url``, else ``MINT_DATABASE_URL``, else auth's database of a running
    ``make dev`` (``.mint/runtime.json``)."""
    try:
        return database_url_for("auth", explicit)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from None


def create_admin(database_url: str, email: str, password: str, name: str) -> tuple[str, bool]:
    """Create a verified admin, or promote (and verify) an existing user — the same use case
    (and events) as everything else in auth. Returns the user id and whether the user is new.
    Raises ``ValueError`` with the reason for unusable input (before touching the database)."""
    from mint.auth import actions
    from mint.auth.domain import new_account
    from mint.auth.service import SERVICE
    from mint.kit.db import Database, run_migrations
    from mint.kit.domain import DomainError

    try:
        account = new_account(email, name, password)
    except DomainError as refused:
        raise ValueError(f"{refused.code.replace('_', ' ')}: {refused.detail}") from None
    assert SERVICE.migrations_dir is not None
    run_migrations(database_url, SERVICE.migrations_dir)
    db = Database(database_url, pool_size=1)
    try:
        user, created = actions.create_admin(db, account)
    finally:
        db.dispose()
    return str(user.id), created


@admin_app.command("create")
def create(
    email: str = typer.Option(..., "--email", help="the admin's email"),
    password: str = typer.Option(
        ..., "--password", help="at least 10 characters, mixed classes", hide_input=True
    ),
    name: str = typer.Option(..., "--name", help="display name"),
    database_url: str | None = typer.Option(
        None, "--database-url", help="auth's database (default: MINT_DATABASE_URL or make dev's)"
    ),
) -> None:
    """Create a verified admin (or promote an existing user; their password is kept)."""
    url = resolve_database_url(database_url)
    try:
        user_id, created = create_admin(url, email, password, name)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if created:
        typer.echo(f"created admin {normalize_email(email)} ({user_id})")
    else:
        typer.echo(f"promoted existing user {normalize_email(email)} ({user_id}) to admin")
