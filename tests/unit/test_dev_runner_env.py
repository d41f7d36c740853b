"""What the dev runner gives a service (issue 8, items 8 and 9): the caller's ``MINT_*`` settings
reach it, except the ones the runner owns, whatever the caller's environment says about them
(tests/e2e/test_dev_runner.py shows the same on a running ``mint dev``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mint.dev.platform import DEV_DEFAULTS, RUNNER_OWNED_SETTINGS, Platform
from mint.kit.catalog import CAPABILITIES, SERVICE_NAMES
from tests.fixtures.endpoints import offline_endpoints

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    infra = offline_endpoints(tmp_path)
    databases = {s: f"postgresql+psycopg://mint:mint@127.0.0.1:5432/{s}" for s in SERVICE_NAMES}
    plat = Platform(root=tmp_path, infra=infra, services=list(SERVICE_NAMES), databases=databases)
    plat._plan_ports()
    return plat


def test_the_callers_settings_reach_every_service(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINT_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("MINT_REGISTER_RATE_PER_HOUR", "7")
    monkeypatch.setenv("MINT_TRUSTED_PROXIES", "10.0.0.0/8")  # a dev default, the caller's wins
    for name in SERVICE_NAMES:
        env = platform.env_for(name)
        assert env["MINT_LOG_LEVEL"] == "DEBUG", name
        assert env["MINT_REGISTER_RATE_PER_HOUR"] == "7", name
        assert env["MINT_TRUSTED_PROXIES"] == "10.0.0.0/8", name


def test_the_settings_the_runner_owns_ignore_the_callers(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in RUNNER_OWNED_SETTINGS:
        monkeypatch.setenv(var, "from-the-caller")
    for name in SERVICE_NAMES:
        env = platform.env_for(name)
        leaked = sorted(k for k, v in env.items() if v == "from-the-caller")
        assert leaked == [], name
        assert env["MINT_GRPC_HOST"] == env["MINT_HTTP_HOST"] == "127.0.0.1", name
        assert env["MINT_ENVIRONMENT"] == "dev", name
        assert ("MINT_DATABASE_URL" in env) == CAPABILITIES[name].database, name


def test_without_the_callers_settings_the_dev_defaults_apply(platform: Platform) -> None:
    env = platform.env_for("wallet")
    for var, value in DEV_DEFAULTS.items():
        assert env[var] == value


def test_the_readme_names_every_setting_the_runner_owns() -> None:
    text = README.read_text()
    note = text[text.index("`make dev` passes every `MINT_*`") :]
    note = note[: note.index("RUNNER_OWNED_SETTINGS")]
    named = set(re.findall(r"`(MINT_[A-Z0-9_<>]+)`", note))
    per_service = {f"MINT_{s.upper()}_GRPC" for s in SERVICE_NAMES}
    assert "MINT_<SERVICE>_GRPC" in named
    assert named - {"MINT_<SERVICE>_GRPC"} == RUNNER_OWNED_SETTINGS - per_service
