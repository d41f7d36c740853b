"""The live limits source against a real file system: rewrite, atomic rename, kubelet's
``..data`` symlink swap, refusal of an invalid file, fallback at start, ``/readyz`` and the
metric."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from mint.kit.config import KitSettings
from mint.kit.http import create_app
from mint.kit.limits import (
    Limits,
    LimitsSource,
    default_limits,
    write_limits_file,
)
from mint.kit.service import Service, ServiceContext

POLL = 0.05


def limits_text(version: str, basic_daily: int = 200000) -> str:
    document = default_limits().to_document()
    document["version"] = version
    document["tiers"]["BASIC"]["daily"] = basic_daily
    return yaml.safe_dump(document)


INVALID = limits_text("bad", basic_daily=10)  # daily below per_transaction


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(POLL / 2)
    raise AssertionError("condition not reached in time")


def metric_version() -> str | None:
    for metric in REGISTRY.collect():
        if metric.name == "mint_limits_version_info":
            for sample in metric.samples:
                if sample.value == 1:
                    return sample.labels["version"]
    return None


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Callable[[Path], LimitsSource]]:
    sources: list[LimitsSource] = []

    def make(path: Path) -> LimitsSource:
        source = LimitsSource(path, poll_seconds=POLL)
        source.start()
        sources.append(source)
        return source

    yield make
    for source in sources:
        source.stop()


def test_rewrite_in_place_applies_without_restart(
    tmp_path: Path, watched: Callable[[Path], LimitsSource]
) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(limits_text("1"))
    source = watched(path)
    assert source.version == "1" and source.ready and source.error is None
    before = source.current
    path.write_text(limits_text("2", basic_daily=300000))
    wait_for(lambda: source.version == "2")
    assert source.for_tier("BASIC").daily == 300000
    assert before.tiers.BASIC.daily == 200000  # the old snapshot never changes
    assert metric_version() == "2"


def test_atomic_rename_is_picked_up(
    tmp_path: Path, watched: Callable[[Path], LimitsSource]
) -> None:
    path = tmp_path / "limits.yaml"
    write_limits_file(
        path, Limits.model_validate({**default_limits().to_document(), "version": "a"})
    )
    source = watched(path)
    assert source.version == "a"
    tmp = tmp_path / ".limits.yaml.new"
    tmp.write_text(limits_text("b", basic_daily=250000))
    os.replace(tmp, path)
    wait_for(lambda: source.version == "b")
    assert source.current.tiers.BASIC.daily == 250000


def kubelet_publish(mount: Path, stamp: str, text: str) -> None:
    """What kubelet does for a ConfigMap volume: a new timestamped dir, then ``..data`` is
    swapped atomically to point at it (``limits.yaml -> ..data/limits.yaml`` never changes)."""
    data_dir = mount / f"..2026_01_01_00_00_{stamp}"
    data_dir.mkdir()
    (data_dir / "limits.yaml").write_text(text)
    tmp_link = mount / "..data_tmp"
    tmp_link.symlink_to(data_dir.name)
    os.replace(tmp_link, mount / "..data")


def test_kubelet_symlink_swap_is_picked_up(
    tmp_path: Path, watched: Callable[[Path], LimitsSource]
) -> None:
    mount = tmp_path / "etc-mint-limits"
    mount.mkdir()
    kubelet_publish(mount, "01", limits_text("3"))
    (mount / "limits.yaml").symlink_to("..data/limits.yaml")
    source = watched(mount / "limits.yaml")
    assert source.version == "3"
    kubelet_publish(mount, "02", limits_text("4", basic_daily=400000))
    wait_for(lambda: source.version == "4")
    assert source.for_tier("BASIC").daily == 400000
    assert (mount / "limits.yaml").is_symlink()  # the path itself never changed


def test_invalid_file_refused_and_previous_limits_kept(
    tmp_path: Path, watched: Callable[[Path], LimitsSource]
) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(limits_text("5", basic_daily=220000))
    source = watched(path)
    with capture_logs() as logs:
        path.write_text(INVALID)
        wait_for(lambda: source.error is not None)
    assert source.version == "5"
    assert source.for_tier("BASIC").daily == 220000
    assert source.ready  # a refused change never takes a running service out
    refused = [e for e in logs if e["event"] == "limits_refused"]
    assert len(refused) == 1  # logged once, not at every poll
    assert "per_transaction <= daily <= monthly" in refused[0]["reason"]
    assert refused[0]["kept_version"] == "5"
    time.sleep(POLL * 6)
    assert source.version == "5"
    # a valid file afterwards is applied and clears the error
    path.write_text(limits_text("6"))
    wait_for(lambda: source.version == "6")
    assert source.error is None


def test_deleted_file_keeps_limits(tmp_path: Path, watched: Callable[[Path], LimitsSource]) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(limits_text("8"))
    source = watched(path)
    path.unlink()
    wait_for(lambda: source.error is not None)
    assert source.version == "8" and source.ready
    path.write_text(limits_text("9"))
    wait_for(lambda: source.version == "9")


@pytest.mark.parametrize("content", [INVALID, None])
def test_invalid_at_start_falls_back_to_shipped_defaults(
    tmp_path: Path, watched: Callable[[Path], LimitsSource], content: str | None
) -> None:
    path = tmp_path / "limits.yaml"
    if content is not None:
        path.write_text(content)
    with capture_logs() as logs:
        source = watched(path)
    assert source.current == default_limits()
    assert source.fallback and not source.ready and source.error
    assert any(e["event"] == "limits_file_invalid_at_start" for e in logs)
    path.write_text(limits_text("10"))
    wait_for(lambda: source.version == "10")
    assert source.ready and not source.fallback


def test_readyz_reports_the_applied_version(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(INVALID)
    # a service with the limits capability in the catalogue: /readyz checks and reports them
    service = Service(name="transactions", prefix="/api/v1/demo")
    ctx = ServiceContext(service=service, settings=KitSettings(), db=None)
    ctx.limits = LimitsSource(path, poll_seconds=POLL)  # what the kit builds from MINT_LIMITS_FILE
    with TestClient(create_app(ctx)) as client:
        body = client.get("/readyz").json()
        assert body["limits_version"] == default_limits().version
        assert body["checks"]["limits"] == "down"
        path.write_text(limits_text("11"))
        assert ctx.limits.refresh()
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["limits_version"] == "11"
        assert response.json()["checks"]["limits"] == "ok"
        assert 'mint_limits_version_info{version="11"} 1.0' in client.get("/metrics").text


def test_context_builds_the_source_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text(limits_text("12"))
    monkeypatch.setenv("MINT_LIMITS_FILE", str(path))
    with_limits = Service(name="kyc", prefix=None)  # the catalogue gives kyc the limits
    without = Service(name="wallet", prefix=None)
    source = ServiceContext(with_limits, KitSettings(), None).limits
    assert source is not None and source.version == "12"
    assert ServiceContext(without, KitSettings(), None).limits is None
