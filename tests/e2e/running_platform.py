"""The platform started exactly as ``make dev`` starts it (each service its own process, the
gateway in front), on free ports, against the session's embedded infrastructure — one per test
session, shared by the end-to-end (tests/e2e) and browser (tests/browser) suites, so it is a
plugin of tests/conftest.py rather than a fixture of one suite's conftest."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from mint.dev.dev import database_owners, prepare
from mint.dev.platform import Platform
from mint.infra import EmbeddedInfra

E2E_SERVICES = ["auth", "wallet", "transactions", "kyc", "fraud", "web"]

#: The e2e platform runs with generous limits so money-path tests are not about limits; the
#: limits tests rewrite this file (it is live) and restore it (``limits_file`` fixture).
HIGH_LIMITS = """\
version: "e2e-high"
currency: USD
tiers:
  UNVERIFIED: {per_transaction: 100000000, daily: 1000000000, monthly: 10000000000}
  BASIC: {per_transaction: 100000000, daily: 1000000000, monthly: 10000000000}
  VERIFIED: {per_transaction: 100000000, daily: 1000000000, monthly: 10000000000}
fraud:
  review_threshold: 50
  block_threshold: 100
  velocity: {window_seconds: 3600, max_transfers: 100000}
  review_hold_hours: 72
"""


@pytest.fixture(scope="session")
def platform(
    embedded_infra: EmbeddedInfra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("mint-e2e") / ".mint"
    prepare(root)
    (root / "limits.yaml").write_text(HIGH_LIMITS)
    databases = {
        s: embedded_infra.create_database(f"e2e_{s}_{uuid.uuid4().hex[:6]}")
        for s in database_owners(E2E_SERVICES)
    }
    plat = Platform(
        root=root,
        infra=embedded_infra.endpoints,
        services=E2E_SERVICES,
        databases=databases,
        spec_ports=False,
        extra_env={
            "MINT_TRACE_FILE": str(root / "traces.jsonl"),
            # every e2e user registers from 127.0.0.1; the limit itself is tested in test_auth
            "MINT_REGISTER_RATE_PER_HOUR": "10000",
            # a killed service leaves transactions PENDING / PROCESSING: recovery (every 10 s)
            # settles them after seconds, not the production windows (test_crash_recovery)
            "MINT_RECOVERY_PROCESSING_AFTER_SECONDS": "2",
            "MINT_RECOVERY_PENDING_AFTER_SECONDS": "5",
        },
    )
    started = time.monotonic()
    plat.start(timeout=180)
    print(f"\n[e2e] platform ready in {time.monotonic() - started:.1f}s at {plat.gateway_url}")
    try:
        yield plat
    finally:
        plat.stop()
