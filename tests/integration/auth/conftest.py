"""Each auth test module gets its own auth service on a fresh database (module scope), and each
test a fresh HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mint.infra import EmbeddedInfra
from mint.kit.service import ServiceContext
from tests.harness import RunningService
from tests.integration.auth.support import app_client, running_auth


@pytest.fixture(scope="module")
def svc(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with running_auth(embedded_infra, tmp_path_factory.mktemp("keys")) as running:
        yield running


@pytest.fixture(scope="module")
def ctx(svc: RunningService) -> ServiceContext:
    return svc.ctx


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with app_client(ctx) as c:
        yield c
