"""Session-wide real servers for every test that needs them (spec/quality.md).

One embedded PostgreSQL, Redis, Kafka, S3 and SMTP sink start once per test session, on demand
(the first test that asks for ``infra``) and stop at the end. A server that cannot start fails
the tests that need it with the reason — never a silent skip.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mint.infra import EmbeddedInfra, InfraEndpoints

ARTIFACTS = Path(__file__).resolve().parent / ".artifacts"

# The platform started like `make dev` (fixture ``platform``): one per session, for tests/e2e and
# tests/browser alike.
pytest_plugins = ["tests.e2e.running_platform"]


@pytest.fixture(scope="session")
def embedded_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedInfra]:
    data_dir = Path(os.environ.get("MINT_TEST_DATA_DIR") or tmp_path_factory.mktemp("infra"))
    infra = EmbeddedInfra(data_dir, databases=[], ephemeral=True)
    started = time.monotonic()
    infra.start()
    print(f"\n[infra] embedded servers ready in {time.monotonic() - started:.1f}s ({data_dir})")
    try:
        yield infra
    finally:
        infra.stop()


@pytest.fixture(scope="session")
def infra(embedded_infra: EmbeddedInfra) -> InfraEndpoints:
    endpoints = embedded_infra.endpoints
    assert endpoints is not None
    return endpoints


@pytest.fixture
def fresh_database(embedded_infra: EmbeddedInfra, request: pytest.FixtureRequest) -> str:
    """A new, empty database for one test (its name derives from the test's name)."""
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    return embedded_infra.create_database(f"t_{base}_{uuid.uuid4().hex[:6]}")


def new_database(embedded_infra: EmbeddedInfra, prefix: str) -> str:
    return embedded_infra.create_database(f"{prefix}_{uuid.uuid4().hex[:8]}")


# ---- per-suite durations (quality.md: print each suite's duration) ----------------------------
_suite_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    suite = report.nodeid.split("/", 2)[1] if report.nodeid.startswith("tests/") else "other"
    _suite_seconds[suite] = _suite_seconds.get(suite, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _suite_seconds:
        terminalreporter.section("suite durations")
        for suite, seconds in sorted(_suite_seconds.items()):
            terminalreporter.write_line(f"{suite:<14} {seconds:8.1f}s")
