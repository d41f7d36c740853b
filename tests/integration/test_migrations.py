"""Every service's Alembic migrations build exactly the schema its models declare: a model
change without its migration (or the reverse) fails here, whichever service it is in."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mint.infra import EmbeddedInfra
from mint.kit.db import Database, run_migrations
from mint.kit.runner import implemented_services, load_service

WITH_DATABASE = [n for n in implemented_services() if load_service(n).has_database]


def test_every_service_with_a_database_is_checked() -> None:
    assert {"auth", "wallet", "kyc", "transactions"} <= set(WITH_DATABASE)


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_migrations_match_models(embedded_infra: EmbeddedInfra, name: str) -> None:
    service = load_service(name)
    assert service.metadata is not None and service.migrations_dir is not None
    url = embedded_infra.create_database(f"migrations_{name}_{uuid.uuid4().hex[:6]}")
    run_migrations(url, service.migrations_dir)
    database = Database(url, pool_size=1)
    try:
        with database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), service.metadata)
    finally:
        database.dispose()
    assert diff == [], f"{name}: migrations and models differ: {diff}"
