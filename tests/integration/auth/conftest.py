"""Each auth test module gets its own auth service on a fresh database (module scope), and each
test a fresh HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mint.infra import EmbeddedInfra
from mint.kit.service import ServiceContext
from tests.integration.auth.support import app_client, auth_context


@pytest.fixture(scope="module")
def ctx(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceContext]:
    context = auth_context(embedded_infra, tmp_path_factory.mktemp("keys"))
    yield context
    context.database().dispose()


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with app_client(ctx) as c:
        yield c
