"""What auth's integration tests share: one PostgreSQL for the test process, an auth service
context on a fresh database, and HTTP helpers."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mint.auth.keys import generate_key
from mint.auth.service import SERVICE
from mint.auth.settings import AuthSettings
from mint.infra import EmbeddedInfra
from mint.kit.db import run_migrations
from mint.kit.events import OUTBOX
from mint.kit.service import ServiceContext, build_context
from sqlalchemy import select

BASE = "/api/v1/auth"
PASSWORD = "Correct-Horse-42"
INTERNAL_TOKEN = "auth-tests-internal-token"

_postgres: EmbeddedInfra | None = None
_lock = threading.Lock()


def shared_postgres(config: pytest.Config) -> EmbeddedInfra:
    """auth needs only PostgreSQL: one embedded server for the whole test run (seconds, not the
    whole platform's infrastructure), started on first use, stopped when pytest finishes."""
    global _postgres
    with _lock:
        if _postgres is None:
            data_dir = Path(tempfile.mkdtemp(prefix="mint-auth-pg-"))
            infra = EmbeddedInfra(data_dir, databases=[], components={"postgres"}, ephemeral=True)
            infra.start()
            _postgres = infra
            config.add_cleanup(lambda: _stop(infra, data_dir))
        return _postgres


def _stop(infra: EmbeddedInfra, data_dir: Path) -> None:
    global _postgres
    infra.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    _postgres = None


def auth_context(config: pytest.Config, keys_dir: Path) -> ServiceContext:
    """auth on a new, migrated database, signing with a fresh key in ``keys_dir``."""
    url = shared_postgres(config).create_database(f"auth_{uuid.uuid4().hex[:8]}")
    assert SERVICE.migrations_dir is not None
    run_migrations(url, SERVICE.migrations_dir)
    generate_key(keys_dir)
    settings = AuthSettings(
        environment="test",
        database_url=url,
        signing_keys_dir=keys_dir,
        public_url="http://testserver",
        internal_token=INTERNAL_TOKEN,
    )
    context = build_context(SERVICE, settings)
    for hook in SERVICE.on_startup:
        hook(context)
    return context


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def register(client: TestClient, email: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"email": email or new_email(), "password": PASSWORD, "name": "Test User", **extra}
    resp = client.post(f"{BASE}/register", json=body)
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def outbox_rows(ctx: ServiceContext, type: str, key: str | None = None) -> list[Any]:
    stmt = select(OUTBOX).where(OUTBOX.c.type == type)
    if key is not None:
        stmt = stmt.where(OUTBOX.c.key == key)
    with ctx.database().session() as s:
        return list(s.execute(stmt).mappings())


def csrf_headers(client: TestClient) -> dict[str, str]:
    return {"Origin": "http://testserver", "X-CSRF-Token": client.cookies.get("csrf_token") or ""}


def refresh(client: TestClient, token: str) -> Any:
    return client.post(f"{BASE}/refresh", json={"refresh_token": token})
