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
    """Create a verified admin, or promote (and verify) an existing user. Returns the user id and
    whether the user is new. Raises ``ValueError`` with the reason for unusable input."""
    from mint.auth import store
    from mint.auth.domain import (
        NAME_MAX,
        PASSWORD_MAX,
        Role,
        has_control_chars,
        is_valid_email,
        password_problems,
    )
    from mint.auth.passwords import hash_password
    from mint.auth.service import SERVICE
    from mint.kit.db import Database, run_migrations

    email = normalize_email(email)
    name = name.strip()
    if not is_valid_email(email):
        raise ValueError("not a valid email address")
    if not 1 <= len(name) <= NAME_MAX or has_control_chars(name):
        raise ValueError(f"name must be 1..{NAME_MAX} characters")
    problems = password_problems(password, email)
    if len(password) > PASSWORD_MAX:
        problems.append(f"must be at most {PASSWORD_MAX} characters")
    if problems:
        raise ValueError("weak password: " + "; ".join(problems))
    assert SERVICE.migrations_dir is not None
    run_migrations(database_url, SERVICE.migrations_dir)
    password_hash = hash_password(password)
    db = Database(database_url, pool_size=1)
    try:
        with db.session() as session:
            user = store.create_user(
                session,
                email=email,
                name=name,
                password_hash=password_hash,
                role=Role.ADMIN,
                email_verified=True,
            )
            if user is not None:
                store.emit_auth_event(
                    session,
                    "auth.user_registered",
                    user.id,
                    {"user_id": str(user.id), "email": user.email, "name": user.name},
                    actor="system",
                )
                return str(user.id), True
            existing = store.get_user_by_email(session, email)
            assert existing is not None
            if not existing.email_verified:
                existing.email_verified = True
                store.emit_auth_event(
                    session,
                    "auth.user_verified",
                    existing.id,
                    {"user_id": str(existing.id)},
                    actor="system",
                )
            if existing.role != Role.ADMIN.value:
                existing.role = Role.ADMIN.value
                store.revoke_user_families(session, existing.id, "role_changed")
                store.emit_auth_event(
                    session,
                    "auth.role_changed",
                    existing.id,
                    {"user_id": str(existing.id), "role": existing.role},
                    actor="system",
                )
            return str(existing.id), False
    finally:
        db.dispose()


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
