"""Cold and warm start of ``mint dev --free-ports``: from the command's start until every
service's ``/readyz`` answers 200. Cold: an empty root directory; warm: the same directory again
(its servers' data, keys and limits kept). Package caches (the venv, Kafka's jars) are warm in
both."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 60.0


def time_start(root: Path, log_path: Path) -> float:
    """Seconds from starting ``mint dev --free-ports --root <root>`` until every service it
    lists in ``runtime.json`` answers ``/readyz`` 200; the command is then stopped."""
    (root / "runtime.json").unlink(missing_ok=True)
    started = time.monotonic()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mint.cli", "dev", "--root", str(root), "--free-ports"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(root, proc, started + START_TIMEOUT_S)
        return time.monotonic() - started
    finally:
        _stop(proc)


def _wait_ready(root: Path, proc: subprocess.Popen[bytes], deadline: float) -> None:
    runtime = root / "runtime.json"
    urls: dict[str, str] = {}  # service → HTTP URL, once runtime.json is written
    ready: set[str] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mint dev exited ({proc.returncode}) before it was ready")
        if not urls and runtime.exists():
            with contextlib.suppress(ValueError, OSError, KeyError):  # still being written
                services = json.loads(runtime.read_text())["services"]
                urls = {name: info["http"] for name, info in services.items()}
        for name in sorted(set(urls) - ready):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(urls[name] + "/readyz", timeout=1).status_code == 200:
                    ready.add(name)
        if urls and ready == set(urls):
            return
        time.sleep(0.1)
    raise TimeoutError(f"mint dev not ready within {START_TIMEOUT_S:.0f}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (mint dev stops its services and servers), SIGKILL of the group after a minute."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def cold_and_warm(workdir: Path) -> dict[str, float]:
    """``{"cold_s": …, "warm_s": …}`` for one fresh root directory under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "start-root"
    log_path = workdir / "start.log"
    cold = time_start(root, log_path)
    warm = time_start(root, log_path)
    return {"cold_s": cold, "warm_s": warm}
