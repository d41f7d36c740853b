"""The secret files of ``make dev`` are private from the moment they exist (issue 8, item 8):
signing keys, the internal token and runtime.json are created 0600 (not chmod-ed after being
written), in directories only their owner can enter (0700).

Each writer runs with umask 0, where a file created with the default mode would be world
readable, and with chmod refused for files, so only the mode given at creation counts."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mint.auth.keys import generate_key, kid_for
from mint.dev.dev import prepare
from mint.dev.platform import Platform
from tests.fixtures.endpoints import offline_endpoints


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def no_chmod_of_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file made private by chmod after it was written was readable until then: refuse it.
    (Directories may be tightened: an existing one keeps its mode through mkdir.)"""
    real_chmod = os.chmod

    def chmod(path: object, mode: int, *args: object, **kwargs: object) -> None:
        if not os.path.isdir(path):  # type: ignore[arg-type]
            raise AssertionError(f"chmod of the file {path} after writing it")
        real_chmod(path, mode, *args, **kwargs)  # type: ignore[arg-type]

    def fchmod(fd: int, mode: int) -> None:
        raise AssertionError("fchmod of a secret file after creating it")

    monkeypatch.setattr(os, "chmod", chmod)
    monkeypatch.setattr(os, "fchmod", fchmod)


def platform_at(root: Path) -> Platform:
    infra = offline_endpoints(root)
    return Platform(root=root, infra=infra, services=["wallet"], databases={})


@pytest.mark.usefixtures("permissive_umask", "no_chmod_of_files")
def test_a_signing_key_is_written_0600_in_a_0700_directory(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    kid = generate_key(keys, now=now)

    assert mode(keys) == 0o700
    assert mode(keys / f"{kid}.pem") == 0o600


@pytest.mark.usefixtures("permissive_umask", "no_chmod_of_files")
def test_a_leftover_temporary_key_file_does_not_lend_its_mode(tmp_path: Path) -> None:
    """A crash between creating and renaming the key leaves a temporary file behind, with
    whatever mode it had: the next key must not be written into it."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    leftover = keys / f".{kid_for(now)}.pem.tmp"
    leftover.write_text("half a key")
    assert mode(leftover) == 0o666

    kid = generate_key(keys, now=now)

    assert mode(keys / f"{kid}.pem") == 0o600


@pytest.mark.usefixtures("permissive_umask", "no_chmod_of_files")
def test_the_internal_token_and_runtime_description_are_written_0600(tmp_path: Path) -> None:
    root = tmp_path / ".mint"
    root.mkdir(mode=0o700)
    plat = platform_at(root)
    plat._plan_ports()
    # a leftover temporary file of an interrupted write, world-readable
    (root / f".internal_token.{os.getpid()}.tmp").write_text("stale")

    token = plat.internal_token()
    runtime = plat.write_runtime()

    assert mode(root / "internal_token") == 0o600
    assert len(token) >= 32 and (root / "internal_token").read_text() == token
    assert plat.internal_token() == token  # written once, then read
    assert mode(runtime) == 0o600
    assert not list(root.glob(".*.tmp"))


@pytest.mark.usefixtures("permissive_umask", "no_chmod_of_files")
def test_prepare_makes_the_dev_directory_and_its_keys_private(tmp_path: Path) -> None:
    root = tmp_path / ".mint"
    # a directory made by an earlier version, with the default mode
    (root / "keys").mkdir(parents=True, mode=0o755)
    root.chmod(0o755)

    prepare(root)

    assert mode(root) == 0o700
    assert mode(root / "keys") == 0o700
    (pem,) = (root / "keys").glob("*.pem")
    assert mode(pem) == 0o600
