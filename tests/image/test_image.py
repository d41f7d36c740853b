"""The Mint image, built for real with buildah (tests/image/build.py: a debootstrapped Debian base,
the repository's Dockerfile, cached by a hash of its inputs) and run with ``buildah run``: the
entrypoint serves wallet against the test infrastructure, runs the operator's CLI, and runs as
the unprivileged user 10001 with precompiled bytecode."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from mint.infra import EmbeddedInfra, InfraEndpoints
from tests.image.build import ImageBuildError, build_image, buildah_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image() -> str:
    try:
        built = build_image()
    except ImageBuildError as exc:
        pytest.fail(f"cannot build the Mint image with buildah: {exc}", pytrace=False)
    state = "built" if built.built else "cached"
    print(f"\n[image] {built.name} {state} in {built.seconds:.1f}s")
    return built.name


@pytest.fixture
def container(image: str) -> Iterator[str]:
    """A working container of the image (``buildah from``), removed afterwards."""
    made = subprocess.run(
        buildah_command("from", "--pull=never", image), capture_output=True, text=True, check=True
    )
    name = made.stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(buildah_command("rm", name), capture_output=True, check=False)


def run(container: str, *command: str, env: dict[str, str] | None = None) -> str:
    args = ["run", "--isolation", "chroot", "--network", "host"]
    for key, value in (env or {}).items():
        args += ["--env", f"{key}={value}"]
    proc = subprocess.run(
        buildah_command(*args, container, "--", *command),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{command} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def test_image_config(image: str) -> None:
    """`mint` is the entrypoint; no service is started by default (each container names one)."""
    out = subprocess.run(
        buildah_command("inspect", "--type", "image", image),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    config = json.loads(out)["OCIv1"]["config"]
    assert config["Entrypoint"] == ["mint"]
    assert config["Cmd"] == ["--help"]
    assert config["User"] == "10001:10001"


def test_runs_as_the_unprivileged_user_with_compiled_bytecode(container: str) -> None:
    assert run(container, "id", "-u").strip() == "10001"
    assert run(container, "id", "-g").strip() == "10001"
    compiled = run(
        container,
        "python",
        "-c",
        "import importlib.util, pathlib, mint.kit.config as m;"
        "print(pathlib.Path(importlib.util.cache_from_source(m.__file__)).is_file())",
    )
    assert compiled.strip() == "True"  # no compile (and no write) at start on a read-only root


def test_operator_entrypoint_runs(container: str) -> None:
    out = run(container, "mint", "operator", "--help")
    assert "operator" in out.lower()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_wallet_serves_healthz_against_the_test_infrastructure(
    container: str, embedded_infra: EmbeddedInfra, infra: InfraEndpoints
) -> None:
    http, grpc = free_port(), free_port()
    env = {
        "MINT_DATABASE_URL": embedded_infra.create_database(f"image_{uuid.uuid4().hex[:8]}"),
        "MINT_KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "MINT_KAFKA_PREFIX": f"image-{uuid.uuid4().hex[:6]}.",
        "MINT_REDIS_URL": infra.redis_url,
        "MINT_HTTP_PORT": str(http),
        "MINT_GRPC_PORT": str(grpc),
        "MINT_INTERNAL_TOKEN": uuid.uuid4().hex,
    }
    args = ["run", "--isolation", "chroot", "--network", "host"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    proc = subprocess.Popen(
        buildah_command(*args, container, "--", "mint", "serve", "wallet"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert answer is not None, f"wallet never answered (exit {proc.poll()})"
        assert answer.status_code == 200, answer.text
        ready = httpx.get(f"http://127.0.0.1:{http}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text  # migrated its database, reached its deps
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
