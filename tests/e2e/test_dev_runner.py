"""``mint dev`` as a process, as a developer runs it (issue 8, item 9; item 8's loopback gRPC).

The runner is started as ``mint dev --service wallet --free-ports`` in a scratch directory: the
whole embedded infrastructure (PostgreSQL, Kafka, Redis, S3, SMTP) and one service, on free
ports. One runner serves the tests in file order and the signal-burst test, last of them, stops
it; the SIGKILL test starts its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
MINT_DEV = [sys.executable, "-m", "mint.cli", "dev"]
#: only catches a hang: a start is ~20 s, Kafka's first download of its jars takes longer
START_TIMEOUT = 600.0
STOP_TIMEOUT = 180.0
#: an owned setting in the caller's environment, which must not reach the services
CALLERS_DATABASE_URL = "postgresql+psycopg://nobody:wrong@127.0.0.1:9/not_the_runners"


@dataclass
class Runner:
    proc: subprocess.Popen[bytes]
    root: Path  # the runner's .mint directory
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def runtime(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.root / "runtime.json").read_text())
        return doc

    def service_pid(self, name: str) -> int:
        return int(self.runtime()["services"][name]["pid"])

    def descendants(self) -> list[psutil.Process]:
        children: list[psutil.Process] = psutil.Process(self.proc.pid).children(recursive=True)
        return children


def start_runner(directory: Path, env: dict[str, str] | None = None) -> Runner:
    root = directory / ".mint"
    output = directory / "runner.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [*MINT_DEV, "--root", str(root), "--service", "wallet", "--free-ports"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )
    runner = Runner(proc, root, output)
    deadline = time.monotonic() + START_TIMEOUT
    while "Mint is running" not in runner.text():
        if proc.poll() is not None:
            pytest.fail(f"mint dev exited with {proc.returncode}:\n{runner.text()}")
        if time.monotonic() > deadline:
            stop_runner(runner)
            pytest.fail(f"mint dev not running after {START_TIMEOUT:.0f}s:\n{runner.text()}")
        time.sleep(0.3)
    return runner


def stop_runner(runner: Runner) -> None:
    """Teardown whatever a test left: SIGTERM, then SIGKILL of the runner and what it started."""
    if runner.proc.poll() is None:
        left = runner.descendants()
        runner.proc.send_signal(signal.SIGTERM)
        try:
            runner.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            runner.proc.kill()
            runner.proc.wait(30)
            for p in left:
                p.kill()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``processes`` still alive after ``timeout`` (a zombie counts as gone)."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    still = []
    for p in alive:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                still.append(p)
        except psutil.NoSuchProcess:
            pass
    return still


@pytest.fixture(scope="module")
def stale_pid() -> int:
    return dead_pid()


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory, stale_pid: int) -> Iterator[Runner]:
    directory = tmp_path_factory.mktemp("dev-runner")
    # the lock a runner killed by SIGKILL leaves behind: its file names the dead runner
    (directory / ".mint").mkdir(mode=0o700)
    (directory / ".mint" / "dev.lock").write_text(f"{stale_pid}\n")
    settings = {
        # settings of the caller, which reach the services
        "MINT_LOG_LEVEL": "DEBUG",
        "MINT_TRACE_FILE": str(directory / "caller-traces.jsonl"),
        "MINT_DATABASE_URL": CALLERS_DATABASE_URL,
    }
    runner = start_runner(directory, settings)
    try:
        yield runner
    finally:
        stop_runner(runner)


def test_a_stale_lock_left_by_a_dead_runner_is_taken_over(runner: Runner, stale_pid: int) -> None:
    assert f"left by runner pid {stale_pid}, which no longer holds it" in runner.text()
    holder = int((runner.root / "dev.lock").read_text().split()[0])
    assert holder == runner.proc.pid


def test_a_second_runner_on_the_directory_is_refused_naming_the_first(runner: Runner) -> None:
    second = subprocess.run(
        [*MINT_DEV, "--root", str(runner.root), "--free-ports"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert second.returncode != 0
    assert f"in use by a running mint dev (pid {runner.proc.pid})" in second.stderr
    assert runner.proc.poll() is None  # the first one runs on


def test_caller_settings_reach_the_services_except_the_ones_the_runner_owns(
    runner: Runner,
) -> None:
    env = psutil.Process(runner.service_pid("wallet")).environ()
    traces = runner.root.parent / "caller-traces.jsonl"
    assert env["MINT_LOG_LEVEL"] == "DEBUG"
    assert env["MINT_TRACE_FILE"] == str(traces)
    # the runner's database, not the caller's (and the service is up on it)
    assert env["MINT_DATABASE_URL"] == runner.runtime()["databases"]["wallet"]
    assert env["MINT_DATABASE_URL"] != CALLERS_DATABASE_URL
    assert env["MINT_GRPC_HOST"] == "127.0.0.1"

    # and a caller's setting takes effect: the wallet writes its spans where the caller said
    r = httpx.get(f"{runner.runtime()['gateway_url']}/api/v1/wallet", timeout=30)
    assert r.status_code == 401
    deadline = time.monotonic() + 30
    while not (traces.exists() and "/api/v1/wallet" in traces.read_text()):
        assert time.monotonic() < deadline, "no span of the wallet in the caller's trace file"
        time.sleep(0.2)


def test_services_listen_on_loopback_only(runner: Runner) -> None:
    wallet = psutil.Process(runner.service_pid("wallet"))
    listening = [c for c in wallet.net_connections("inet") if c.status == psutil.CONN_LISTEN]
    ports = {c.laddr.port for c in listening}
    runtime = runner.runtime()["services"]["wallet"]
    assert {int(runtime["http"].rsplit(":", 1)[1]), int(runtime["grpc"].rsplit(":", 1)[1])} <= ports
    addresses = {c.laddr.ip for c in listening}
    assert addresses <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, addresses


def test_a_storm_of_stop_signals_stops_the_runner_and_everything_it_started(
    runner: Runner,
) -> None:
    """Last of the module: it stops the shared runner. SIGTERMs and Ctrl-Cs keep coming, back
    to back — arriving while the handler of the previous one runs, and all through the stop —
    and must neither hang the runner nor crash it."""
    started = runner.descendants()
    assert len(started) >= 5  # postgres, kafka, redis, s3 and the wallet at least
    sent = 0

    def storm() -> None:
        nonlocal sent
        deadline = time.monotonic() + STOP_TIMEOUT
        while runner.proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(runner.proc.pid, signal.SIGINT if sent % 10 == 9 else signal.SIGTERM)
            sent += 1

    sender = threading.Thread(target=storm)
    sender.start()
    try:
        code = runner.proc.wait(STOP_TIMEOUT)  # a hang fails here
    finally:
        sender.join()

    assert sent >= 2
    assert code == 0, runner.text()
    assert runner.text().rstrip().endswith("[mint dev] stopped."), runner.text()
    assert runner.text().count("[mint dev] stopping") == 1
    assert gone(started, timeout=30) == []
    assert not (runner.root / "runtime.json").exists()
    assert (runner.root / "dev.lock").read_text() == ""  # released: nothing to take over


def test_a_stop_signal_during_startup_ends_the_runner(tmp_path: Path) -> None:
    root = tmp_path / ".mint"
    output = tmp_path / "runner.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [*MINT_DEV, "--root", str(root), "--service", "wallet", "--free-ports"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    runner = Runner(proc, root, output)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "starting embedded infrastructure" not in runner.text():
            assert proc.poll() is None and time.monotonic() < deadline, runner.text()
            time.sleep(0.05)
        started = runner.descendants()
        proc.send_signal(signal.SIGTERM)

        code = proc.wait(STOP_TIMEOUT)  # a hang fails here

        assert code == 0, runner.text()
        assert "Mint is running" not in runner.text()
        assert runner.text().rstrip().endswith("[mint dev] stopped."), runner.text()
        assert gone(started, timeout=30) == []
        assert [p for p in psutil.process_iter() if _mentions(p, root)] == []
    finally:
        stop_runner(runner)


def test_a_runner_killed_with_sigkill_leaves_no_process_behind(tmp_path: Path) -> None:
    runner = start_runner(tmp_path)
    started = runner.descendants()
    try:
        recorded = {runner.service_pid("wallet"), *runner.runtime()["infra"]["pids"].values()}
        assert recorded <= {p.pid for p in started}
        groups = {os.getpgid(pid) for pid in recorded}

        runner.proc.kill()
        runner.proc.wait(30)

        assert gone(started, timeout=60) == []
        in_groups = [p for p in psutil.process_iter() if _pgid(p.pid) in groups]
        assert gone(in_groups, timeout=30) == []
    finally:
        stop_runner(runner)
        for p in started:  # whatever outlived the runner, when the test failed
            with contextlib.suppress(psutil.Error):
                p.kill()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _mentions(process: psutil.Process, root: Path) -> bool:
    """Is ``root`` in the command line of ``process`` (a server of that runner)?"""
    try:
        return any(str(root) in arg for arg in process.cmdline())
    except psutil.Error:
        return False
